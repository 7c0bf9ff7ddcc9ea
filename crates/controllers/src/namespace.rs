//! The namespace controller: a namespace being deleted (its `deletionTimestamp` set, the
//! API server has made it `Terminating`) has every namespaced object of every resource
//! that discovery lists deleted; its status carries upstream's five deletion conditions
//! (NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
//! NamespaceDeletionContentFailure, NamespaceContentRemaining,
//! NamespaceFinalizersRemaining); once nothing is left the `kubernetes` finalizer is
//! removed through `namespaces/{name}/finalize` and the API server deletes the namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use rkube_client::{Change, RateLimiter, WorkQueue};

use std::sync::Arc;

use crate::base::{self, Error, Tasks, is_not_found};
use crate::shared::Shared;

/// The finalizer the namespace controller owns.
pub const FINALIZER: &str = "kubernetes";

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    shared.namespaces.on_change(move |c: &Change<Namespace>| {
        if let Change::Added(ns) | Change::Updated { new: ns, .. } = c
            && base::deleting(ns.as_ref())
        {
            q.add(base::name_of(ns.as_ref()));
        }
    });
    let mut tasks = Tasks::new();
    shared.namespaces.start().await;
    let q = queue.clone();
    base::spawn_workers(&mut tasks, "namespace", &queue, 2, move |name| {
        let (client, q) = (client.clone(), q.clone());
        async move {
            if let Some(wait) = reconcile(&client, &name).await? {
                q.add_after(name, wait);
            }
            Ok(())
        }
    });
    tasks.join().await;
}

/// What is left in a namespace after one deletion pass.
#[derive(Debug, Default, PartialEq)]
pub struct Remaining {
    /// `resource.group` → objects left.
    pub resources: BTreeMap<String, usize>,
    /// finalizer → objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Resource types whose deletion failed (`resource.group: error`).
    pub failures: Vec<String>,
}

fn condition(type_: &str, status: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(base::now()),
    }
}

/// Upstream's deletion conditions for a pass with `discovery_error` and `remaining`.
pub fn conditions(discovery_error: Option<&str>, remaining: &Remaining) -> Vec<NamespaceCondition> {
    let mut out = Vec::new();
    out.push(match discovery_error {
        Some(e) => condition(
            "NamespaceDeletionDiscoveryFailure",
            true,
            "DiscoveryFailed",
            format!("Discovery failed for some groups, 1 failing: {e}"),
        ),
        None => condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
    });
    out.push(condition(
        "NamespaceDeletionGroupVersionParsingFailure",
        false,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".into(),
    ));
    out.push(if remaining.failures.is_empty() {
        condition(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        condition(
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                remaining.failures.len(),
                remaining.failures.join(", ")
            ),
        )
    });
    out.push(if remaining.resources.is_empty() {
        condition(
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        let parts: Vec<String> = remaining
            .resources
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        condition(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", parts.join(", ")),
        )
    });
    out.push(if remaining.finalizers.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let parts: Vec<String> = remaining
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        condition(
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            ),
        )
    });
    out
}

/// Keeps the transition time of conditions whose status did not change.
fn merge_conditions(
    old: &[NamespaceCondition],
    mut new: Vec<NamespaceCondition>,
) -> Vec<NamespaceCondition> {
    for c in &mut new {
        if let Some(o) = old.iter().find(|o| o.type_ == c.type_)
            && o.status == c.status
        {
            c.last_transition_time = o.last_transition_time.clone();
        }
    }
    new
}

