//! The garbage collector: an owner graph over every resource that discovery lists (list,
//! watch and delete supported; Events left out), kept by one informer per resource whose
//! objects are cut down to their metadata, and three behaviours:
//!
//! - **background**: an object all of whose owners are gone (absent from the graph and
//!   confirmed absent, or replaced by a different uid, by a live GET) is deleted; owners
//!   that are gone are removed from an object that still has a live owner;
//! - **foreground**: an owner being deleted with the `foregroundDeletion` finalizer has
//!   its dependents deleted (themselves in the foreground); the finalizer is removed once
//!   no dependent with `blockOwnerDeletion` is left;
//! - **orphan**: an owner being deleted with the `orphan` finalizer has its ownerReference
//!   removed from every dependent, then the finalizer removed.
//!
//! Discovery is re-read periodically so that resources added later (CRDs) are watched.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Preconditions};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue};
use serde_json::json;

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// A resource the collector knows.
#[derive(Debug)]
pub struct ResInfo {
    pub api: ApiResource,
    pub namespaced: bool,
}

/// What [`Collector::decide`] concluded about a dependent.
enum Decision {
    Keep,
    Delete(DeleteParams),
}

/// One object in the graph.
#[derive(Debug, Clone)]
struct Node {
    res: Arc<ResInfo>,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    finalizers: Vec<String>,
    deleting: bool,
}

