//! End-to-end tests of the workload controllers through the API: an in-process API server,
//! hollow nodes (rkube-kubelet's fake runtime), the test-only binder standing in for the
//! scheduler, and `rkube_workloads::run_with`; driven with the `kube` crate and kubectl.

mod support;

mod cronjob;
mod daemonset;
mod deployment;
mod job;
mod replicaset;
mod statefulset;
