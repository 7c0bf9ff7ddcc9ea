//! DefaultPreemption (the PostFilter): when a pod fits nowhere, find nodes where removing
//! lower-priority pods makes it fit, keep as many of those pods as still allows the fit
//! (most important first: higher priority, then earlier start), and pick the node whose
//! victims matter least (lowest highest victim priority, then lowest priority sum, then
//! fewest victims). Pods with `preemptionPolicy: Never` do not preempt. PodDisruptionBudgets
//! are not consulted when choosing victims.

use std::cmp::Reverse;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::framework::{Diagnosis, histogram};
use crate::plugins::{self, Code, PodContext};

pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// A node and the pods to evict from it.
#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Runs preemption for a pod that failed with `diag`. `Ok` with the chosen candidate, or
/// `Err` with PostFilter's message (`preemption: …`).
pub fn preempt(ctx: &PodContext, cache: &Cache, diag: &Diagnosis) -> Result<Candidate, String> {
    let pod = &ctx.info.pod;
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    if let Some(nominated) = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        let unresolvable = diag
            .status_of(nominated)
            .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable);
        if !unresolvable
            && let Some(node) = cache.node(nominated)
            && node
                .pods
                .iter()
                .any(|p| p.terminating && p.priority < ctx.info.priority)
        {
            return Err(
                "preemption: not eligible due to terminating pod on the nominated node.".into(),
            );
        }
    }
    let mut reasons: Vec<&str> = Vec::new();
    let mut candidates = Vec::new();
    for node in cache.nodes() {
        let helpful = diag
            .status_of(&node.name)
            .is_none_or(|s| s.code == Code::Unschedulable);
        if !helpful {
            reasons.push(NOT_HELPFUL);
            continue;
        }
        match select_victims(ctx, node, cache) {
            Some(victims) if !victims.is_empty() => candidates.push(Candidate {
                node: node.name.clone(),
                victims,
            }),
            _ => reasons.push(NO_VICTIMS),
        }
    }
    if candidates.is_empty() {
        return Err(format!(
            "preemption: 0/{} nodes are available: {}.",
            cache.num_nodes(),
            histogram(reasons.into_iter())
        ));
    }
    candidates.sort_by_key(|c| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| v.priority as i64 + i32::MAX as i64 + 1)
            .sum();
        (highest, sum, c.victims.len())
    });
    Ok(candidates.swap_remove(0))
}

/// The fewest lower-priority pods whose removal lets the pod fit on `node`; `None` when
/// even removing them all does not help.
fn select_victims(ctx: &PodContext, node: &NodeInfo, cache: &Cache) -> Option<Vec<Arc<PodInfo>>> {
    let mut trial = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < ctx.info.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return None;
    }
    for p in &potential {
        trial.remove_pod(&p.key);
    }
    if plugins::filter(ctx, &trial, cache).is_err() {
        return None;
    }
    // Most important first: they are the first given back.
    potential.sort_by(|a, b| {
        (Reverse(a.priority), a.start_time).cmp(&(Reverse(b.priority), b.start_time))
    });
    let mut victims = Vec::new();
    for p in potential {
        trial.add_pod(p.clone());
        if plugins::filter(ctx, &trial, cache).is_err() {
            trial.remove_pod(&p.key);
            victims.push(p);
        }
    }
    Some(victims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Algorithm;
    use crate::testutil::{ctx_in, pod_labeled};
    use serde_json::json;

    fn cluster() -> Cache {
        let mut cache = Cache::new();
        for name in ["n1", "n2"] {
            cache.set_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name},
                    "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}))
                .unwrap(),
            ));
        }
        cache
    }

    fn using(
        name: &str,
        node: &str,
        cpu: &str,
        priority: i32,
    ) -> Arc<k8s_openapi::api::core::v1::Pod> {
        pod_labeled(
            name,
            json!({}),
            json!({"nodeName": node, "priority": priority, "containers": [{"name": "c", "image": "x",
                "resources": {"requests": {"cpu": cpu}}}]}),
        )
    }

    #[test]
    fn evicts_the_least_important_pods_on_the_cheapest_node() {
        let mut cache = cluster();
        cache.set_pod(using("a", "n1", "1", 10));
        cache.set_pod(using("b", "n1", "1", 5));
        cache.set_pod(using("c", "n2", "2", 50));
        let c = ctx_in(using("hi", "", "1", 100), &cache);
        let diag = Algorithm::new(None).schedule(&c, &cache).unwrap_err();
        assert_eq!(
            diag.message(),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        let cand = preempt(&c, &cache, &diag).unwrap();
        assert_eq!(cand.node, "n1");
        let names: Vec<&str> = cand.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["b"]);
    }

    #[test]
    fn no_victims_and_never_policy_messages() {
        let mut cache = cluster();
        cache.set_pod(using("a", "n1", "2", 100));
        cache.set_pod(using("b", "n2", "2", 100));
        let c = ctx_in(using("lo", "", "1", 1), &cache);
        let diag = Algorithm::new(None).schedule(&c, &cache).unwrap_err();
        assert_eq!(
            preempt(&c, &cache, &diag).unwrap_err(),
            "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
        let never = pod_labeled(
            "n",
            json!({}),
            json!({"priority": 1000, "preemptionPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let c = ctx_in(never, &cache);
        assert_eq!(
            preempt(&c, &cache, &diag).unwrap_err(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
