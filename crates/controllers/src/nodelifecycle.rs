//! Node lifecycle and taint-based eviction.
//!
//! Health: a node is heard from when its Lease in `kube-node-lease` is renewed or its
//! Ready condition's heartbeat changes (times are taken by this controller's clock, as
//! upstream does). A node not heard from for the grace period (40 s) gets every condition
//! set to Unknown (reason `NodeStatusUnknown`, "Kubelet stopped posting node status.")
//! and a `NodeNotReady` event. Nodes whose Ready condition is False carry the
//! `node.kubernetes.io/not-ready` taint, Unknown the `node.kubernetes.io/unreachable`
//! taint, each with effects NoSchedule and NoExecute; the pods of a node that is not ready
//! get their Ready condition set to False.
//!
//! Eviction: a pod on a node with NoExecute taints is deleted at once when it does not
//! tolerate one of them, otherwise when the shortest matching `tolerationSeconds` since
//! the taint's `timeAdded` has passed (never for tolerations without seconds), with a
//! `DisruptionTarget` condition and a `TaintManagerEviction` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint, Toleration};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};
use tokio::time::Instant;

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};
use crate::shared::Shared;
use rkube_client::Recorder;
use rkube_client::events::NORMAL;

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
const BY_NODE: &str = "node";

/// The index of pods by node name (shared with pod GC).
pub fn pod_node_index(p: &Pod) -> Vec<String> {
    vec![
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
    ]
}

/// When each node was last heard from, by our clock.
#[derive(Default)]
struct Health {
    probes: HashMap<String, (Instant, String)>,
}

impl Health {
    /// Records a sign of life identified by `token` (a renew time or heartbeat): only a
    /// new token counts.
    fn heard(&mut self, node: &str, token: String) {
        match self.probes.get_mut(node) {
            Some((at, t)) if *t != token => {
                *at = Instant::now();
                *t = token;
            }
            Some(_) => {}
            None => {
                self.probes
                    .insert(node.to_string(), (Instant::now(), token));
            }
        }
    }

    fn last(&mut self, node: &str) -> Instant {
        self.probes
            .entry(node.to_string())
            .or_insert_with(|| (Instant::now(), String::new()))
            .0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Ready condition's status, if reported.
pub fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The taints this controller wants for a Ready status, and whether a taint is one of its.
pub fn wanted_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match ready {
        Some("False") => vec![
            (NOT_READY_TAINT, "NoSchedule"),
            (NOT_READY_TAINT, "NoExecute"),
        ],
        Some("Unknown") => vec![
            (UNREACHABLE_TAINT, "NoSchedule"),
            (UNREACHABLE_TAINT, "NoExecute"),
        ],
        _ => vec![],
    }
}

fn ours(t: &Taint) -> bool {
    t.key == NOT_READY_TAINT || t.key == UNREACHABLE_TAINT
}

/// Whether a toleration tolerates a taint (upstream's `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod must leave a node with `taints` (NoExecute ones are looked at), given `now`
/// in Unix seconds: `Some(now)` or earlier for at once, a later time when a toleration
/// runs out, `None` when the pod may stay.
pub fn eviction_time(tolerations: &[Toleration], taints: &[Taint], now: i64) -> Option<i64> {
    let mut when: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // The shortest matching tolerationSeconds; none means forever.
        let secs = matching.iter().filter_map(|t| t.toleration_seconds).min();
        if matching.iter().any(|t| t.toleration_seconds.is_none()) && secs.is_none() {
            continue;
        }
        if let Some(s) = secs {
            let added = taint.time_added.as_ref().map(base::secs).unwrap_or(now);
            let t = added + s.max(0);
            when = Some(when.map_or(t, |w| w.min(t)));
        }
    }
    when
}

