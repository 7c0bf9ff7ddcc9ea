//! rkube's kubelet: the node agent's API side. One [`Kubelet`] runs one or many nodes
//! (many: hollow nodes, all sharing one client, one pod watch, one work queue and one
//! runtime) and for each:
//!
//! - registers the Node ([`node`]): labels, capacity and allocatable, conditions
//!   (MemoryPressure, DiskPressure, PIDPressure, Ready), addresses, nodeInfo, and the
//!   podCIDR (from the Node's spec when set, else the configured one);
//! - renews its Lease in `kube-node-lease` every 10 s and re-reports node status every
//!   5 minutes;
//! - runs the pods bound to it ([`worker`]): every change to a pod or its containers puts
//!   the pod's key on a work queue; a worker brings the runtime in line with the pod (a
//!   sandbox with an IP from the podCIDR, init containers in order, containers restarted
//!   per restartPolicy with CrashLoopBackOff back-off, everything stopped when the pod is
//!   deleted) and writes the status upstream's kubelet would ([`status`]) as a merge patch
//!   of `pods/status`; a deleted pod is removed with grace period 0 once its containers
//!   have stopped.
//!
//! The runtime is the [`runtime::Runtime`] trait; hollow nodes use [`runtime::FakeRuntime`].

pub mod ipam;
pub mod node;
pub mod runtime;
pub mod status;
pub mod testing;
pub mod worker;

pub use node::{Capacity, NodeIdentity};
pub use worker::{Kubelet, KubeletConfig, KubeletError};
