//! rkube's controller machinery: what every component that watches and writes through the
//! Kubernetes API shares (scheduler, controllers, kubelet), shaped after client-go.
//!
//! - [`informer`]: a shared informer — list+watch of one resource through
//!   `kube::runtime::watcher` (resumes from the last resourceVersion, re-lists on
//!   `410 Gone`, asks for bookmarks) — keeping an indexed [`Store`] current and calling
//!   registered handlers with every [`Change`].
//! - [`queue`]: a work queue with client-go's semantics (de-duplication; an item being
//!   processed is never handed out twice, re-adds while it is processed are deferred until
//!   `done`), delayed adds, and per-item exponential backoff with an overall token bucket.
//! - [`leader`]: leader election through a `coordination.k8s.io/v1` Lease, with
//!   client-go's timing (lease 15 s, renew deadline 10 s, retry 2 s) and record semantics
//!   (holderIdentity, acquireTime, renewTime, leaseTransitions).
//! - [`connect`]: a `kube::Client` from a kubeconfig file.
//! - [`events`]: core/v1 Events as client-go's `record` package writes them — a
//!   non-blocking [`Recorder`] per component feeding one writer through upstream's
//!   `EventCorrelator` (aggregation of similar events, de-duplication by PATCHing `count`
//!   and `lastTimestamp`, a per-object spam filter).
//!
//! A typical controller: build an [`Informer`] per resource it reads, register a handler
//! that adds object keys ([`key_of`]) to a [`WorkQueue`], spawn [`Informer::run`], wait for
//! [`Store::wait_synced`], then run workers that `get` a key, reconcile from the store, and
//! `forget` or `add_rate_limited` it before `done`.

pub mod connect;
pub mod events;
pub mod informer;
pub mod leader;
pub mod queue;

pub use connect::{ConnectError, client_from_kubeconfig};
pub use events::{EventBroadcaster, Recorder};
pub use informer::{Change, Informer, Store, key_of, strip_managed_fields};
pub use leader::{LeaderElectionConfig, LeaderElector, LeaderError};
pub use queue::{RateLimiter, WorkQueue};
