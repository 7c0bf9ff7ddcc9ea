//! The shared state of the workload controllers: one informer per resource they read (pods
//! are shared by all), a work queue and expectations per controller, the event recorder,
//! and the routing of every informer change to the keys of the owners it concerns — a pod
//! change to its controller (or, for an orphan, to every owner whose selector matches it),
//! a ReplicaSet change to its Deployment, and so on.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use rkube_client::{
    Change, EventBroadcaster, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields,
};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use crate::expectations::Expectations;
use crate::ownership::controller_of;
use crate::{
    Config, Error, cronjob, daemonset, deployment, job, replicaset, selector, statefulset,
};

/// The controllers that own pods.
const POD_OWNERS: &[Kind] = &[
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Job,
];

/// The controllers, for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ReplicaSet,
    ReplicationController,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
}

/// Every controller.
pub const ALL: [Kind; 7] = [
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
];

impl Kind {
    fn of(kind: &str) -> Option<Kind> {
        Some(match kind {
            "ReplicaSet" => Kind::ReplicaSet,
            "ReplicationController" => Kind::ReplicationController,
            "Deployment" => Kind::Deployment,
            "StatefulSet" => Kind::StatefulSet,
            "DaemonSet" => Kind::DaemonSet,
            "Job" => Kind::Job,
            "CronJob" => Kind::CronJob,
            _ => return None,
        })
    }
}

/// Index of every store: namespace.
pub const BY_NAMESPACE: &str = "namespace";

/// Everything a sync reads: the client, the informers' stores, the queues.
pub struct Ctx {
    pub client: Client,
    pub config: Config,
    /// Events of every controller here (`source.component` per call), correlated as upstream.
    pub recorder: EventBroadcaster,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub rcs: Store<ReplicationController>,
    pub deployments: Store<Deployment>,
    pub statefulsets: Store<StatefulSet>,
    pub daemonsets: Store<DaemonSet>,
    pub jobs: Store<Job>,
    pub cronjobs: Store<CronJob>,
    pub revisions: Store<ControllerRevision>,
    pub nodes: Store<Node>,
    /// StatefulSets' claims (their retention policy's ownerReferences).
    pub claims: Store<PersistentVolumeClaim>,
    pub job_backoffs: job::Backoffs,
    queues: HashMap<Kind, WorkQueue<String>>,
    expectations: HashMap<Kind, Expectations>,
}

impl Ctx {
    /// The controller's work queue.
    pub fn queue(&self, kind: Kind) -> &WorkQueue<String> {
        &self.queues[&kind]
    }

    /// The controller's expectations.
    pub fn expectations(&self, kind: Kind) -> &Expectations {
        &self.expectations[&kind]
    }

    /// Now, by the configured clock.
    pub fn now(&self) -> jiff::Timestamp {
        (self.config.clock)()
    }

    /// Pods in `namespace`.
    pub fn pods_in(&self, namespace: &str) -> Vec<Arc<Pod>> {
        self.pods.by_index(BY_NAMESPACE, namespace)
    }

    fn enqueue(&self, kind: Kind, key: String) {
        self.queue(kind).add(key);
    }

