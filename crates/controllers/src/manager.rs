//! The controller manager: one candidate for the `kube-system/kube-controller-manager`
//! Lease. While it leads, every registered [`ControllerSet`] runs as its own task (the set's
//! factory is called with a clone of the manager's client); when leadership is lost every
//! task is aborted, and the factories are called again once the Lease is re-acquired.
//! A controller set that ends on its own (or panics) is logged and started again after a
//! short pause, as long as the manager leads.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rkube_client::{LeaderElectionConfig, LeaderElector, LeaderError};
use tokio::task::JoinSet;

/// The Lease upstream's kube-controller-manager elects its leader with.
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "kube-controller-manager";

/// Makes a controller set's future from a client.
pub type Factory = Box<dyn Fn(kube::Client) -> BoxFuture<'static, ()> + Send + Sync>;

/// A named group of controllers started and aborted together.
pub struct ControllerSet {
    pub name: String,
    factory: Factory,
}

impl ControllerSet {
    /// A set from any `Fn(kube::Client) -> impl Future<Output = ()>`, for example
    /// `ControllerSet::new("workloads", rkube_workloads::run)`.
    pub fn new<F, Fut>(name: &str, f: F) -> Self
    where
        F: Fn(kube::Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        ControllerSet {
            name: name.to_string(),
            factory: Box::new(move |c| f(c).boxed()),
        }
    }

    fn start(&self, client: kube::Client) -> BoxFuture<'static, ()> {
        (self.factory)(client)
    }
}

/// Why the manager stopped.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// The controller manager.
pub struct Manager {
    client: kube::Client,
    sets: Vec<ControllerSet>,
    election: LeaderElectionConfig,
}

/// This process's candidate identity: hostname plus a random suffix (upstream's form).
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "rkube".into()
    } else {
        host
    };
    format!("{host}_{:016x}", rand::random::<u64>())
}

impl Manager {
    /// A manager electing through the `kube-system/kube-controller-manager` Lease with
    /// client-go's default timing.
    pub fn new(client: kube::Client) -> Self {
        Manager {
            client,
            sets: Vec::new(),
            election: LeaderElectionConfig::new(LEASE_NAMESPACE, LEASE_NAME, &default_identity()),
        }
    }

    /// Replaces the leader election settings (identity, timing).
    pub fn with_election(mut self, config: LeaderElectionConfig) -> Self {
        self.election = config;
        self
    }

    /// Adds a controller set.
    pub fn with_set(mut self, set: ControllerSet) -> Self {
        self.sets.push(set);
        self
    }

    /// Adds several controller sets.
    pub fn with_sets(mut self, sets: impl IntoIterator<Item = ControllerSet>) -> Self {
        self.sets.extend(sets);
        self
    }

    /// Names of the registered sets.
    pub fn set_names(&self) -> Vec<String> {
        self.sets.iter().map(|s| s.name.clone()).collect()
    }

    /// Campaigns for the Lease and runs the controller sets while leading, forever (until
    /// the future is dropped, which aborts every set), or until `stop` resolves, when the
    /// sets are aborted and the Lease released so another manager takes over at once.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), ManagerError> {
        let elector = LeaderElector::new(self.client.clone(), self.election.clone())?;
        futures::pin_mut!(stop);
        loop {
            tokio::select! {
                _ = elector.acquire() => {}
                _ = &mut stop => return Ok(()),
            }
            tracing::info!(identity = %self.election.identity, sets = ?self.set_names(), "leading: starting controllers");
            let mut tasks = JoinSet::new();
            for (i, set) in self.sets.iter().enumerate() {
                tasks.spawn(guarded(set.start(self.client.clone()), i));
            }
            let outcome = self.lead(&elector, &mut tasks, &mut stop).await;
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            match outcome {
                Lead::Lost(e) => {
                    tracing::error!(error = %e, "leadership lost: controllers stopped");
                }
                Lead::Stopped => {
                    if let Err(e) = elector.release().await {
                        tracing::warn!(error = %e, "releasing the controller manager lease");
                    }
                    return Ok(());
                }
            }
        }
    }

    async fn lead(
        &self,
        elector: &LeaderElector,
        tasks: &mut JoinSet<usize>,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) -> Lead {
        let renew = elector.keep_renewing();
        futures::pin_mut!(renew);
        loop {
            tokio::select! {
                e = &mut renew => return Lead::Lost(e),
                _ = &mut *stop => return Lead::Stopped,
                Some(done) = tasks.join_next() => {
                    // Tasks catch their own panics, so a finished task always names its set.
                    let Ok(i) = done else { continue };
                    let set = &self.sets[i];
                    tracing::warn!(set = %set.name, "controller set ended; restarting it");
                    let fut = set.start(self.client.clone());
                    tasks.spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        guarded(fut, i).await
                    });
                }
            }
        }
    }
}

/// Runs a set's future, turning a panic into an ordinary end (logged).
async fn guarded(fut: BoxFuture<'static, ()>, i: usize) -> usize {
    if let Err(p) = std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %msg, "a controller set panicked");
    }
    i
}

enum Lead {
    Lost(LeaderError),
    Stopped,
}

/// Why the cluster CA could not be read from a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig {path}: certificate-authority-data is not base64: {source}")]
    Base64 {
        path: String,
        source: base64::DecodeError,
    },
    #[error("reading the CA file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// The CA (PEM) of the kubeconfig's current cluster, from `certificate-authority-data` or
/// the `certificate-authority` file; `None` when it names none.
pub fn ca_from_kubeconfig(path: &std::path::Path) -> Result<Option<String>, CaError> {
    use base64::Engine;
    let shown = path.display().to_string();
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| CaError::Kubeconfig {
        path: shown.clone(),
        source,
    })?;
    let context = kc
        .current_context
        .as_ref()
        .and_then(|c| kc.contexts.iter().find(|n| &n.name == c))
        .and_then(|n| n.context.as_ref());
    let cluster_name = context.map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| cluster_name.is_none() || Some(&c.name) == cluster_name.as_ref())
        .and_then(|c| c.cluster.as_ref());
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|source| CaError::Base64 {
                path: shown.clone(),
                source,
            })?;
        return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
    }
    if let Some(file) = &cluster.certificate_authority {
        return std::fs::read_to_string(file)
            .map(Some)
            .map_err(|source| CaError::File {
                path: file.clone(),
                source,
            });
    }
    Ok(None)
}
