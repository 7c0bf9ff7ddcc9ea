//! rkube's scheduler: assigns pending pods to nodes through the Kubernetes API, as
//! upstream's kube-scheduler with its default profile does.
//!
//! - [`scheduler`]: the informers, the main loop (one scheduling cycle at a time),
//!   asynchronous binding through `pods/binding`, failure handling; [`run`].
//! - [`queue`]: activeQ / backoffQ / unschedulable pods and the cluster events that move
//!   them.
//! - [`cache`]: nodes with their pods (bound and assumed), requested resources, host
//!   ports, images; preemption nominations.
//! - [`framework`]: one decision — nominated node, filtering with upstream's adaptive
//!   `percentageOfNodesToScore`, scoring, selection; the `0/N nodes are available: …`
//!   message.
//! - [`plugins`]: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
//!   NodeResourcesFit (+ LeastAllocated), NodeResourcesBalancedAllocation, ImageLocality,
//!   VolumeBinding, PodTopologySpread, InterPodAffinity, with upstream's reasons and weights.
//! - [`preemption`]: DefaultPreemption, victims and the nominated node.
//! - [`events`]: Events and the pod's `PodScheduled` condition.
//! - [`resources`], [`labels`]: requests and allocatable; selector matching.
//!
//! [`run_leader_elected`] runs the scheduler only while holding the
//! `kube-system/kube-scheduler` Lease (several instances may run; one schedules).

pub mod cache;
pub mod events;
pub mod framework;
pub mod labels;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;
#[cfg(test)]
mod testutil;

use std::time::Duration;

use rkube_client::{LeaderElectionConfig, LeaderElector, LeaderError};
pub use scheduler::{DEFAULT_SCHEDULER_NAME, SchedulerConfig, run};

/// The Lease upstream's scheduler elects its leader with.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "kube-scheduler";

/// Leader election timing (client-go's defaults unless a test shortens them).
#[derive(Clone, Debug)]
pub struct LeaderTiming {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaderTiming {
    fn default() -> Self {
        LeaderTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Runs the scheduler while this instance holds the `kube-system/kube-scheduler` Lease;
/// when leadership is lost the scheduler stops and the instance campaigns again. Returns
/// only on a configuration error.
pub async fn run_leader_elected(
    client: kube::Client,
    config: SchedulerConfig,
    timing: LeaderTiming,
) -> Result<(), LeaderError> {
    let mut le = LeaderElectionConfig::new(LEASE_NAMESPACE, LEASE_NAME, &config.identity);
    le.lease_duration = timing.lease_duration;
    le.renew_deadline = timing.renew_deadline;
    le.retry_period = timing.retry_period;
    let elector = LeaderElector::new(client.clone(), le)?;
    loop {
        match elector.run(run(client.clone(), config.clone())).await {
            Ok(()) => return Ok(()),
            Err(e) => tracing::warn!(error = %e, "scheduler lost leadership; campaigning again"),
        }
    }
}
