//! **Test-only** stand-in for the scheduler, for tests and `rkube bench deployment` until
//! rkube's scheduler is merged: [`TestBinder`] binds Pending pods that have no nodeName and
//! the default schedulerName to Ready, schedulable nodes round-robin through
//! `pods/binding`, honouring `nodeSelector` and the required node affinity DaemonSet pods
//! carry (`matchFields metadata.name`). It checks nothing else (no resources, no taints).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};
use serde_json::json;
use tokio::task::JoinSet;

/// Binds unscheduled pods; see the module documentation.
pub struct TestBinder;

fn wants_binding(p: &Pod) -> bool {
    let Some(spec) = &p.spec else { return false };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && spec
            .scheduler_name
            .as_deref()
            .unwrap_or("default-scheduler")
            == "default-scheduler"
        && p.metadata.deletion_timestamp.is_none()
}

fn node_ready(n: &Node) -> bool {
    let unschedulable = n
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !unschedulable
}

/// Whether `pod` may go to `node` by nodeSelector and required node affinity.
pub fn fits(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector
        && sel.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.clone());
    let Some(terms) = terms else { return true };
    let name = node.name_any();
    terms.iter().any(|t| {
        let fields_ok = t.match_fields.iter().flatten().all(|r| {
            let has = r.key == "metadata.name" && r.values.iter().flatten().any(|v| *v == name);
            match r.operator.as_str() {
                "In" => has,
                "NotIn" => !has,
                _ => false,
            }
        });
        let labels_ok = t.match_expressions.iter().flatten().all(|r| {
            let v = labels.get(&r.key);
            let vals = r.values.clone().unwrap_or_default();
            match r.operator.as_str() {
                "In" => v.is_some_and(|v| vals.contains(v)),
                "NotIn" => v.is_none_or(|v| !vals.contains(v)),
                "Exists" => v.is_some(),
                "DoesNotExist" => v.is_none(),
                _ => false,
            }
        });
        fields_ok && labels_ok
    })
}

impl TestBinder {
    /// Runs until dropped.
    pub async fn run(client: Client) {
        let mut tasks = JoinSet::new();
        let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::exponential(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(2),
        ));
        let nodes = Informer::<Node>::new(Api::all(client.clone()), watcher::Config::default())
            .with_transform(strip_managed_fields);
        let node_store: Store<Node> = nodes.store();
        let q = queue.clone();
        let pods = Informer::<Pod>::new(Api::all(client.clone()), watcher::Config::default())
            .with_transform(strip_managed_fields)
            .on_change(move |c| {
                if let Change::Added(p) | Change::Updated { new: p, .. } = c
                    && wants_binding(p)
                {
                    q.add(key_of(p.as_ref()));
                }
            });
        let pod_store = pods.store();
        tasks.spawn(nodes.run());
        tasks.spawn(pods.run());
        node_store.wait_synced().await;
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..16 {
            let (queue, client, nodes, pods, next) = (
                queue.clone(),
                client.clone(),
                node_store.clone(),
                pod_store.clone(),
                next.clone(),
            );
            tasks.spawn(async move {
                while let Some(key) = queue.get().await {
                    let ok = match pods.get(&key) {
                        Some(p) if wants_binding(&p) => bind(&client, &p, &nodes, &next).await,
                        _ => true,
                    };
                    if ok {
                        queue.forget(&key);
                    } else {
                        queue.add_rate_limited(key.clone());
                    }
                    queue.done(&key);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

async fn bind(client: &Client, pod: &Pod, nodes: &Store<Node>, next: &AtomicUsize) -> bool {
    let mut candidates: Vec<Arc<Node>> = nodes
        .list()
        .into_iter()
        .filter(|n| node_ready(n) && fits(pod, n))
        .collect();
    if candidates.is_empty() {
        return false;
    }
    candidates.sort_by_key(|n| n.name_any());
    let node = &candidates[next.fetch_add(1, Ordering::Relaxed) % candidates.len()];
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod.name_any(), "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node.name_any()},
    });
    let r: Result<serde_json::Value, _> = api
        .create_subresource("binding", &pod.name_any(), &PostParams::default(), &binding)
        .await;
    match r {
        Ok(_) => true,
        // Already bound or gone: nothing left to do.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => true,
        Err(e) => {
            tracing::debug!(error = %e, "test binder: binding failed");
            false
        }
    }
}
