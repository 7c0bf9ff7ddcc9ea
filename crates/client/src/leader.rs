//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` package does it with a `LeaseLock`:
//!
//! - a candidate acquires the Lease when it does not exist, when it holds it already, when
//!   the holder is empty (released), or when the record has not changed for
//!   `leaseDuration` by the candidate's own clock (it never trusts other clocks'
//!   `renewTime`);
//! - acquiring sets `holderIdentity`, `leaseDurationSeconds`, `acquireTime` and
//!   `renewTime`, and increments `leaseTransitions` when the holder changes; renewing
//!   updates `renewTime` only; every write is guarded by the Lease's resourceVersion;
//! - the leader renews every `retryPeriod` and gives up leadership when it could not renew
//!   for `renewDeadline`;
//! - releasing (on a clean stop) empties `holderIdentity` and sets a 1-second duration, so
//!   another candidate takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Where the Lease is and how long things take.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This candidate's identity (unique among candidates: usually hostname plus a UUID).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// client-go's defaults: lease 15 s, renew deadline 10 s, retry every 2 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaderElectionConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Why leading ended.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election configuration: {0}")]
    Config(String),
    #[error("leadership of lease {namespace}/{name} lost: not renewed within {deadline:?}")]
    Lost {
        namespace: String,
        name: String,
        deadline: Duration,
    },
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// The last Lease record seen and when (by our clock) it was first seen.
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// One candidate for one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Mutex<Option<Observed>>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).max(1)
}

/// The record parts that tell whether the holder is alive (renewTime changes each renewal).
fn same_record(a: &LeaseSpec, b: &LeaseSpec) -> bool {
    a.holder_identity == b.holder_identity
        && a.renew_time == b.renew_time
        && a.acquire_time == b.acquire_time
        && a.lease_transitions == b.lease_transitions
        && a.lease_duration_seconds == b.lease_duration_seconds
}

impl LeaderElector {
    /// A candidate; the durations must satisfy client-go's rules (lease > renew deadline >
    /// retry period × 1.2, all positive).
    pub fn new(client: kube::Client, config: LeaderElectionConfig) -> Result<Self, LeaderError> {
        if config.identity.is_empty() {
            return Err(LeaderError::Config("identity must not be empty".into()));
        }
        if config.lease_duration <= config.renew_deadline {
            return Err(LeaderError::Config(
                "leaseDuration must be greater than renewDeadline".into(),
            ));
        }
        if config.renew_deadline.as_secs_f64() <= 1.2 * config.retry_period.as_secs_f64() {
            return Err(LeaderError::Config(
                "renewDeadline must be greater than retryPeriod*JitterFactor".into(),
            ));
        }
        if config.retry_period.is_zero() {
            return Err(LeaderError::Config(
                "retryPeriod must be greater than zero".into(),
            ));
        }
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    fn api_err(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// One attempt: acquires or renews the Lease. `Ok(true)` when we hold it afterwards,
    /// `Ok(false)` when another live holder has it or another candidate won the race.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        let id = &self.config.identity;
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_err(e))?;
        let Some(mut lease) = current else {
            let t = now();
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(id.clone()),
                    lease_duration_seconds: Some(secs(self.config.lease_duration)),
                    acquire_time: Some(t.clone()),
                    renew_time: Some(t),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.unwrap_or_default()).await;
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.api_err(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let observed_at = {
            let mut obs = self.observed.lock().await;
            match obs.as_ref() {
                Some(o) if same_record(&o.spec, &spec) => o.at,
                _ => {
                    let at = Instant::now();
                    *obs = Some(Observed {
                        spec: spec.clone(),
                        at,
                    });
                    at
                }
            }
        };
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let we_hold = holder == *id;
        if !holder.is_empty() && !we_hold && observed_at + duration > Instant::now() {
            return Ok(false);
        }
        let t = now();
        let mut new = spec.clone();
        new.holder_identity = Some(id.clone());
        new.lease_duration_seconds = Some(secs(self.config.lease_duration));
        new.renew_time = Some(t.clone());
        if !we_hold {
            new.acquire_time = Some(t);
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec.unwrap_or_default()).await;
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.api_err(e)),
        }
    }

    async fn observe(&self, spec: LeaseSpec) {
        *self.observed.lock().await = Some(Observed {
            spec,
            at: Instant::now(),
        });
    }

    /// Retries (every retryPeriod, with up to 20 % jitter) until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "acquired lease");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            let jitter = rand::random::<f64>() * 0.2;
            tokio::time::sleep(self.config.retry_period.mul_f64(1.0 + jitter)).await;
        }
    }

    /// Renews every retryPeriod; returns the error once renewing failed for renewDeadline.
    pub async fn keep_renewing(&self) -> LeaderError {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last = Instant::now(),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "renewing lease"),
            }
            if last.elapsed() > self.config.renew_deadline {
                return LeaderError::Lost {
                    namespace: self.config.namespace.clone(),
                    name: self.config.name.clone(),
                    deadline: self.config.renew_deadline,
                };
            }
        }
    }

    /// Gives the Lease up if we hold it (empty holder, 1-second duration).
    pub async fn release(&self) -> Result<(), LeaderError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.api_err(e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let t = now();
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(t.clone());
        spec.acquire_time = Some(t);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(self.api_err(e)),
        }
    }

    /// Waits to lead, then runs `work` while renewing. Returns `Ok` with work's output when
    /// it finishes (the Lease is released), or `Err(Lost)` when leadership was lost (work's
    /// future is dropped, as client-go cancels its context).
    pub async fn run<F: std::future::Future>(&self, work: F) -> Result<F::Output, LeaderError> {
        self.acquire().await;
        tokio::select! {
            out = work => {
                if let Err(e) = self.release().await {
                    tracing::warn!(error = %e, "releasing lease");
                }
                Ok(out)
            }
            lost = self.keep_renewing() => Err(lost),
        }
    }
}
