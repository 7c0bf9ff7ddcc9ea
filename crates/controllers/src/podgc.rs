//! Pod garbage collection, every period (20 s): terminated pods (Succeeded or Failed)
//! beyond the threshold are deleted oldest first; pods bound to a node that no longer
//! exists (confirmed by a live GET) are marked Failed with a `DisruptionTarget` condition
//! (reason `DeletionByPodGC`) and force-deleted; pods being deleted that were never
//! scheduled are force-deleted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use kube::api::{Api, DeleteParams, PostParams};
use rkube_client::Store;

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};
use crate::endpoints::terminal;
use crate::shared::Shared;

/// Runs pod GC until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>, threshold: usize, period: Duration) {
    let (pods, nodes) = (shared.pods.store(), shared.nodes.store());
    let mut tasks = Tasks::new();
    shared.pods.start().await;
    shared.nodes.start().await;
    tasks.spawn(async move {
        loop {
            if let Err(e) = gc_once(&client, &pods, &nodes, threshold).await {
                tracing::debug!(error = %e, "pod GC");
            }
            tokio::time::sleep(period).await;
        }
    });
    tasks.join().await;
}

/// Which terminated pods to delete so that at most `threshold` remain (oldest first).
pub fn terminated_over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| terminal(p) && !base::deleting(p.as_ref()))
        .cloned()
        .collect();
    if threshold == 0 || done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by(|a, b| {
        let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        t(a).cmp(&t(b))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

async fn gc_once(
    client: &kube::Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    threshold: usize,
) -> Result<(), Error> {
    let all = pods.list();
    for p in terminated_over_threshold(&all, threshold) {
        delete(client, &p, None).await?;
    }
    // Orphaned pods: their node is gone.
    let known: HashSet<String> = nodes.keys().into_iter().collect();
    let node_api: Api<Node> = Api::all(client.clone());
    let mut checked: HashSet<String> = HashSet::new();
    for p in &all {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if node.is_empty() {
            if base::deleting(p.as_ref()) {
                delete(client, p, Some(0)).await?;
            }
            continue;
        }
        if known.contains(&node) {
            continue;
        }
        // The cache may lag a new node: confirm once per pass.
        if checked.insert(node.clone()) && node_api.get_opt(&node).await?.is_some() {
            continue;
        }
        if nodes.get(&node).is_some() {
            continue;
        }
        mark_failed(client, p).await?;
        delete(client, p, Some(0)).await?;
    }
    Ok(())
}

async fn mark_failed(client: &kube::Client, pod: &Pod) -> Result<(), Error> {
    if terminal(pod) {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &base::ns_of(pod));
    let mut p = pod.clone();
    let status = p.status.get_or_insert_with(Default::default);
    status.phase = Some("Failed".into());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByPodGC".into()),
        message: Some("PodGC: node no longer exists".into()),
        last_transition_time: Some(base::now()),
        ..Default::default()
    });
    match api
        .replace_status(&base::name_of(&p), &PostParams::default(), &p)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn delete(client: &kube::Client, pod: &Pod, grace: Option<u32>) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &base::ns_of(pod));
    let dp = DeleteParams {
        grace_period_seconds: grace,
        ..Default::default()
    };
    tracing::info!(pod = %key_of(pod), "pod GC: deleting");
    match api.delete(&base::name_of(pod), &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn key_of(p: &Pod) -> String {
    rkube_client::key_of(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oldest_terminated_pods_go_first() {
        let pod = |name: &str, phase: &str, created: &str| {
            Arc::new(
                serde_json::from_value::<Pod>(json!({
                    "metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
                    "status": {"phase": phase},
                }))
                .unwrap(),
            )
        };
        let pods = vec![
            pod("new", "Succeeded", "2025-01-03T00:00:00Z"),
            pod("old", "Failed", "2025-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2025-01-02T00:00:00Z"),
            pod("running", "Running", "2024-01-01T00:00:00Z"),
        ];
        let gone: Vec<String> = terminated_over_threshold(&pods, 1)
            .iter()
            .map(|p| base::name_of(p.as_ref()))
            .collect();
        assert_eq!(gone, ["old", "mid"]);
        assert!(terminated_over_threshold(&pods, 3).is_empty());
    }
}