/// Runs node health monitoring and taint eviction until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>, grace: Duration, period: Duration) {
    let health = Arc::new(Mutex::new(Health::default()));
    let evict_queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    shared.pods.index(BY_NODE, pod_node_index);
    let pods = shared.pods.store();
    let q = evict_queue.clone();
    shared.pods.on_change(move |c: &Change<Pod>| {
        if let Change::Added(p) | Change::Updated { new: p, .. } = c
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
            && !base::deleting(p.as_ref())
        {
            q.add(key_of(p.as_ref()));
        }
    });
    let (h, q, ps) = (health.clone(), evict_queue.clone(), pods.clone());
    shared.nodes.on_change(move |c: &Change<Node>| {
        let name = base::name_of(c.object().as_ref());
        match c {
            Change::Deleted(_) => {
                lock(&h).probes.remove(&name);
            }
            Change::Added(n) | Change::Updated { new: n, .. } => {
                let heartbeat = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                    .and_then(|c| c.last_heartbeat_time.as_ref())
                    .map(|t| format!("hb:{}", t.0))
                    .unwrap_or_default();
                lock(&h).heard(&name, heartbeat);
                let taints_changed = match c {
                    Change::Updated { old, new } => {
                        old.spec.as_ref().and_then(|s| s.taints.as_ref())
                            != new.spec.as_ref().and_then(|s| s.taints.as_ref())
                    }
                    _ => true,
                };
                if taints_changed {
                    for k in ps.index_keys(BY_NODE, &name) {
                        q.add(k);
                    }
                }
            }
        }
    });
    let nodes = shared.nodes.store();
    let h = health.clone();
    let leases_informer = Informer::new(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
    )
    .with_transform(strip_managed_fields)
    .on_change(move |c: &Change<Lease>| {
        if let Change::Added(l) | Change::Updated { new: l, .. } = c {
            let renewed = l
                .spec
                .as_ref()
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| format!("lease:{}", t.0))
                .unwrap_or_default();
            lock(&h).heard(&base::name_of(l.as_ref()), renewed);
        }
    });
    let mut tasks = Tasks::new();
    tasks.spawn(leases_informer.run());
    shared.pods.start().await;
    shared.nodes.start().await;
    let (events, writer) = rkube_client::EventBroadcaster::new(client.clone());
    tasks.spawn(writer);
    let recorder = events.recorder("node-controller");
    let evict_recorder = events.recorder("taint-eviction-controller");
    {
        let (client, pods, nodes, q) = (
            client.clone(),
            pods.clone(),
            nodes.clone(),
            evict_queue.clone(),
        );
        base::spawn_workers(&mut tasks, "taint-eviction", &evict_queue, 4, move |key| {
            let (client, pods, nodes, q, rec) = (
                client.clone(),
                pods.clone(),
                nodes.clone(),
                q.clone(),
                evict_recorder.clone(),
            );
            async move { evict(&client, &pods, &nodes, &q, &rec, &key).await }
        });
    }
    tasks.spawn(async move {
        loop {
            for node in nodes.list() {
                let name = base::name_of(node.as_ref());
                if let Err(e) = monitor(&client, &health, &pods, &recorder, &node, grace).await {
                    tracing::debug!(node = %name, error = %e, "node lifecycle");
                }
            }
            tokio::time::sleep(period).await;
        }
    });
    tasks.join().await;
}

/// One health check of one node.
async fn monitor(
    client: &kube::Client,
    health: &Mutex<Health>,
    pods: &Store<Pod>,
    recorder: &Recorder,
    node: &Node,
    grace: Duration,
) -> Result<(), Error> {
    let name = base::name_of(node);
    let api: Api<Node> = Api::all(client.clone());
    let silent = lock(health).last(&name).elapsed() > grace;
    let mut ready = ready_status(node).map(String::from);
    if silent && ready.as_deref() != Some("Unknown") {
        let mut n = match api.get(&name).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let now = base::now();
        let status = n.status.get_or_insert_with(Default::default);
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            match conditions.iter_mut().find(|c| c.type_ == kind) {
                Some(c) => {
                    if c.status != "Unknown" {
                        c.last_transition_time = Some(now.clone());
                    }
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                }
                None => conditions.push(NodeCondition {
                    type_: kind.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: Some(now.clone()),
                    last_transition_time: Some(now.clone()),
                }),
            }
        }
        api.replace_status(&name, &PostParams::default(), &n)
            .await?;
        let mut r = base::reference(node);
        r.namespace = None;
        recorder.event_ref(
            &r,
            NORMAL,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        ready = Some("Unknown".into());
    }
    // Taints follow the Ready condition.
    let wanted = wanted_taints(ready.as_deref());
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let have: Vec<(&str, &str)> = current
        .iter()
        .filter(|t| ours(t))
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    let mut sorted_have = have.clone();
    sorted_have.sort();
    let mut sorted_wanted = wanted.clone();
    sorted_wanted.sort();
    if sorted_have != sorted_wanted {
        set_taints(&api, &name, &wanted).await?;
    }
    if ready.as_deref() != Some("True") && ready.is_some() {
        mark_pods_not_ready(client, pods, &name).await?;
    }
    Ok(())
}