impl Node {
    fn waiting_for_dependents(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FOREGROUND)
    }
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// owner uid → dependent uids.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    /// Puts `node` under `uid`; returns the owner uids it no longer has.
    fn put(&mut self, uid: &str, node: Node) -> Vec<String> {
        let old_owners: Vec<String> = self
            .nodes
            .get(uid)
            .map(|n| n.owners.iter().map(|o| o.uid.clone()).collect())
            .unwrap_or_default();
        let new_owners: HashSet<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        let mut removed = Vec::new();
        for o in old_owners {
            if !new_owners.contains(&o) {
                self.unlink(&o, uid);
                removed.push(o);
            }
        }
        for o in &new_owners {
            self.dependents
                .entry(o.clone())
                .or_default()
                .insert(uid.to_string());
        }
        self.nodes.insert(uid.to_string(), node);
        removed
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(d) = self.dependents.get_mut(owner) {
            d.remove(dependent);
            if d.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// Removes `uid`; returns (its owners, its dependents).
    fn remove(&mut self, uid: &str) -> (Vec<String>, Vec<String>) {
        let owners: Vec<String> = self
            .nodes
            .remove(uid)
            .map(|n| n.owners.into_iter().map(|o| o.uid).collect())
            .unwrap_or_default();
        for o in &owners {
            self.unlink(o, uid);
        }
        let deps = self
            .dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        (owners, deps)
    }
}

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: WorkQueue<String>,
    /// `apiVersion/kind` → resource, for owners not (yet) in the graph.
    kinds: Mutex<HashMap<String, Arc<ResInfo>>>,
    stores: Mutex<Vec<Store<DynamicObject>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cuts an object to the metadata the graph needs.
fn metadata_only(o: &mut DynamicObject) {
    o.data = serde_json::Value::Null;
    o.metadata.managed_fields = None;
    o.metadata.annotations = None;
    o.metadata.labels = None;
}

impl Collector {
    fn observe(&self, res: &Arc<ResInfo>, change: &Change<DynamicObject>) {
        let obj = change.object();
        let Some(uid) = obj.metadata.uid.clone() else {
            return;
        };
        let mut g = lock(&self.graph);
        match change {
            Change::Deleted(_) => {
                let (owners, deps) = g.remove(&uid);
                drop(g);
                for u in owners.into_iter().chain(deps) {
                    self.queue.add(u);
                }
            }
            Change::Added(_) | Change::Updated { .. } => {
                let node = Node {
                    res: res.clone(),
                    namespace: obj.metadata.namespace.clone(),
                    name: obj.metadata.name.clone().unwrap_or_default(),
                    owners: obj.metadata.owner_references.clone().unwrap_or_default(),
                    finalizers: obj.metadata.finalizers.clone().unwrap_or_default(),
                    deleting: obj.metadata.deletion_timestamp.is_some(),
                };
                let interesting = !node.owners.is_empty()
                    || (node.deleting
                        && node
                            .finalizers
                            .iter()
                            .any(|f| f == ORPHAN || f == FOREGROUND));
                let owners: Vec<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
                let removed = g.put(&uid, node);
                drop(g);
                if interesting {
                    self.queue.add(uid);
                }
                // Owners waiting in the foreground learn that a dependent changed or left.
                for o in removed.into_iter().chain(owners) {
                    self.queue.add(o);
                }
            }
        }
    }

    fn node(&self, uid: &str) -> Option<Node> {
        lock(&self.graph).nodes.get(uid).cloned()
    }

    fn api_for(&self, res: &ResInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        match (res.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &res.api),
            _ => Api::all_with(self.client.clone(), &res.api),
        }
    }

    async fn process(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        if node.deleting {
            if node.finalizers.iter().any(|f| f == ORPHAN) {
                return self.orphan_dependents(uid, &node).await;
            }
            if node.finalizers.iter().any(|f| f == FOREGROUND) {
                return self.delete_dependents(uid, &node).await;
            }
            return Ok(());
        }
        if node.owners.is_empty() {
            return Ok(());
        }
        let api = self.api_for(&node.res, node.namespace.as_deref());
        let mut node = node;
        let mut checked_live = false;
        loop {
            match self.decide(uid, &node, &api).await? {
                Decision::Keep => return Ok(()),
                Decision::Delete(dp) if checked_live => {
                    tracing::debug!(name = %node.name, kind = %node.res.api.kind, "garbage collecting");
                    return match api.delete(&node.name, &dp).await {
                        Ok(_) => Ok(()),
                        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
                        Err(e) => Err(e.into()),
                    };
                }
                Decision::Delete(_) => {
                    // The cache may lag behind a change to the dependent's owners (an
                    // orphaning owner removes itself from them just before it goes): the
                    // decision to delete is made again on the live object, as upstream's
                    // collector does.
                    checked_live = true;
                    let live = match api.get(&node.name).await {
                        Ok(o) => o,
                        Err(e) if is_not_found(&e) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    };
                    if live.metadata.uid.as_deref() != Some(uid) {
                        return Ok(());
                    }
                    node.owners = live.metadata.owner_references.unwrap_or_default();
                    node.finalizers = live.metadata.finalizers.unwrap_or_default();
                    if node.owners.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Whether a dependent (not being deleted) goes, judged by its owners in `node`.
    async fn decide(
        &self,
        uid: &str,
        node: &Node,
        api: &Api<DynamicObject>,
    ) -> Result<Decision, Error> {
        let mut solid = 0;
        let mut gone = Vec::new();
        let mut waiting = 0;
        for owner in &node.owners {
            match self.owner_state(owner, node.namespace.as_deref()).await? {
                OwnerState::Solid => solid += 1,
                OwnerState::Waiting => {
                    waiting += 1;
                    gone.push(owner.uid.clone());
                }
                OwnerState::Gone => gone.push(owner.uid.clone()),
            }
        }
        if solid > 0 {
            if !gone.is_empty() {
                let kept: Vec<&OwnerReference> = node
                    .owners
                    .iter()
                    .filter(|o| !gone.contains(&o.uid))
                    .collect();
                self.patch_owners(api, &node.name, &kept).await?;
            }
            return Ok(Decision::Keep);
        }
        let policy = if waiting > 0 {
            Some(kube::api::PropagationPolicy::Foreground)
        } else if node
            .finalizers
            .iter()
            .any(|f| f == ORPHAN || f == FOREGROUND)
        {
            None
        } else {
            Some(kube::api::PropagationPolicy::Background)
        };
        let dp = DeleteParams {
            propagation_policy: policy,
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        Ok(Decision::Delete(dp))
    }

    async fn owner_state(
        &self,
        owner: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<OwnerState, Error> {
        if let Some(n) = self.node(&owner.uid) {
            return Ok(if n.waiting_for_dependents() {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        // Not in the graph: the cache may lag; ask the API server.
        let key = format!("{}/{}", owner.api_version, owner.kind);
        let res = lock(&self.kinds).get(&key).cloned();
        let Some(res) = res else {
            return Err(Error::Other(format!(
                "owner {} {}: unknown kind {key}",
                owner.kind, owner.name
            )));
        };
        let api = self.api_for(&res, namespace);
        match api.get(&owner.name).await {
            Ok(o) if o.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let waiting = o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(if waiting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
            Ok(_) => Ok(OwnerState::Gone),
            Err(e) if is_not_found(&e) => Ok(OwnerState::Gone),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets an object's ownerReferences, guarded by the resourceVersion it was read at.
    async fn patch_owners(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        keep: &[&OwnerReference],
    ) -> Result<(), Error> {
        let fresh = match api.get(name).await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let keep_uids: HashSet<&str> = keep.iter().map(|o| o.uid.as_str()).collect();
        let current = fresh.metadata.owner_references.clone().unwrap_or_default();
        let new: Vec<&OwnerReference> = current
            .iter()
            .filter(|o| keep_uids.contains(o.uid.as_str()))
            .collect();
        if new.len() == current.len() {
            return Ok(());
        }
        let rv = fresh.metadata.resource_version.clone().unwrap_or_default();
        let ops = if new.is_empty() {
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "remove", "path": "/metadata/ownerReferences"},
            ])
        } else {
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "replace", "path": "/metadata/ownerReferences", "value": new},
            ])
        };
        let url = format!("{}/{}", api.resource_url(), name);
        match base::json_patch(&self.client, &url, &ops).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `finalizer` from an object, guarded by its resourceVersion.
    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> Result<(), Error> {
        let api = self.api_for(&node.res, node.namespace.as_deref());
        let fresh = match api.get(&node.name).await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let current = fresh.metadata.finalizers.clone().unwrap_or_default();
        if !current.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        let new: Vec<&String> = current.iter().filter(|f| *f != finalizer).collect();
        let rv = fresh.metadata.resource_version.clone().unwrap_or_default();
        let ops = json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/metadata/finalizers", "value": new},
        ]);
        let url = format!("{}/{}", api.resource_url(), node.name);
        match base::json_patch(&self.client, &url, &ops).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        let g = lock(&self.graph);
        g.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| g.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }

    async fn orphan_dependents(&self, uid: &str, node: &Node) -> Result<(), Error> {
        for (_, dep) in self.dependents_of(uid) {
            let keep: Vec<&OwnerReference> = dep.owners.iter().filter(|o| o.uid != uid).collect();
            let api = self.api_for(&dep.res, dep.namespace.as_deref());
            self.patch_owners(&api, &dep.name, &keep).await?;
        }
        self.remove_finalizer(node, ORPHAN).await
    }

    async fn delete_dependents(&self, uid: &str, node: &Node) -> Result<(), Error> {
        let mut blocking = 0;
        for (dep_uid, dep) in self.dependents_of(uid) {
            let blocks = dep
                .owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if !dep.deleting {
                // Its owner now waits for it: it is deleted in the foreground.
                self.queue.add(dep_uid);
            }
        }
        if blocking == 0 {
            self.remove_finalizer(node, FOREGROUND).await?;
        }
        Ok(())
    }
}

enum OwnerState {
    Solid,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
    Gone,
}

/// Resources worth watching: listable, watchable, deletable; Events left out.
fn watchable(discovery: &Discovery) -> Vec<ResInfo> {
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ar.plural == "events"
                || !caps.supports_operation(verbs::LIST)
                || !caps.supports_operation(verbs::WATCH)
                || !caps.supports_operation(verbs::DELETE)
            {
                continue;
            }
            out.push(ResInfo {
                namespaced: caps.scope == Scope::Namespaced,
                api: ar,
            });
        }
    }
    out
}

/// Runs the collector until dropped; discovery is re-read every `rediscover`.
pub async fn run(client: kube::Client, rediscover: Duration) {
    let collector = Arc::new(Collector {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        queue: WorkQueue::new(RateLimiter::default_controller()),
        kinds: Mutex::new(HashMap::new()),
        stores: Mutex::new(Vec::new()),
    });
    let mut tasks = Tasks::new();
    let mut watched: HashSet<String> = HashSet::new();
    let mut started = false;
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => {
                for res in watchable(&d) {
                    let res = Arc::new(res);
                    let versioned = format!("{}/{}", res.api.api_version, res.api.kind);
                    lock(&collector.kinds).insert(versioned, res.clone());
                    let id = format!("{}.{}", res.api.plural, res.api.group);
                    if !watched.insert(id) {
                        continue;
                    }
                    let c = collector.clone();
                    let r = res.clone();
                    let informer = Informer::new(
                        Api::<DynamicObject>::all_with(client.clone(), &res.api),
                        watcher::Config::default(),
                    )
                    .with_transform(metadata_only)
                    .on_change(move |ch: &Change<DynamicObject>| c.observe(&r, ch));
                    lock(&collector.stores).push(informer.store());
                    tasks.spawn(informer.run());
                }
                // Owners may name other versions of a kind: map every served version.
                for group in d.groups() {
                    for v in group.versions() {
                        for (ar, caps) in group.versioned_resources(v) {
                            let key = format!("{}/{}", ar.api_version, ar.kind);
                            let mut kinds = lock(&collector.kinds);
                            kinds.entry(key).or_insert_with(|| {
                                Arc::new(ResInfo {
                                    namespaced: caps.scope == Scope::Namespaced,
                                    api: ar,
                                })
                            });
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed"),
        }
        if !started && !watched.is_empty() {
            let stores = lock(&collector.stores).clone();
            for s in stores {
                s.wait_synced().await;
            }
            let c = collector.clone();
            base::spawn_workers(
                &mut tasks,
                "garbage-collector",
                &collector.queue,
                4,
                move |uid| {
                    let c = c.clone();
                    async move { c.process(&uid).await }
                },
            );
            started = true;
            tracing::info!(resources = watched.len(), "garbage collector synced");
        }
        tokio::time::sleep(rediscover).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owners: &[&str]) -> Node {
        Node {
            res: Arc::new(ResInfo {
                api: ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
                namespaced: true,
            }),
            namespace: Some("default".into()),
            name: "x".into(),
            owners: owners
                .iter()
                .map(|u| OwnerReference {
                    uid: u.to_string(),
                    ..Default::default()
                })
                .collect(),
            finalizers: vec![],
            deleting: false,
        }
    }

    #[test]
    fn graph_tracks_dependents_through_changes() {
        let mut g = Graph::default();
        g.put("d1", node(&["o1", "o2"]));
        g.put("d2", node(&["o1"]));
        assert_eq!(g.dependents["o1"].len(), 2);
        let removed = g.put("d1", node(&["o2"]));
        assert_eq!(removed, ["o1"]);
        assert_eq!(g.dependents["o1"].len(), 1);
        let (owners, deps) = g.remove("d2");
        assert_eq!(owners, ["o1"]);
        assert!(deps.is_empty());
        assert!(!g.dependents.contains_key("o1"));
        g.put("o2", node(&[]));
        let (_, deps) = g.remove("o2");
        assert_eq!(deps, ["d1"]);
    }
}
