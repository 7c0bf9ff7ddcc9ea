//! rkube's workload controllers — ReplicaSet, ReplicationController, Deployment,
//! StatefulSet, DaemonSet, Job and CronJob — as upstream's kube-controller-manager runs
//! them: level-triggered reconcilers over shared informers, each with a rate-limited work
//! queue, owning what they create through controller ownerReferences, recording upstream's
//! Events and writing status exactly as upstream does.
//!
//! [`run`] starts them all on one client; dropping its future stops everything (every task
//! lives in a `JoinSet` owned by it), so a controller manager can abort it when it loses
//! leadership and call it again later.
//!
//! Modules: [`context`] (the shared informers, queues and routing of changes to owners),
//! [`ownership`] (controllerRef adopt/release), [`expectations`], [`pods`] (readiness,
//! availability, slow start, deletion ranking), [`selector`], and one module per
//! controller.

pub mod context;
pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod expectations;
pub mod history;
pub mod job;
pub mod ownership;
pub mod pods;
pub mod replicaset;
pub mod selector;
pub mod statefulset;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

pub use context::Ctx;

/// Errors of one sync; the key is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
}

/// What upstream writes for a failed request (Go's `err.Error()`): the API server's
/// message (`pods "web-x2x9k" is forbidden: exceeded quota: …`), else the error itself.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// The clock the controllers read (tests may shift it).
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// Tunables; [`Config::default`] is upstream's behaviour.
#[derive(Clone)]
pub struct Config {
    /// Concurrent syncs per controller (upstream: 5 for ReplicaSets and Deployments).
    pub workers: usize,
    /// Job pod-failure backoff: base (upstream 10 s) doubling up to max (6 min).
    pub job_backoff_base: Duration,
    pub job_backoff_max: Duration,
    /// Current time.
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 5,
            job_backoff_base: Duration::from_secs(10),
            job_backoff_max: Duration::from_secs(360),
            clock: Arc::new(jiff::Timestamp::now),
        }
    }
}

/// Runs every workload controller with default settings until dropped.
pub fn run(client: kube::Client) -> impl Future<Output = ()> + Send + 'static {
    run_with(client, Config::default())
}

/// Runs every workload controller with `config` until dropped.
pub fn run_with(client: kube::Client, config: Config) -> impl Future<Output = ()> + Send + 'static {
    context::run(client, config)
}