    /// The key of the object `r` (in `ns`) refers to, if it is in `kind`'s store with that uid.
    fn resolve(&self, kind: Kind, ns: &str, r: &OwnerReference) -> Option<String> {
        let key = format!("{ns}/{}", r.name);
        let uid = match kind {
            Kind::ReplicaSet => self.replicasets.get(&key)?.uid(),
            Kind::ReplicationController => self.rcs.get(&key)?.uid(),
            Kind::Deployment => self.deployments.get(&key)?.uid(),
            Kind::StatefulSet => self.statefulsets.get(&key)?.uid(),
            Kind::DaemonSet => self.daemonsets.get(&key)?.uid(),
            Kind::Job => self.jobs.get(&key)?.uid(),
            Kind::CronJob => self.cronjobs.get(&key)?.uid(),
        };
        (uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// Owners of `kind` in `ns` whose selector matches `labels` (for orphans).
    fn matching(
        &self,
        kind: Kind,
        ns: &str,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Vec<String> {
        fn pick<K: Resource>(
            store: &Store<K>,
            ns: &str,
            sel: impl Fn(&K) -> Option<LabelSelector>,
            labels: Option<&std::collections::BTreeMap<String, String>>,
        ) -> Vec<String> {
            store
                .by_index(BY_NAMESPACE, ns)
                .iter()
                .filter(|o| {
                    sel(o).is_some_and(|s| !selector::is_empty(&s) && selector::matches(&s, labels))
                })
                .map(|o| key_of(o.as_ref()))
                .collect()
        }
        match kind {
            Kind::ReplicaSet => pick(
                &self.replicasets,
                ns,
                |o| o.spec.as_ref().map(|s| s.selector.clone()),
                labels,
            ),
            Kind::ReplicationController => pick(
                &self.rcs,
                ns,
                |o| {
                    o.spec
                        .as_ref()
                        .map(|s| selector::from_map(s.selector.as_ref()))
                },
                labels,
            ),
            Kind::Deployment => pick(
                &self.deployments,
                ns,
                |o| o.spec.as_ref().map(|s| s.selector.clone()),
                labels,
            ),
            Kind::StatefulSet => pick(
                &self.statefulsets,
                ns,
                |o| o.spec.as_ref().map(|s| s.selector.clone()),
                labels,
            ),
            Kind::DaemonSet => pick(
                &self.daemonsets,
                ns,
                |o| o.spec.as_ref().map(|s| s.selector.clone()),
                labels,
            ),
            Kind::Job => pick(
                &self.jobs,
                ns,
                |o| o.spec.as_ref().and_then(|s| s.selector.clone()),
                labels,
            ),
            Kind::CronJob => Vec::new(),
        }
    }

    /// Routes a change of an object that owners of `kinds` control.
    fn route_owned<K: Resource>(&self, kinds: &[Kind], c: &Change<K>, track: bool) {
        let key = |o: &K| key_of(o);
        let owners = |o: &K| -> Vec<(Kind, String)> {
            let ns = o.meta().namespace.clone().unwrap_or_default();
            match controller_of(o) {
                Some(r) => Kind::of(&r.kind)
                    .filter(|k| kinds.contains(k))
                    .and_then(|k| self.resolve(k, &ns, r).map(|key| (k, key)))
                    .into_iter()
                    .collect(),
                None => kinds
                    .iter()
                    .flat_map(|k| {
                        self.matching(*k, &ns, o.meta().labels.as_ref())
                            .into_iter()
                            .map(move |key| (*k, key))
                    })
                    .collect(),
            }
        };
        match c {
            Change::Added(o) => {
                for (k, owner) in owners(o) {
                    if track && controller_of(o.as_ref()).is_some() {
                        if o.meta().deletion_timestamp.is_some() {
                            self.expectations(k).deletion_observed(&owner, &key(o));
                        } else {
                            self.expectations(k).creation_observed(&owner);
                        }
                    }
                    self.enqueue(k, owner);
                }
            }
            Change::Updated { old, new } => {
                let now_owners = owners(new);
                if track
                    && new.meta().deletion_timestamp.is_some()
                    && old.meta().deletion_timestamp.is_none()
                {
                    for (k, owner) in &now_owners {
                        self.expectations(*k).deletion_observed(owner, &key(new));
                    }
                }
                if controller_of(old.as_ref()).map(|r| &r.uid)
                    != controller_of(new.as_ref()).map(|r| &r.uid)
                    || old.meta().labels != new.meta().labels
                {
                    for (k, owner) in owners(old) {
                        self.enqueue(k, owner);
                    }
                }
                for (k, owner) in now_owners {
                    self.enqueue(k, owner);
                }
            }
            Change::Deleted(o) => {
                if let Some(r) = controller_of(o.as_ref()) {
                    let ns = o.meta().namespace.clone().unwrap_or_default();
                    if let Some(k) = Kind::of(&r.kind).filter(|k| kinds.contains(k))
                        && let Some(owner) = self.resolve(k, &ns, r)
                    {
                        if track {
                            self.expectations(k).deletion_observed(&owner, &key(o));
                        }
                        self.enqueue(k, owner);
                    }
                }
            }
        }
    }

    /// The Deployment controlling the ReplicaSet that controls `pod`, if any.
    fn deployment_of_pod(&self, pod: &Pod) -> Option<String> {
        let ns = pod.namespace().unwrap_or_default();
        let r = controller_of(pod)?;
        let rs_key = self.resolve(Kind::ReplicaSet, &ns, r)?;
        let rs = self.replicasets.get(&rs_key)?;
        self.resolve(Kind::Deployment, &ns, controller_of(rs.as_ref())?)
    }
}

fn informer<K>(client: &Client) -> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    Informer::new(
        Api::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .with_transform(strip_managed_fields)
    .with_index(BY_NAMESPACE, |o: &K| {
        vec![o.meta().namespace.clone().unwrap_or_default()]
    })
}

type SyncFn =
    fn(Arc<Ctx>, String) -> futures::future::BoxFuture<'static, Result<Option<Duration>, Error>>;

async fn worker(ctx: Arc<Ctx>, kind: Kind, sync: SyncFn) {
    let queue = ctx.queue(kind).clone();
    while let Some(key) = queue.get().await {
        match sync(ctx.clone(), key.clone()).await {
            Ok(again) => {
                queue.forget(&key);
                if let Some(d) = again {
                    queue.add_after(key.clone(), d);
                }
            }
            Err(e) => {
                tracing::debug!(?kind, %key, error = %e, "sync failed, retrying");
                queue.add_rate_limited(key.clone());
            }
        }
        queue.done(&key);
    }
}

/// Builds the informers and queues, runs the informers, waits for their first lists, and
/// runs the controllers' workers — all in one `JoinSet`, so dropping this future stops them.
pub async fn run(client: Client, config: Config) {
    let mut tasks = JoinSet::new();
    let (recorder, writer) = EventBroadcaster::new(client.clone());
    tasks.spawn(writer);

    let pods = informer::<Pod>(&client);
    let replicasets = informer::<ReplicaSet>(&client);
    let rcs = informer::<ReplicationController>(&client);
    let deployments = informer::<Deployment>(&client);
    let statefulsets = informer::<StatefulSet>(&client);
    let daemonsets = informer::<DaemonSet>(&client);
    let jobs = informer::<Job>(&client);
    let cronjobs = informer::<CronJob>(&client);
    let revisions = informer::<ControllerRevision>(&client);
    let nodes = informer::<Node>(&client);
    let claims = informer::<PersistentVolumeClaim>(&client);

    let kinds = ALL;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder,
        pods: pods.store(),
        replicasets: replicasets.store(),
        rcs: rcs.store(),
        deployments: deployments.store(),
        statefulsets: statefulsets.store(),
        daemonsets: daemonsets.store(),
        jobs: jobs.store(),
        cronjobs: cronjobs.store(),
        revisions: revisions.store(),
        nodes: nodes.store(),
        claims: claims.store(),
        job_backoffs: Default::default(),
        queues: kinds
            .iter()
            .map(|k| (*k, WorkQueue::new(RateLimiter::default_controller())))
            .collect(),
        expectations: kinds
            .iter()
            .map(|k| (*k, Expectations::default()))
            .collect(),
        config,
    });

    let c = ctx.clone();
    let pods = pods.on_change(move |ch| {
        c.route_owned(POD_OWNERS, ch, true);
        if let Change::Added(p) | Change::Updated { new: p, .. } = ch
            && let Some(job) = job::orphaned_job_pod(&c, p)
        {
            c.enqueue(Kind::Job, job);
        }
        if let Change::Deleted(p) = ch
            && let Some(d) = c.deployment_of_pod(p)
        {
            c.enqueue(Kind::Deployment, d);
        }
    });
    let c = ctx.clone();
    let replicasets = replicasets.on_change(move |ch| {
        if let Change::Deleted(o) = ch {
            c.expectations(Kind::ReplicaSet).delete(&key_of(o.as_ref()));
        }
        c.enqueue(Kind::ReplicaSet, key_of(ch.object().as_ref()));
        c.route_owned(&[Kind::Deployment], ch, false);
    });
    let c = ctx.clone();
    let rcs = rcs.on_change(move |ch| {
        if let Change::Deleted(o) = ch {
            c.expectations(Kind::ReplicationController)
                .delete(&key_of(o.as_ref()));
        }
        c.enqueue(Kind::ReplicationController, key_of(ch.object().as_ref()));
    });
    let c = ctx.clone();
    let deployments = deployments.on_change(move |ch| {
        c.enqueue(Kind::Deployment, key_of(ch.object().as_ref()));
    });

    let c = ctx.clone();
    let statefulsets = statefulsets.on_change(move |ch| {
        c.enqueue(Kind::StatefulSet, key_of(ch.object().as_ref()));
    });
    let c = ctx.clone();
    let daemonsets = daemonsets.on_change(move |ch| {
        if let Change::Deleted(o) = ch {
            c.expectations(Kind::DaemonSet).delete(&key_of(o.as_ref()));
        }
        c.enqueue(Kind::DaemonSet, key_of(ch.object().as_ref()));
    });
    let c = ctx.clone();
    let jobs = jobs.on_change(move |ch| {
        if let Change::Deleted(o) = ch {
            c.expectations(Kind::Job).delete(&key_of(o.as_ref()));
            // Its pods may still hold the tracking finalizer.
        }
        c.enqueue(Kind::Job, key_of(ch.object().as_ref()));
        c.route_owned(&[Kind::CronJob], ch, false);
    });
    let c = ctx.clone();
    let cronjobs = cronjobs.on_change(move |ch| {
        c.enqueue(Kind::CronJob, key_of(ch.object().as_ref()));
    });
    let c = ctx.clone();
    let claims = claims.on_change(move |ch| {
        // A set may be waiting for a stale claim to go before it recreates a pod.
        if let Change::Deleted(claim) = ch {
            let ns = claim.metadata.namespace.clone().unwrap_or_default();
            for set in c.statefulsets.by_index(BY_NAMESPACE, &ns) {
                c.enqueue(Kind::StatefulSet, key_of(set.as_ref()));
            }
        }
    });
    let c = ctx.clone();
    let nodes = nodes.on_change(move |_| {
        for key in c.daemonsets.keys() {
            c.enqueue(Kind::DaemonSet, key);
        }
    });

    tasks.spawn(pods.run());
    tasks.spawn(replicasets.run());
    tasks.spawn(rcs.run());
    tasks.spawn(deployments.run());
    tasks.spawn(statefulsets.run());
    tasks.spawn(daemonsets.run());
    tasks.spawn(jobs.run());
    tasks.spawn(cronjobs.run());
    tasks.spawn(revisions.run());
    tasks.spawn(nodes.run());
    tasks.spawn(claims.run());

    ctx.pods.wait_synced().await;
    ctx.replicasets.wait_synced().await;
    ctx.rcs.wait_synced().await;
    ctx.deployments.wait_synced().await;
    ctx.statefulsets.wait_synced().await;
    ctx.daemonsets.wait_synced().await;
    ctx.jobs.wait_synced().await;
    ctx.cronjobs.wait_synced().await;
    ctx.revisions.wait_synced().await;
    ctx.nodes.wait_synced().await;
    ctx.claims.wait_synced().await;

    let workers: Vec<(Kind, SyncFn)> = vec![
        (Kind::ReplicaSet, |c, k| {
            Box::pin(replicaset::sync(c, Kind::ReplicaSet, k))
        }),
        (Kind::ReplicationController, |c, k| {
            Box::pin(replicaset::sync(c, Kind::ReplicationController, k))
        }),
        (Kind::Deployment, |c, k| Box::pin(deployment::sync(c, k))),
        (Kind::StatefulSet, |c, k| Box::pin(statefulset::sync(c, k))),
        (Kind::DaemonSet, |c, k| Box::pin(daemonset::sync(c, k))),
        (Kind::Job, |c, k| Box::pin(job::sync(c, k))),
        (Kind::CronJob, |c, k| Box::pin(cronjob::sync(c, k))),
    ];
    for (kind, sync) in workers {
        for _ in 0..ctx.config.workers.max(1) {
            tasks.spawn(worker(ctx.clone(), kind, sync));
        }
    }
    while tasks.join_next().await.is_some() {}
}
