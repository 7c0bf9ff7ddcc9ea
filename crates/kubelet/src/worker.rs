//! The [`Kubelet`]: node registration and Lease loops, and the pod worker.
//!
//! Pods bound to this kubelet's nodes come from one informer (a field selector on
//! `spec.nodeName`); their keys, and the keys of pods whose containers changed in the
//! runtime, go on one work queue, so a pod is synced by one worker at a time. A sync is
//! level-triggered: it compares the pod with what the runtime holds for it, acts, and
//! writes the resulting status when it differs from the pod's current one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};

use crate::ipam::{Allocator, Cidr, Exhausted};
use crate::node::{self, Capacity, LEASE_NAMESPACE, NodeIdentity};
use crate::runtime::{ContainerConfig, ContainerState, Runtime, RuntimeError, SandboxConfig};
use crate::status::{self, ContainerRecord, PodRecord, merge_diff, restart_policy};

/// How the kubelet runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub nodes: Vec<NodeIdentity>,
    pub capacity: Capacity,
    /// Node Lease duration (upstream: 40 s).
    pub lease_duration: Duration,
    /// How often the Lease is renewed (upstream: 10 s).
    pub lease_renew_interval: Duration,
    /// How often node status is reported when nothing changed (upstream: 5 min).
    pub status_report_interval: Duration,
    /// CrashLoopBackOff: first back-off and its cap (upstream: 10 s, 300 s).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Pod workers (concurrent syncs of different pods).
    pub workers: usize,
    /// Nodes registered concurrently at start-up.
    pub registration_concurrency: usize,
}

impl KubeletConfig {
    /// Upstream's intervals for `nodes`.
    pub fn new(nodes: Vec<NodeIdentity>) -> Self {
        KubeletConfig {
            nodes,
            capacity: Capacity::default(),
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            workers: 16,
            registration_concurrency: 32,
        }
    }
}

