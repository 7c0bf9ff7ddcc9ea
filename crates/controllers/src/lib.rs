//! rkube's controller manager and cluster controllers (upstream's
//! kube-controller-manager, minus the workload controllers, which plug in as one more
//! controller set).
//!
//! - [`manager`]: leader election through the `kube-system/kube-controller-manager` Lease;
//!   while leading it runs every registered controller set (a factory from a
//!   `kube::Client` to a future), and aborts them all when leadership is lost.
//! - [`base`]: what the controllers share: running informers and rate-limited workers as
//!   one droppable future, core/v1 Events, time helpers.
//! - The controllers, each level-triggered over `rkube-client` informers with a
//!   rate-limited work queue: [`serviceaccount`] (`default` ServiceAccount per namespace),
//!   [`rootca`] (`kube-root-ca.crt` ConfigMap per namespace), [`namespace`] (deletion of
//!   namespaced content, then finalization), [`gc`] (the garbage collector over
//!   ownerReferences), [`endpoints`] and [`endpointslice`], [`nodeipam`] and
//!   [`nodelifecycle`] (node health, taints, taint-based eviction), [`podgc`], [`ttl`]
//!   (TTL-after-finished for Jobs), [`quota`] (ResourceQuota usage) and [`disruption`]
//!   (PodDisruptionBudget status).
//!
//! - [`shared`]: the pod, node, Service and namespace informers the controllers share, so
//!   each object is cached once.
//!
//! [`cluster_sets`] gives this crate's controllers as one controller set for [`Manager`].

pub mod base;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod manager;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod quota;
pub mod rootca;
pub mod serviceaccount;
pub mod shared;
pub mod ttl;

use std::sync::Arc;
use std::time::Duration;

pub use manager::{ControllerSet, Manager, ManagerError};

use base::Tasks;
use shared::Shared;

/// Settings of the cluster controllers (defaults are upstream's, with k3s' ranges).
#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt`; without it the
    /// root-CA publisher does not run.
    pub root_ca_pem: Option<String>,
    /// The range node pod ranges are cut from.
    pub cluster_cidr: nodeipam::Cidr,
    /// Prefix length of each node's pod range.
    pub node_cidr_mask_size: u8,
    /// How long a node may go without renewing its Lease before it is marked unknown.
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    pub node_monitor_period: Duration,
    /// Terminated pods beyond this many are deleted, oldest first.
    pub terminated_pod_gc_threshold: usize,
    /// How often pod GC runs.
    pub pod_gc_period: Duration,
    /// How often quota usage is fully recomputed.
    pub quota_resync_period: Duration,
    /// How often the garbage collector re-reads discovery (to watch new resources).
    pub discovery_period: Duration,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        ControllersConfig {
            root_ca_pem: None,
            cluster_cidr: nodeipam::Cidr::parse("10.42.0.0/16").expect("valid built-in range"),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            terminated_pod_gc_threshold: 12500,
            pod_gc_period: Duration::from_secs(20),
            quota_resync_period: Duration::from_secs(30),
            discovery_period: Duration::from_secs(30),
        }
    }
}

/// This crate's controllers as controller sets for a [`Manager`]: one set, `cluster`,
/// whose controllers share their pod, node, Service and namespace informers.
pub fn cluster_sets(config: ControllersConfig) -> Vec<ControllerSet> {
    let config = Arc::new(config);
    vec![ControllerSet::new("cluster", move |client| {
        run_cluster(client, config.clone())
    })]
}

/// Runs every cluster controller until dropped.
pub async fn run_cluster(client: kube::Client, c: Arc<ControllersConfig>) {
    let shared = Shared::new(&client);
    let mut tasks = Tasks::new();
    let k = || client.clone();
    tasks.spawn(serviceaccount::run(k(), shared.clone()));
    if let Some(pem) = c.root_ca_pem.clone() {
        tasks.spawn(rootca::run(k(), shared.clone(), pem));
    }
    tasks.spawn(namespace::run(k(), shared.clone()));
    tasks.spawn(gc::run(k(), c.discovery_period));
    tasks.spawn(endpoints::run(k(), shared.clone()));
    tasks.spawn(endpointslice::run(k(), shared.clone()));
    tasks.spawn(nodeipam::run(
        k(),
        shared.clone(),
        c.cluster_cidr,
        c.node_cidr_mask_size,
    ));
    tasks.spawn(nodelifecycle::run(
        k(),
        shared.clone(),
        c.node_monitor_grace_period,
        c.node_monitor_period,
    ));
    tasks.spawn(podgc::run(
        k(),
        shared.clone(),
        c.terminated_pod_gc_threshold,
        c.pod_gc_period,
    ));
    tasks.spawn(ttl::run(k()));
    tasks.spawn(quota::run(k(), shared.clone(), c.quota_resync_period));
    tasks.spawn(disruption::run(k(), shared.clone()));
    tasks.join().await;
}
