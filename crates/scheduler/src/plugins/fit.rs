//! NodeResourcesFit (the filter: pod count, CPU, memory, ephemeral storage and scalar
//! resources against allocatable; the LeastAllocated score) and
//! NodeResourcesBalancedAllocation.

use std::sync::Arc;

use super::{Code, MAX_NODE_SCORE, Plugin, PodContext, Status};
use crate::cache::{NodeInfo, PodInfo};
use crate::resources::Resources;

/// The filter. `nominated`: pods preemption nominated to this node; those with at least
/// this pod's priority hold their resources.
pub fn filter(ctx: &PodContext, node: &NodeInfo, nominated: &[Arc<PodInfo>]) -> Result<(), Status> {
    let mut used = node.requested.clone();
    let mut pods = node.pods.len() as i64;
    for p in nominated {
        if p.key != ctx.info.key && p.priority >= ctx.info.priority {
            used.add(&p.requests);
            pods += 1;
        }
    }
    let reasons = insufficient(&ctx.info.requests, &node.allocatable, &used, pods);
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Status {
            plugin: Plugin::NodeResourcesFit,
            code: Code::Unschedulable,
            reasons,
        })
    }
}

/// upstream's `fitsRequest`: the reasons a pod with `want` does not fit.
pub fn insufficient(
    want: &Resources,
    alloc: &Resources,
    used: &Resources,
    pods: i64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if pods + 1 > alloc.pods {
        reasons.push("Too many pods".to_string());
    }
    if want.is_empty() {
        return reasons;
    }
    if want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu - used.milli_cpu {
        reasons.push("Insufficient cpu".into());
    }
    if want.memory > 0 && want.memory > alloc.memory - used.memory {
        reasons.push("Insufficient memory".into());
    }
    if want.ephemeral_storage > 0
        && want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage
    {
        reasons.push("Insufficient ephemeral-storage".into());
    }
    for (name, &q) in &want.scalar {
        if q == 0 {
            continue;
        }
        let a = alloc.scalar.get(name).copied().unwrap_or(0);
        let u = used.scalar.get(name).copied().unwrap_or(0);
        if q > a - u {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

fn requested_and_allocatable(ctx: &PodContext, node: &NodeInfo) -> [(i64, i64); 2] {
    [
        (
            node.non_zero_requested.0 + ctx.info.non_zero.0,
            node.allocatable.milli_cpu,
        ),
        (
            node.non_zero_requested.1 + ctx.info.non_zero.1,
            node.allocatable.memory,
        ),
    ]
}

/// LeastAllocated over CPU and memory (weight 1 each): free fraction after placing the pod.
pub fn least_allocated(ctx: &PodContext, node: &NodeInfo) -> i64 {
    let pairs = requested_and_allocatable(ctx, node);
    let sum: i64 = pairs
        .iter()
        .map(|&(req, alloc)| {
            if alloc == 0 || req > alloc {
                0
            } else {
                (alloc - req) * MAX_NODE_SCORE / alloc
            }
        })
        .sum();
    sum / pairs.len() as i64
}

/// BalancedAllocation: 100 × (1 − standard deviation of the CPU and memory fractions).
pub fn balanced_allocation(ctx: &PodContext, node: &NodeInfo) -> i64 {
    let fractions: Vec<f64> = requested_and_allocatable(ctx, node)
        .iter()
        .filter(|(_, alloc)| *alloc > 0)
        .map(|&(req, alloc)| (req as f64 / alloc as f64).min(1.0))
        .collect();
    let std = match fractions.as_slice() {
        [a, b] => (a - b).abs() / 2.0,
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, node_info, pod};
    use serde_json::json;

    fn node() -> NodeInfo {
        node_info(json!({"metadata": {"name": "n"}, "status": {"allocatable":
            {"cpu": "2", "memory": "4Gi", "pods": "2", "example.com/gpu": "1"}}}))
    }

    fn requesting(r: serde_json::Value) -> PodContext {
        ctx(pod(
            json!({"containers": [{"name": "c", "image": "x", "resources": {"requests": r}}]}),
        ))
    }

    #[test]
    fn reports_each_insufficient_resource() {
        let mut n = node();
        assert!(filter(&requesting(json!({"cpu": "2"})), &n, &[]).is_ok());
        let big = requesting(json!({"cpu": "3", "memory": "5Gi", "example.com/gpu": "2"}));
        assert_eq!(
            filter(&big, &n, &[]).unwrap_err().reasons,
            vec![
                "Insufficient cpu",
                "Insufficient memory",
                "Insufficient example.com/gpu"
            ]
        );
        let one = requesting(json!({"cpu": "1"}));
        n.add_pod(one.info.clone());
        n.add_pod(requesting(json!({"cpu": "500m"})).info.clone());
        assert_eq!(
            filter(&requesting(json!({"cpu": "1"})), &n, &[])
                .unwrap_err()
                .reasons,
            vec!["Too many pods", "Insufficient cpu"]
        );
    }

    #[test]
    fn nominated_pods_hold_resources() {
        let n = node();
        let other = crate::testutil::pod_labeled(
            "other",
            json!({}),
            json!({"containers": [
            {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1500m"}}}]}),
        );
        let nominated = ctx(other).info.clone();
        let err = filter(&requesting(json!({"cpu": "1"})), &n, &[nominated]).unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient cpu"]);
    }

    #[test]
    fn scores_prefer_free_and_balanced_nodes() {
        let empty = node();
        let mut busy = node();
        busy.add_pod(
            requesting(json!({"cpu": "1", "memory": "1Gi"}))
                .info
                .clone(),
        );
        let p = requesting(json!({"cpu": "500m", "memory": "1Gi"}));
        assert!(least_allocated(&p, &empty) > least_allocated(&p, &busy));
        // 25% cpu and 25% memory: perfectly balanced.
        assert_eq!(balanced_allocation(&p, &empty), 100);
        assert_eq!(least_allocated(&p, &empty), 75);
    }
}
