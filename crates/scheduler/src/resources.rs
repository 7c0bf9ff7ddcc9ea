//! Compute resources as the scheduler counts them: a pod's effective requests (containers,
//! restartable init containers, the largest regular init container, pod overhead), the
//! "non-zero" requests used for scoring (100m CPU and 200 MiB memory for a container that
//! requests none), and a node's allocatable resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rkube_validation::quantity::Quantity as Parsed;

/// CPU assumed for scoring when a container requests none (upstream's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory assumed for scoring when a container requests none (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource: CPU in millicores, memory and ephemeral storage in bytes,
/// a pod count, and scalar (extended, hugepages) resources in units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    pub scalar: BTreeMap<String, i64>,
}

fn value(q: &Quantity) -> i64 {
    Parsed::parse(&q.0)
        .map(|p| p.value().clamp(0, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

fn milli_value(q: &Quantity) -> i64 {
    Parsed::parse(&q.0)
        .map(|p| p.milli_value().clamp(0, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

/// Whether the scheduler accounts a resource name as a scalar resource (extended
/// resources, hugepages, attachable volumes).
pub fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/')
            && !name.starts_with("kubernetes.io/")
            && !name.starts_with("requests."))
}

impl Resources {
    /// From a resource list (requests or allocatable).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        if let Some(list) = list {
            r.add_list(list);
        }
        r
    }

    fn add_list(&mut self, list: &BTreeMap<String, Quantity>) {
        for (name, q) in list {
            match name.as_str() {
                "cpu" => self.milli_cpu += milli_value(q),
                "memory" => self.memory += value(q),
                "ephemeral-storage" => self.ephemeral_storage += value(q),
                "pods" => self.pods += value(q),
                n if is_scalar(n) => *self.scalar.entry(n.to_string()).or_default() += value(q),
                _ => {}
            }
        }
    }

    /// Adds `other` to this amount.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from this amount.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each resource to at least `other`'s amount.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Whether nothing is requested (a pod needing only a pod slot).
    pub fn is_empty(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn container_non_zero(c: &Container) -> (i64, i64) {
    let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let cpu = req
        .and_then(|r| r.get("cpu"))
        .map(milli_value)
        .unwrap_or(DEFAULT_MILLI_CPU_REQUEST);
    let mem = req
        .and_then(|r| r.get("memory"))
        .map(value)
        .unwrap_or(DEFAULT_MEMORY_REQUEST);
    (cpu, mem)
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A pod's effective requests: the sum of its containers and restartable init
/// containers, at least each regular init container (plus the sidecars started before
/// it), plus the pod overhead. `pods` is 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Default::default()
        };
    };
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container_requests(c));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if is_sidecar(c) {
            sidecars.add(&r);
            total.add(&r);
        } else {
            let mut with_sidecars = sidecars.clone();
            with_sidecars.add(&r);
            init_max.max_with(&with_sidecars);
        }
    }
    total.max_with(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add_list(overhead);
    }
    total.pods = 1;
    total
}

/// The CPU (millicores) and memory (bytes) a pod counts with for scoring: each container
/// without a request counts upstream's defaults.
pub fn pod_non_zero_requests(pod: &Pod) -> (i64, i64) {
    let Some(spec) = pod.spec.as_ref() else {
        return (0, 0);
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        let (c_cpu, c_mem) = container_non_zero(c);
        cpu += c_cpu;
        mem += c_mem;
    }
    for c in spec.init_containers.iter().flatten() {
        let (c_cpu, c_mem) = container_non_zero(c);
        if is_sidecar(c) {
            cpu += c_cpu;
            mem += c_mem;
        } else {
            cpu = cpu.max(c_cpu);
            mem = mem.max(c_mem);
        }
    }
    if let Some(overhead) = spec.overhead.as_ref() {
        cpu += overhead.get("cpu").map(milli_value).unwrap_or(0);
        mem += overhead.get("memory").map(value).unwrap_or(0);
    }
    (cpu, mem)
}

/// A node's allocatable resources (capacity when allocatable is not reported).
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    Resources::from_list(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn sums_containers_and_takes_init_max_and_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m", "example.com/gpu": "1"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "2", "memory": "16Mi"}}},
            ],
            "overhead": {"cpu": "100m"},
        }));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 2100);
        assert_eq!(r.memory, 64 * 1024 * 1024);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&1));
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn sidecars_add_to_the_sum_and_to_later_init_containers() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                {"name": "i", "resources": {"requests": {"cpu": "1800m"}}},
            ],
        }));
        assert_eq!(pod_requests(&p).milli_cpu, 2300);
    }

    #[test]
    fn non_zero_requests_default_missing_values() {
        let p = pod(json!({"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
        ]}));
        assert_eq!(
            pod_non_zero_requests(&p),
            (1100, DEFAULT_MEMORY_REQUEST + (1 << 30))
        );
        assert!(pod_requests(&pod(json!({"containers": [{"name": "a"}]}))).is_empty());
    }
}