async fn set_taints(api: &Api<Node>, name: &str, wanted: &[(&str, &str)]) -> Result<(), Error> {
    let mut n = match api.get(name).await {
        Ok(n) => n,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let spec = n.spec.get_or_insert_with(Default::default);
    let mut taints: Vec<Taint> = spec.taints.take().unwrap_or_default();
    taints.retain(|t| !ours(t) || wanted.contains(&(t.key.as_str(), t.effect.as_str())));
    for (key, effect) in wanted {
        if !taints.iter().any(|t| t.key == *key && t.effect == *effect) {
            taints.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                value: None,
                time_added: Some(base::now()),
            });
        }
    }
    spec.taints = (!taints.is_empty()).then_some(taints);
    match api.replace(name, &PostParams::default(), &n).await {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets the Ready condition of the node's pods to False.
async fn mark_pods_not_ready(
    client: &kube::Client,
    pods: &Store<Pod>,
    node: &str,
) -> Result<(), Error> {
    for pod in pods.by_index(BY_NODE, node) {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        if ready != Some("True") || endpoints_terminal(&pod) {
            continue;
        }
        let ns = base::ns_of(pod.as_ref());
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let mut p = (*pod).clone();
        if let Some(cs) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            for c in cs.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(base::now());
            }
        }
        match api
            .replace_status(&base::name_of(&p), &PostParams::default(), &p)
            .await
        {
            Ok(_) => {}
            Err(e) if is_conflict(&e) || is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn endpoints_terminal(p: &Pod) -> bool {
    crate::endpoints::terminal(p)
}

/// Evicts (or schedules the eviction of) one pod on a NoExecute-tainted node.
async fn evict(
    client: &kube::Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    queue: &WorkQueue<String>,
    recorder: &Recorder,
    key: &str,
) -> Result<(), Error> {
    let Some(pod) = pods.get(key) else {
        return Ok(());
    };
    if base::deleting(pod.as_ref()) {
        return Ok(());
    }
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(());
    };
    let Some(node) = nodes.get(&node_name) else {
        return Ok(());
    };
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let now = base::now_secs();
    let Some(when) = eviction_time(&tolerations, &taints, now) else {
        return Ok(());
    };
    if when > now {
        queue.add_after(key.to_string(), Duration::from_secs((when - now) as u64));
        return Ok(());
    }
    let ns = base::ns_of(pod.as_ref());
    let name = base::name_of(pod.as_ref());
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    recorder.event_ref(
        &base::reference(pod.as_ref()),
        NORMAL,
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    let mut p = (*pod).clone();
    let status = p.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(base::now()),
        ..Default::default()
    });
    match api.replace_status(&name, &PostParams::default(), &p).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) if is_conflict(&e) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    }
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn taint(key: &str, effect: &str, added: i64) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: Some(Time(Timestamp::from_second(added).unwrap())),
        }
    }

    fn tol(key: &str, effect: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: Some("Exists".into()),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: secs,
            value: None,
        }
    }

    #[test]
    fn eviction_follows_toleration_seconds() {
        let taints = [
            taint(UNREACHABLE_TAINT, "NoExecute", 1000),
            taint(UNREACHABLE_TAINT, "NoSchedule", 1000),
        ];
        // No toleration: at once.
        assert_eq!(eviction_time(&[], &taints, 2000), Some(2000));
        // The default 300 s toleration.
        let defaults = [
            tol(NOT_READY_TAINT, "NoExecute", Some(300)),
            tol(UNREACHABLE_TAINT, "NoExecute", Some(300)),
        ];
        assert_eq!(eviction_time(&defaults, &taints, 1001), Some(1300));
        // Tolerating forever.
        assert_eq!(
            eviction_time(&[tol(UNREACHABLE_TAINT, "", None)], &taints, 1001),
            None
        );
        // An empty key with Exists tolerates everything.
        assert_eq!(eviction_time(&[tol("", "", None)], &taints, 1001), None);
        // NoSchedule taints alone never evict.
        assert_eq!(eviction_time(&[], &taints[1..], 1001), None);
    }

    #[test]
    fn taints_follow_ready() {
        assert_eq!(wanted_taints(Some("True")), vec![]);
        assert_eq!(
            wanted_taints(Some("Unknown"))[1],
            (UNREACHABLE_TAINT, "NoExecute")
        );
        assert_eq!(
            wanted_taints(Some("False"))[0],
            (NOT_READY_TAINT, "NoSchedule")
        );
        let t = Toleration {
            key: Some("k".into()),
            operator: Some("Equal".into()),
            value: Some("v".into()),
            effect: None,
            toleration_seconds: None,
        };
        let mut tn = taint("k", "NoExecute", 0);
        tn.value = Some("v".into());
        assert!(tolerates(&t, &tn));
        tn.value = Some("w".into());
        assert!(!tolerates(&t, &tn));
    }
}
