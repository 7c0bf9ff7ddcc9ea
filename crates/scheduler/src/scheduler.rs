//! The scheduler's main loop. Informers over nodes, pods and the volume objects keep the
//! [`Cache`] current and feed the [`SchedulingQueue`] (pending pods for this scheduler
//! name) and its cluster events. One cycle at a time: pop a pod, PreFilter, filter and
//! score under the cache lock, then either assume the pod on the chosen node and bind it
//! through `pods/binding` in a task of its own (the next cycle does not wait), or run
//! preemption and report the failure (condition, event) and park the pod.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{
    Binding, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, Store, strip_managed_fields};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cache::{Cache, PodInfo, counts};
use crate::events::{self, PodEvent, Recorder};
use crate::framework::{Algorithm, Diagnosis};
use crate::plugins::{PodContext, volumes::Volumes};
use crate::preemption;
use crate::queue::{ClusterEvent, QueuedPod, SchedulingQueue};

/// The default scheduler name pods get from the API server.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Pods with this `spec.schedulerName` are ours.
    pub scheduler_name: String,
    /// `percentageOfNodesToScore`; `None` for upstream's adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Bindings in flight at most.
    pub parallel_binds: usize,
    /// This instance's name in events (`reportingInstance`) and the leader Lease.
    pub identity: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        SchedulerConfig {
            scheduler_name: DEFAULT_SCHEDULER_NAME.into(),
            percentage_of_nodes_to_score: None,
            parallel_binds: 128,
            identity: format!("{host}_{:016x}", rand::random::<u64>()),
        }
    }
}

type SharedCache = Arc<Mutex<Cache>>;

fn lock(cache: &SharedCache) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

