//! What every controller here shares: a set of tasks that dies with its owner, workers
//! draining a rate-limited [`WorkQueue`], and small helpers for times and object
//! references. Events go through `rkube_client::events` (one recorder per controller, its
//! writer run among the controller's tasks).

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use rkube_client::WorkQueue;
use tokio::task::JoinSet;

/// Why one reconcile failed (the key is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a 409 (exists already, or a conflicting write).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Tasks that are aborted when this value is dropped (so a controller's future can be
/// dropped at any await point, taking its informers and workers with it).
#[derive(Default)]
pub struct Tasks(JoinSet<()>);

impl Tasks {
    pub fn new() -> Self {
        Tasks(JoinSet::new())
    }

    pub fn spawn(&mut self, f: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(f);
    }

    /// Waits until every task ended (normally: forever).
    pub async fn join(mut self) {
        while let Some(r) = self.0.join_next().await {
            if let Err(e) = r
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

/// Spawns `n` workers taking keys from `queue` and calling `reconcile`; a failed key is
/// retried with the queue's rate limiter, a successful one forgotten.
pub fn spawn_workers<F, Fut>(
    tasks: &mut Tasks,
    name: &'static str,
    queue: &WorkQueue<String>,
    n: usize,
    reconcile: F,
) where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    for _ in 0..n.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.get().await {
                match reconcile(key.clone()).await {
                    Ok(()) => queue.forget(&key),
                    Err(e) => {
                        tracing::debug!(controller = name, key = %key, error = %e, "reconcile failed; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// Now, as a metav1.Time.
pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Seconds since the Unix epoch of a metav1.Time.
pub fn secs(t: &Time) -> i64 {
    t.0.as_second()
}

/// Now in seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    Timestamp::now().as_second()
}

/// An ObjectReference to a typed object.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    rkube_client::events::object_reference(obj)
}

/// `namespace/name` of an object's owner-less key parts.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// Whether an object is being deleted.
pub fn deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

/// The object's name, or "" when it has none.
pub fn name_of<K: Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

/// The object's namespace, or "".
pub fn ns_of<K: ResourceExt>(obj: &K) -> String {
    obj.namespace().unwrap_or_default()
}

/// Applies a JSON Patch (RFC 6902) to the object at `url` (an `Api::resource_url()` plus
/// `/name`, optionally `/subresource`).
pub async fn json_patch(
    client: &kube::Client,
    url: &str,
    ops: &serde_json::Value,
) -> Result<serde_json::Value, kube::Error> {
    let body = serde_json::to_vec(ops).map_err(kube::Error::SerdeError)?;
    let req = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    client.request::<serde_json::Value>(req).await
}

/// Applies a JSON merge patch (RFC 7386) to the object at `url`.
pub async fn merge_patch(
    client: &kube::Client,
    url: &str,
    patch: &serde_json::Value,
) -> Result<serde_json::Value, kube::Error> {
    let body = serde_json::to_vec(patch).map_err(kube::Error::SerdeError)?;
    let req = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    client.request::<serde_json::Value>(req).await
}

/// Whether a metav1.LabelSelector matches labels (an empty selector matches everything).
pub fn selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let empty = std::collections::BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(m) = &sel.match_labels
        && !m.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let v = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    })
}