/// One pass over a namespace; `Some(wait)` asks to come back after `wait`.
async fn reconcile(client: &kube::Client, name: &str) -> Result<Option<Duration>, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = match api.get(name).await {
        Ok(ns) => ns,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let held = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if !base::deleting(&ns) || !held {
        return Ok(None);
    }
    let (discovery_error, remaining) = match Discovery::new(client.clone()).run().await {
        Ok(d) => (None, delete_content(client, name, &d).await),
        Err(e) => (Some(e.to_string()), Remaining::default()),
    };
    let old = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let new = merge_conditions(&old, conditions(discovery_error.as_deref(), &remaining));
    let same = old.len() == new.len()
        && old.iter().zip(&new).all(|(a, b)| {
            a.type_ == b.type_
                && a.status == b.status
                && a.reason == b.reason
                && a.message == b.message
        });
    let mut ns = ns;
    if !same {
        let mut status = ns.status.clone().unwrap_or_default();
        status.conditions = Some(new);
        status.phase = Some("Terminating".into());
        ns.status = Some(status);
        match api.replace_status(name, &PostParams::default(), &ns).await {
            Ok(updated) => ns = updated,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    if discovery_error.is_some() {
        return Err(Error::Other(format!("namespace {name}: discovery failed")));
    }
    if !remaining.resources.is_empty() || !remaining.failures.is_empty() {
        return Ok(Some(Duration::from_secs(1)));
    }
    // Everything is gone: give up our finalizer.
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = spec
            .finalizers
            .take()
            .map(|f| f.into_iter().filter(|f| f != FINALIZER).collect());
    }
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes every namespaced object in `ns` and reports what is left.
async fn delete_content(client: &kube::Client, ns: &str, discovery: &Discovery) -> Remaining {
    let mut remaining = Remaining::default();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced
                || !caps.supports_operation(verbs::LIST)
                || !caps.supports_operation(verbs::DELETE)
            {
                continue;
            }
            let label = format!("{}.{}", ar.plural, ar.group);
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            // One request for the lot where the resource allows it.
            if caps.supports_operation(verbs::DELETE_COLLECTION)
                && let Err(e) = api
                    .delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await
                && !is_not_found(&e)
            {
                remaining.failures.push(format!("{label}: {e}"));
            }
            let listed = match api.list(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) => {
                    remaining.failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            if listed.is_empty() {
                continue;
            }
            let mut left = 0;
            for obj in &listed {
                if obj.metadata.deletion_timestamp.is_none() {
                    let name = obj.metadata.name.clone().unwrap_or_default();
                    match api.delete(&name, &DeleteParams::background()).await {
                        Ok(either) => {
                            if either.is_right() {
                                continue;
                            }
                        }
                        Err(e) if is_not_found(&e) => continue,
                        Err(e) => {
                            remaining.failures.push(format!("{label}: {e}"));
                        }
                    }
                }
                left += 1;
                for f in obj.metadata.finalizers.iter().flatten() {
                    *remaining.finalizers.entry(f.clone()).or_default() += 1;
                }
            }
            if left > 0 {
                remaining.resources.insert(label, left);
            }
        }
    }
    remaining.failures.sort();
    remaining.failures.dedup();
    remaining
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_like_upstreams() {
        let mut r = Remaining::default();
        r.resources.insert("pods.".into(), 2);
        r.finalizers.insert("example.com/hold".into(), 1);
        let c = conditions(None, &r);
        let types: Vec<&str> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "NamespaceDeletionDiscoveryFailure",
                "NamespaceDeletionGroupVersionParsingFailure",
                "NamespaceDeletionContentFailure",
                "NamespaceContentRemaining",
                "NamespaceFinalizersRemaining"
            ]
        );
        assert_eq!(c[3].status, "True");
        assert_eq!(
            c[3].message.as_deref(),
            Some("Some resources are remaining: pods. has 2 resource instances")
        );
        assert_eq!(
            c[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            )
        );
        let done = conditions(None, &Remaining::default());
        assert_eq!(done[3].reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(done[4].reason.as_deref(), Some("ContentHasNoFinalizers"));
        let failed = conditions(Some("boom"), &Remaining::default());
        assert_eq!(failed[0].status, "True");
        assert_eq!(failed[0].reason.as_deref(), Some("DiscoveryFailed"));
    }
}
