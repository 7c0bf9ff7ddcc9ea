//! Pod helpers shared by the controllers: activity, readiness and availability
//! (minReadySeconds), pods from templates, upstream's slow-start batched creation, and the
//! ranking that decides which pods a scale-down deletes first.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

/// The pod's phase ("" when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted (upstream's `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| {
        c.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    })
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Whether the pod has been ready for `min_ready` seconds at `now`; if it is ready but not
/// yet available, `Err` carries how long until it is.
pub fn availability(pod: &Pod, min_ready: i32, now: Timestamp) -> Result<bool, Duration> {
    let Some(since) = ready_since(pod) else {
        return Ok(false);
    };
    if min_ready <= 0 {
        return Ok(true);
    }
    let due = since.as_millisecond() + i64::from(min_ready) * 1000;
    let left = due - now.as_millisecond();
    if left <= 0 {
        Ok(true)
    } else {
        Err(Duration::from_millis(left as u64))
    }
}

/// A pod for `template` owned by `owner`, named by the API server from `generate_name`.
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: String,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Upstream's slow start: `count` calls of `create` in batches of 1, 2, 4, … run
/// concurrently; stops after a batch with a failure. Returns (successes, first error,
/// number never attempted).
pub async fn slow_start<F, Fut, E>(count: usize, create: F) -> (usize, Option<E>, usize)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = 1;
    let mut next = 0;
    while next < count {
        let n = batch.min(count - next);
        let results = futures::future::join_all((next..next + n).map(&create)).await;
        next += n;
        let mut err = None;
        for r in results {
            match r {
                Ok(()) => done += 1,
                Err(e) => {
                    if err.is_none() {
                        err = Some(e);
                    }
                }
            }
        }
        if err.is_some() {
            return (done, err, count - next);
        }
        batch *= 2;
    }
    (done, None, 0)
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Upstream's `ActivePodsWithRanks` order: the pods to delete first come first —
/// unscheduled before scheduled, Pending before Unknown before Running, not ready before
/// ready, more pods of the same owner on the node before fewer, ready for less time before
/// longer, more restarts before fewer, newer before older.
pub fn deletion_order(pods: &mut [Arc<Pod>]) {
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods.iter() {
        if !node(p).is_empty() {
            *per_node.entry(node(p).to_string()).or_default() += 1;
        }
    }
    let rank = |p: &Pod| per_node.get(node(p)).copied().unwrap_or(0);
    pods.sort_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        let assigned = |p: &Pod| !node(p).is_empty();
        assigned(a)
            .cmp(&assigned(b))
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(is_ready(a).cmp(&is_ready(b)))
            .then(rank(b).cmp(&rank(a)))
            .then_with(|| match (ready_since(a), ready_since(b)) {
                // Ready more recently (for less time) first.
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            })
            .then(restarts(b).cmp(&restarts(a)))
            .then_with(|| {
                let c = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                c(b).cmp(&c(a))
            })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>, created: &str) -> Arc<Pod> {
        let mut conds = vec![];
        if let Some(t) = ready_at {
            conds.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": t}));
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": phase, "conditions": conds},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn deletion_ranking_follows_upstream() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-01T00:01:00Z";
        let mut pods = vec![
            pod("ready-old", "n1", "Running", Some(t0), t0),
            pod("unscheduled", "", "Pending", None, t0),
            pod("ready-new", "n2", "Running", Some(t1), t0),
            pod("pending", "n1", "Pending", None, t0),
            pod("running-unready", "n3", "Running", None, t0),
            pod("doubled", "n1", "Running", Some(t0), t0),
        ];
        deletion_order(&mut pods);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "running-unready",
                // n1 holds three of this owner's pods, n2 one.
                "ready-old",
                "doubled",
                "ready-new",
            ]
        );
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let p = pod(
            "p",
            "n",
            "Running",
            Some("2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00Z",
        );
        let now: Timestamp = "2026-01-01T00:00:04Z".parse().unwrap();
        assert_eq!(availability(&p, 0, now), Ok(true));
        assert_eq!(availability(&p, 10, now), Err(Duration::from_secs(6)));
        assert_eq!(availability(&p, 3, now), Ok(true));
    }

    #[tokio::test]
    async fn slow_start_batches_double_and_stop_on_error() {
        let seen = std::sync::Mutex::new(vec![]);
        let (ok, err, skipped) = slow_start(20, |i| {
            seen.lock().unwrap().push(i);
            async move { if i == 5 { Err("boom") } else { Ok(()) } }
        })
        .await;
        // Batches 1, 2, 4: the third batch (indices 3..7) holds the failure.
        assert_eq!((ok, err, skipped), (6, Some("boom"), 13));
        assert_eq!(seen.lock().unwrap().len(), 7);
    }
}