fn is_bound(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn node_changed(old: &Node, new: &Node) -> bool {
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    old.metadata.labels != new.metadata.labels || old.spec != new.spec || alloc(old) != alloc(new)
}

/// Runs the scheduler until the returned future is dropped (every task it started stops
/// with it).
pub async fn run(client: kube::Client, config: SchedulerConfig) {
    let cache: SharedCache = Arc::new(Mutex::new(Cache::new()));
    let queue = SchedulingQueue::new();
    let mut background = JoinSet::new();

    let nodes = {
        let (cache, queue) = (cache.clone(), queue.clone());
        Informer::new(Api::<Node>::all(client.clone()), watcher::Config::default())
            .with_transform(strip_managed_fields)
            .on_change(move |c| match c {
                Change::Added(n) => {
                    lock(&cache).set_node(n.clone());
                    queue.on_event(ClusterEvent::NodeAdd);
                }
                Change::Updated { old, new } => {
                    lock(&cache).set_node(new.clone());
                    if node_changed(old, new) {
                        queue.on_event(ClusterEvent::NodeUpdate);
                    }
                }
                Change::Deleted(n) => {
                    lock(&cache).remove_node(n.metadata.name.as_deref().unwrap_or(""));
                }
            })
    };
    let pods = {
        let (cache, queue) = (cache.clone(), queue.clone());
        let name = config.scheduler_name.clone();
        Informer::new(Api::<Pod>::all(client.clone()), watcher::Config::default())
            .with_transform(strip_managed_fields)
            .on_change(move |c| on_pod_change(c, &cache, &queue, &name))
    };
    let volumes = {
        let (q1, q2, q3) = (queue.clone(), queue.clone(), queue.clone());
        let claims = Informer::new(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
        )
        .with_transform(strip_managed_fields)
        .on_change(move |_| q1.on_event(ClusterEvent::VolumeChange));
        let pvs = Informer::new(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default(),
        )
        .with_transform(strip_managed_fields)
        .on_change(move |_| q2.on_event(ClusterEvent::VolumeChange));
        let classes = Informer::new(
            Api::<StorageClass>::all(client.clone()),
            watcher::Config::default(),
        )
        .with_transform(strip_managed_fields)
        .on_change(move |_| q3.on_event(ClusterEvent::VolumeChange));
        let v = Volumes {
            claims: claims.store(),
            volumes: pvs.store(),
            classes: classes.store(),
        };
        background.spawn(claims.run());
        background.spawn(pvs.run());
        background.spawn(classes.run());
        v
    };
    let node_store = nodes.store();
    let pod_store = pods.store();
    background.spawn(nodes.run());
    background.spawn(pods.run());
    let (recorder, recorder_run) = Recorder::new(
        client.clone(),
        config.scheduler_name.clone(),
        config.identity.clone(),
    );
    background.spawn(recorder_run);
    node_store.wait_synced().await;
    pod_store.wait_synced().await;
    volumes.claims.wait_synced().await;
    volumes.volumes.wait_synced().await;
    volumes.classes.wait_synced().await;
    tracing::info!(
        nodes = node_store.len(),
        pods = pod_store.len(),
        scheduler = %config.scheduler_name,
        "scheduler caches synced"
    );

    let mut sched = Scheduler {
        client,
        cache,
        queue: queue.clone(),
        volumes,
        pod_store,
        algorithm: Algorithm::new(config.percentage_of_nodes_to_score),
        recorder,
        binds: Arc::new(Semaphore::new(config.parallel_binds.max(1))),
        tasks: JoinSet::new(),
        config,
    };
    loop {
        tokio::select! {
            p = queue.pop() => match p {
                Some(p) => sched.schedule_one(p),
                None => return,
            },
            Some(_) = sched.tasks.join_next(), if !sched.tasks.is_empty() => {}
            Some(_) = background.join_next(), if !background.is_empty() => {
                tracing::warn!("a scheduler informer stopped");
            }
        }
    }
}

fn on_pod_change(c: &Change<Pod>, cache: &SharedCache, queue: &SchedulingQueue, name: &str) {
    match c {
        Change::Added(p) | Change::Updated { new: p, .. } => {
            let key = pod_key(p);
            if is_bound(p) {
                queue.delete(&key);
                let was_counted = match c {
                    Change::Updated { old, .. } => counts(old),
                    _ => false,
                };
                lock(cache).set_pod(p.clone());
                let event = match c {
                    Change::Added(_) => ClusterEvent::AssignedPodAdd,
                    Change::Updated { old, .. } => {
                        if was_counted && !counts(p) {
                            ClusterEvent::AssignedPodDelete
                        } else if old.metadata.labels != p.metadata.labels {
                            ClusterEvent::AssignedPodUpdate
                        } else {
                            return;
                        }
                    }
                    Change::Deleted(_) => return,
                };
                queue.on_event(event);
                return;
            }
            let ours = p
                .spec
                .as_ref()
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or(DEFAULT_SCHEDULER_NAME)
                == name;
            if ours && p.metadata.deletion_timestamp.is_none() && !is_terminal(p) {
                if lock(cache).is_assumed(&key) {
                    return;
                }
                queue.add_or_update(Arc::new(PodInfo::new(p.clone())));
            } else {
                queue.delete(&key);
            }
        }
        Change::Deleted(p) => {
            let key = pod_key(p);
            queue.delete(&key);
            let mut c = lock(cache);
            c.remove_pod(&key);
            c.unnominate(&key);
            drop(c);
            if is_bound(p) {
                queue.on_event(ClusterEvent::AssignedPodDelete);
            }
        }
    }
}

struct Scheduler {
    client: kube::Client,
    cache: SharedCache,
    queue: SchedulingQueue,
    volumes: Volumes,
    pod_store: Store<Pod>,
    algorithm: Algorithm,
    recorder: Recorder,
    binds: Arc<Semaphore>,
    tasks: JoinSet<()>,
    config: SchedulerConfig,
}

enum Outcome {
    Assumed(String),
    Failed {
        diag: Diagnosis,
        preempt: Option<preemption::Candidate>,
    },
}

impl Scheduler {
    fn schedule_one(&mut self, qp: QueuedPod) {
        let info = qp.info.clone();
        if info.terminating {
            self.queue.done(&info.key);
            return;
        }
        let outcome = {
            let mut cache = lock(&self.cache);
            if cache.is_assumed(&info.key) {
                drop(cache);
                self.queue.done(&info.key);
                return;
            }
            let result = match PodContext::new(info.clone(), &cache, &self.volumes) {
                Err(status) => Err((
                    Diagnosis {
                        num_nodes: cache.num_nodes(),
                        prefilter: Some(status),
                        ..Default::default()
                    },
                    None,
                )),
                Ok(ctx) => self
                    .algorithm
                    .schedule(&ctx, &cache)
                    .map_err(|d| (d, Some(ctx))),
            };
            match result {
                Ok(node) => {
                    cache.assume(info.clone(), &node);
                    Outcome::Assumed(node)
                }
                Err((mut diag, ctx)) => {
                    let mut preempt = None;
                    if diag.num_nodes > 0 {
                        let ctx = ctx
                            .unwrap_or_else(|| PodContext::without_volumes(info.clone(), &cache));
                        match preemption::preempt(&ctx, &cache, &diag) {
                            Ok(c) => {
                                cache.nominate(info.clone(), &c.node);
                                preempt = Some(c);
                            }
                            Err(msg) => diag.postfilter = Some(msg),
                        }
                    }
                    Outcome::Failed { diag, preempt }
                }
            }
        };
        match outcome {
            Outcome::Assumed(node) => {
                self.queue.done(&info.key);
                self.bind(info, node, qp.attempts);
            }
            Outcome::Failed { diag, preempt } => self.failed(qp, diag, preempt),
        }
    }

    fn bind(&mut self, info: Arc<PodInfo>, node: String, attempts: u32) {
        let client = self.client.clone();
        let cache = self.cache.clone();
        let queue = self.queue.clone();
        let recorder = self.recorder.clone();
        let binds = self.binds.clone();
        let pod_store = self.pod_store.clone();
        self.tasks.spawn(async move {
            let _permit = binds.acquire_owned().await;
            let api: Api<Pod> = Api::namespaced(client, &info.namespace);
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(info.name.clone()),
                    namespace: Some(info.namespace.clone()),
                    uid: Some(info.uid.clone()).filter(|u| !u.is_empty()),
                    ..Default::default()
                },
                target: ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(node.clone()),
                    ..Default::default()
                },
            };
            let result: Result<serde_json::Value, kube::Error> = api
                .create_subresource("binding", &info.name, &PostParams::default(), &binding)
                .await;
            match result {
                Ok(_) => recorder.record(PodEvent {
                    note: format!(
                        "Successfully assigned {}/{} to {node}",
                        info.namespace, info.name
                    ),
                    pod: info,
                    type_: "Normal",
                    reason: "Scheduled",
                    action: "Binding",
                }),
                Err(e) => {
                    lock(&cache).forget(&info.key);
                    tracing::warn!(pod = %info.key, node = %node, error = %e, "binding failed");
                    // Like upstream, a pod that is gone or bound meanwhile is not retried.
                    let pending = pod_store.get(&info.key).is_some_and(|p| {
                        !is_bound(&p) && p.metadata.uid.as_deref() == Some(info.uid.as_str())
                    });
                    let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
                    if pending && !gone {
                        queue.requeue_after_bind_failure(info, attempts);
                    }
                }
            }
        });
    }

    fn failed(&mut self, qp: QueuedPod, diag: Diagnosis, preempt: Option<preemption::Candidate>) {
        let info = qp.info.clone();
        let plugins: HashSet<_> = diag
            .prefilter
            .iter()
            .map(|s| s.plugin)
            .chain(diag.statuses.iter().map(|(_, s)| s.plugin))
            .collect();
        self.queue.failed(&qp, plugins, true);
        let message = diag.message();
        tracing::debug!(pod = %info.key, %message, "unschedulable");
        self.recorder.record(PodEvent {
            pod: info.clone(),
            type_: "Warning",
            reason: "FailedScheduling",
            action: "Scheduling",
            note: message.clone(),
        });
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let scheduler_name = self.config.scheduler_name.clone();
        self.tasks.spawn(async move {
            let nominated = preempt.as_ref().map(|c| c.node.as_str());
            if let Err(e) =
                events::update_pod_status(&client, &info.pod, "Unschedulable", &message, nominated)
                    .await
            {
                tracing::debug!(pod = %info.key, error = %e, "updating pod status");
            }
            let Some(c) = preempt else {
                return;
            };
            for victim in c.victims {
                evict(&client, &victim, &scheduler_name).await;
                recorder.record(PodEvent {
                    note: format!("Preempted by pod {} on node {}", info.uid, c.node),
                    pod: victim,
                    type_: "Normal",
                    reason: "Preempted",
                    action: "Preempting",
                });
            }
        });
    }
}

/// Marks a preemption victim with `DisruptionTarget` and deletes it.
async fn evict(client: &kube::Client, victim: &PodInfo, scheduler_name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
    let patch = json!({"status": {"conditions": [{
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": format!("{scheduler_name}: preempting to accommodate a higher priority pod"),
        "lastTransitionTime": events::now_seconds(),
    }]}});
    if let Err(e) = api
        .patch_status(
            &victim.name,
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        tracing::debug!(pod = %victim.key, error = %e, "marking preemption victim");
    }
    if let Err(e) = api.delete(&victim.name, &DeleteParams::default()).await {
        tracing::warn!(pod = %victim.key, error = %e, "deleting preemption victim");
    }
}