/// Why a kubelet (or one pod's sync) failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("node {0} has no podCIDR yet")]
    NoPodCidr(String),
    #[error(transparent)]
    Exhausted(#[from] Exhausted),
    #[error("encoding status: {0}")]
    Json(#[from] serde_json::Error),
    #[error("registering node {node}: {source}")]
    Register { node: String, source: kube::Error },
    #[error("no nodes configured")]
    NoNodes,
}

struct NodeState {
    id: NodeIdentity,
    uid: Mutex<String>,
    ipam: Mutex<Option<Allocator>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means a task panicked mid-update; the data stays usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Go's `time.Duration` text for whole seconds (`10s`, `1m20s`, `5m0s`).
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn is_terminal(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// One or many nodes' kubelet over one client and one runtime.
pub struct Kubelet {
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: KubeletConfig,
    nodes: HashMap<String, NodeState>,
    pods: Store<Pod>,
    informer: Mutex<Option<Informer<Pod>>>,
    queue: WorkQueue<String>,
    records: Mutex<HashMap<String, PodRecord>>,
    /// Nodes simulating a dead kubelet (see [`Kubelet::stop_node`]).
    stopped: Mutex<std::collections::HashSet<String>>,
}

impl Kubelet {
    pub fn new(
        client: kube::Client,
        runtime: Arc<dyn Runtime>,
        config: KubeletConfig,
    ) -> Result<Arc<Self>, KubeletError> {
        if config.nodes.is_empty() {
            return Err(KubeletError::NoNodes);
        }
        let selector = match config.nodes.as_slice() {
            [one] => format!("spec.nodeName={}", one.name),
            _ => "spec.nodeName!=".to_string(),
        };
        let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::exponential(
            Duration::from_millis(100),
            Duration::from_secs(30),
        ));
        let nodes: HashMap<String, NodeState> = config
            .nodes
            .iter()
            .map(|id| {
                (
                    id.name.clone(),
                    NodeState {
                        id: id.clone(),
                        uid: Mutex::new(String::new()),
                        ipam: Mutex::new(id.pod_cidr.map(Allocator::new)),
                    },
                )
            })
            .collect();
        let names: std::collections::HashSet<String> = nodes.keys().cloned().collect();
        let q = queue.clone();
        let informer = Informer::new(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(&selector),
        )
        .with_transform(strip_managed_fields)
        .on_change(move |c: &Change<Pod>| {
            if names.contains(node_of(c.object())) {
                q.add(key_of(c.object().as_ref()));
            }
        });
        Ok(Arc::new(Kubelet {
            client,
            runtime,
            pods: informer.store(),
            informer: Mutex::new(Some(informer)),
            config,
            nodes,
            queue,
            records: Mutex::new(HashMap::new()),
            stopped: Mutex::new(Default::default()),
        }))
    }

    /// Makes node `name` behave like a kubelet that died (for tests of node failure): it
    /// stops renewing its Lease, reporting status and syncing its pods, until
    /// [`Kubelet::resume_node`]. Returns false for a node this kubelet does not run.
    pub fn stop_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name) && lock(&self.stopped).insert(name.to_string())
    }

    /// Undoes [`Kubelet::stop_node`]; the node's pods are synced again.
    pub fn resume_node(&self, name: &str) {
        if lock(&self.stopped).remove(name) {
            for p in self.pods.list() {
                if node_of(&p) == name {
                    self.queue.add(key_of(p.as_ref()));
                }
            }
        }
    }

    fn is_stopped(&self, node: &str) -> bool {
        lock(&self.stopped).contains(node)
    }

    /// Pods this kubelet currently runs (has runtime state for).
    pub fn running_pods(&self) -> usize {
        lock(&self.records)
            .values()
            .filter(|r| !r.terminated)
            .count()
    }

    /// Registers every node, then runs until the returned future is dropped (which stops
    /// every task it started).
    pub async fn run(self: Arc<Self>) -> Result<(), KubeletError> {
        let nodes_api: Api<Node> = Api::all(self.client.clone());
        let registered = futures::stream::iter(self.config.nodes.clone())
            .map(|id| {
                let api = nodes_api.clone();
                let this = self.clone();
                async move {
                    let node =
                        node::register(&api, &id, &this.config.capacity, &this.runtime.version())
                            .await
                            .map_err(|source| KubeletError::Register {
                                node: id.name.clone(),
                                source,
                            })?;
                    this.observe_node(&node);
                    Ok::<_, KubeletError>(())
                }
            })
            .buffer_unordered(self.config.registration_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for r in registered {
            r?;
        }
        tracing::info!(nodes = self.nodes.len(), "nodes registered");

        let mut tasks = tokio::task::JoinSet::new();
        // Node specs (podCIDR set later by IPAM) and re-registration.
        let this = self.clone();
        let node_watch = match self.config.nodes.as_slice() {
            [one] => watcher::Config::default().fields(&format!("metadata.name={}", one.name)),
            _ => watcher::Config::default(),
        };
        let node_informer = Informer::new(nodes_api.clone(), node_watch)
            .with_transform(strip_managed_fields)
            .on_change(move |c: &Change<Node>| {
                if let Change::Added(n) | Change::Updated { new: n, .. } = c {
                    this.observe_node(n);
                }
            });
        let node_store = node_informer.store();
        tasks.spawn(node_informer.run());
        if let Some(informer) = lock(&self.informer).take() {
            tasks.spawn(informer.run());
        }
        if let Some(mut events) = self.runtime.take_events() {
            let q = self.queue.clone();
            tasks.spawn(async move {
                while let Some(ev) = events.recv().await {
                    q.add(format!("{}/{}", ev.pod_namespace, ev.pod_name));
                }
            });
        }
        for name in self.nodes.keys() {
            tasks.spawn(self.clone().node_loop(name.clone(), node_store.clone()));
        }
        self.pods.wait_synced().await;
        for _ in 0..self.config.workers.max(1) {
            let this = self.clone();
            tasks.spawn(async move { this.work().await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Ok(())
    }

    /// Takes a Node's uid and podCIDR into account.
    fn observe_node(&self, n: &Node) {
        let Some(state) = n
            .metadata
            .name
            .as_deref()
            .and_then(|name| self.nodes.get(name))
        else {
            return;
        };
        if let Some(uid) = &n.metadata.uid {
            *lock(&state.uid) = uid.clone();
        }
        let cidr: Option<Cidr> = n
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .and_then(|c| c.parse().ok());
        if let Some(cidr) = cidr {
            let mut ipam = lock(&state.ipam);
            if ipam.as_ref().map(|a| a.cidr()) != Some(cidr) {
                *ipam = Some(Allocator::new(cidr));
            }
        }
    }

    async fn node_loop(self: Arc<Self>, name: String, node_store: Store<Node>) {
        let Some(state) = self.nodes.get(&name) else {
            return;
        };
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let nodes: Api<Node> = Api::all(self.client.clone());
        let interval = self.config.lease_renew_interval;
        // Spread many nodes' renewals over the interval.
        tokio::time::sleep(interval.mul_f64(rand::random::<f64>())).await;
        let mut last: Option<Lease> = None;
        let mut reported = tokio::time::Instant::now();
        loop {
            if self.is_stopped(&name) {
                tokio::time::sleep(interval).await;
                continue;
            }
            let uid = lock(&state.uid).clone();
            // Calls are boxed so that a sleeping node's task stays small (thousands of
            // hollow nodes each hold one between renewals).
            match Box::pin(node::renew_lease(
                &leases,
                last.take(),
                &name,
                &uid,
                self.config.lease_duration,
            ))
            .await
            {
                Ok(mut l) => {
                    // Not needed to renew (an update without it keeps the server's).
                    l.metadata.managed_fields = None;
                    last = Some(l);
                }
                Err(e) => tracing::warn!(node = %name, error = %e, "renewing node lease"),
            }
            if reported.elapsed() >= self.config.status_report_interval {
                let version = self.runtime.version();
                let previous = node_store.get(&name);
                let result = Box::pin(async {
                    match node::report_status(
                        &nodes,
                        &state.id,
                        &self.config.capacity,
                        &version,
                        previous.as_deref(),
                    )
                    .await
                    {
                        Err(kube::Error::Api(s)) if s.code == 404 => {
                            node::register(&nodes, &state.id, &self.config.capacity, &version).await
                        }
                        other => other,
                    }
                })
                .await;
                match result {
                    Ok(n) => {
                        self.observe_node(&n);
                        reported = tokio::time::Instant::now();
                    }
                    Err(e) => tracing::warn!(node = %name, error = %e, "reporting node status"),
                }
            }
            let jitter = 1.0 + rand::random::<f64>() * 0.04;
            tokio::time::sleep(interval.mul_f64(jitter)).await;
        }
    }

    async fn work(&self) {
        while let Some(key) = self.queue.get().await {
            match self.sync(&key).await {
                Ok(again) => {
                    self.queue.forget(&key);
                    if let Some(after) = again {
                        self.queue.add_after(key.clone(), after);
                    }
                }
                Err(e) => {
                    tracing::debug!(pod = %key, error = %e, "pod sync failed; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }

    fn release_ip(&self, r: &PodRecord) {
        if let (Some(ip), Some(state)) = (r.ip, self.nodes.get(&r.node))
            && let Some(a) = lock(&state.ipam).as_mut()
        {
            a.release(ip);
        }
    }

    /// Removes everything the runtime holds for a pod.
    async fn teardown(&self, r: &mut PodRecord, grace: Duration) {
        if let Some(sb) = r.sandbox.take() {
            if let Err(e) = self.runtime.remove_pod_sandbox(&sb, grace).await {
                tracing::warn!(pod_uid = %r.uid, error = %e, "removing sandbox");
            }
            self.release_ip(r);
        }
        r.terminated = true;
    }

    fn new_record(&self, pod: &Pod) -> PodRecord {
        let spec = pod.spec.clone().unwrap_or_default();
        let old = pod.status.clone().unwrap_or_default();
        let restarts =
            |name: &str, list: &Option<Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
                list.iter()
                    .flatten()
                    .find(|s| s.name == name)
                    .map(|s| s.restart_count)
                    .unwrap_or(0)
            };
        let record = |c: &k8s_openapi::api::core::v1::Container, list| {
            let mut r = ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or(""));
            r.restart_count = restarts(&c.name, list);
            r
        };
        let node = node_of(pod).to_string();
        let host_ip = self
            .nodes
            .get(&node)
            .map(|n| n.id.internal_ip)
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        PodRecord {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            node,
            sandbox: None,
            ip: None,
            host_ip,
            start_time: old
                .start_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_else(Timestamp::now),
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| record(c, &old.init_container_statuses))
                .collect(),
            containers: spec
                .containers
                .iter()
                .map(|c| record(c, &old.container_statuses))
                .collect(),
            terminated: false,
            deleting: false,
        }
    }

    /// One pass for the pod with `key`; returns when to look again, if on a timer.
    async fn sync(&self, key: &str) -> Result<Option<Duration>, KubeletError> {
        let pod = self.pods.get(key);
        if let Some(p) = &pod
            && self.is_stopped(node_of(p))
        {
            return Ok(None);
        }
        let previous = lock(&self.records).remove(key);
        let pod = match pod {
            Some(p) if self.nodes.contains_key(node_of(&p)) => p,
            _ => {
                // Gone from the API (or moved away): stop whatever still runs.
                if let Some(mut r) = previous {
                    self.teardown(&mut r, Duration::ZERO).await;
                }
                return Ok(None);
            }
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut record = match previous {
            Some(r) if r.uid == uid => Some(r),
            Some(mut stale) => {
                self.teardown(&mut stale, Duration::ZERO).await;
                None
            }
            None => None,
        };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if record.is_none() {
            if deleting {
                // Nothing runs for it here: confirm the deletion at once.
                self.confirm_deletion(&pod).await?;
                return Ok(None);
            }
            if is_terminal(phase) {
                return Ok(None);
            }
            record = Some(self.new_record(&pod));
        }
        let Some(mut r) = record else {
            return Ok(None);
        };
        let result = self.sync_record(&pod, &mut r, deleting).await;
        let keep = !(deleting && r.terminated && result.is_ok());
        if keep {
            lock(&self.records).insert(key.to_string(), r);
        }
        result
    }

    async fn sync_record(
        &self,
        pod: &Pod,
        r: &mut PodRecord,
        deleting: bool,
    ) -> Result<Option<Duration>, KubeletError> {
        let mut again = None;
        if deleting && !r.terminated {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30)
                .max(0) as u64;
            let grace = Duration::from_secs(grace);
            for c in r.init.iter_mut().chain(r.containers.iter_mut()) {
                if let Some(cur) = &c.current
                    && cur.state == ContainerState::Running
                {
                    self.runtime.stop_container(&cur.id, grace).await?;
                }
                c.waiting = None;
                self.refresh(c).await;
            }
            r.deleting = true;
            self.teardown(r, grace).await;
        }
        if !r.terminated {
            again = self.run_containers(pod, r).await?;
        }
        let mut new = status::generate(pod, r, self.runtime.id_scheme(), Timestamp::now());
        if !r.terminated && is_terminal(new.phase.as_deref()) {
            // Ran to completion: release the sandbox and its IP.
            self.teardown(r, Duration::ZERO).await;
            new = status::generate(pod, r, self.runtime.id_scheme(), Timestamp::now());
        }
        self.write_status(pod, &new).await?;
        if deleting && r.terminated {
            self.confirm_deletion(pod).await?;
        }
        Ok(again)
    }

    async fn refresh(&self, c: &mut ContainerRecord) {
        if let Some(cur) = &c.current
            && let Ok(s) = self.runtime.container_status(&cur.id).await
        {
            c.current = Some(s);
        }
    }

    async fn start(
        &self,
        sandbox: &str,
        c: &mut ContainerRecord,
        init: bool,
    ) -> Result<(), KubeletError> {
        let config = ContainerConfig {
            name: c.name.clone(),
            image: c.image.clone(),
            attempt: c.restart_count.max(0) as u32,
            init,
        };
        let id = match self.runtime.create_container(sandbox, &config).await {
            Ok(id) => id,
            Err(e) => {
                c.waiting = Some(("CreateContainerError".into(), e.to_string()));
                return Err(e.into());
            }
        };
        if let Err(e) = self.runtime.start_container(&id).await {
            c.waiting = Some(("RunContainerError".into(), e.to_string()));
            return Err(e.into());
        }
        c.waiting = None;
        c.current = Some(self.runtime.container_status(&id).await?);
        Ok(())
    }

    /// For an exited container that the restart policy restarts: restarts it, or, inside
    /// its back-off, marks it CrashLoopBackOff and says when to look again.
    async fn restart(
        &self,
        pod: &Pod,
        sandbox: &str,
        c: &mut ContainerRecord,
        init: bool,
    ) -> Result<Option<Duration>, KubeletError> {
        let Some(cur) = c.current.clone() else {
            return Ok(None);
        };
        if let (Some(backoff), Some(finished)) = (c.backoff, cur.finished_at) {
            let since = Timestamp::now().duration_since(finished).unsigned_abs();
            if since < backoff {
                let meta = &pod.metadata;
                c.waiting = Some((
                    "CrashLoopBackOff".into(),
                    format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        go_duration(backoff),
                        c.name,
                        meta.name.as_deref().unwrap_or(""),
                        meta.namespace.as_deref().unwrap_or(""),
                        meta.uid.as_deref().unwrap_or("")
                    ),
                ));
                return Ok(Some(backoff - since));
            }
        }
        self.runtime.remove_container(&cur.id).await?;
        c.last = c.current.take();
        c.restart_count += 1;
        c.backoff = Some(match c.backoff {
            None => self.config.backoff_base,
            Some(b) => (b * 2).min(self.config.backoff_max),
        });
        self.start(sandbox, c, init).await?;
        Ok(None)
    }

    async fn run_containers(
        &self,
        pod: &Pod,
        r: &mut PodRecord,
    ) -> Result<Option<Duration>, KubeletError> {
        if r.sandbox.is_none() {
            let state = self
                .nodes
                .get(&r.node)
                .ok_or_else(|| KubeletError::NoPodCidr(r.node.clone()))?;
            let ip = match lock(&state.ipam).as_mut() {
                Some(a) => a.allocate()?,
                None => return Err(KubeletError::NoPodCidr(r.node.clone())),
            };
            let meta = &pod.metadata;
            let config = SandboxConfig {
                name: meta.name.clone().unwrap_or_default(),
                namespace: meta.namespace.clone().unwrap_or_default(),
                uid: r.uid.clone(),
                ip: Some(ip.into()),
                annotations: meta.annotations.clone().unwrap_or_default(),
            };
            match self.runtime.run_pod_sandbox(&config).await {
                Ok(id) => {
                    r.sandbox = Some(id);
                    r.ip = Some(ip);
                }
                Err(e) => {
                    if let Some(a) = lock(&state.ipam).as_mut() {
                        a.release(ip);
                    }
                    return Err(e.into());
                }
            }
        }
        let Some(sandbox) = r.sandbox.clone() else {
            return Ok(None);
        };
        let policy = restart_policy(pod).to_string();
        let mut again: Option<Duration> = None;
        let mut soonest = |d: Option<Duration>| {
            if let Some(d) = d {
                again = Some(again.map_or(d, |a| a.min(d)));
            }
        };
        let mut init_done = true;
        for c in r.init.iter_mut() {
            self.refresh(c).await;
            match c.current.as_ref().map(|s| (s.state, s.exit_code)) {
                None => {
                    self.start(&sandbox, c, true).await?;
                    init_done = false;
                    break;
                }
                Some((ContainerState::Exited, 0)) => continue,
                Some((ContainerState::Exited, _)) => {
                    if policy != "Never" {
                        soonest(self.restart(pod, &sandbox, c, true).await?);
                    }
                    init_done = false;
                    break;
                }
                Some(_) => {
                    init_done = false;
                    break;
                }
            }
        }
        if init_done {
            for c in r.containers.iter_mut() {
                self.refresh(c).await;
                match c.current.as_ref().map(|s| (s.state, s.exit_code)) {
                    None => self.start(&sandbox, c, false).await?,
                    Some((ContainerState::Exited, code)) => {
                        let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
                        if restart {
                            soonest(self.restart(pod, &sandbox, c, false).await?);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(again)
    }

    /// Writes `new` as a merge patch of the pod's status (nothing when unchanged).
    async fn write_status(
        &self,
        pod: &Pod,
        new: &k8s_openapi::api::core::v1::PodStatus,
    ) -> Result<(), KubeletError> {
        let old = match &pod.status {
            Some(s) => serde_json::to_value(s)?,
            None => serde_json::json!({}),
        };
        let new_value = serde_json::to_value(new)?;
        let Some(diff) = merge_diff(&old, &new_value) else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let patch = serde_json::json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": diff,
        });
        match api
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the pod with grace period 0 (its containers have stopped), guarded by uid.
    async fn confirm_deletion(&self, pod: &Pod) -> Result<(), KubeletError> {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or(""), &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
