//! The scheduler's view of the cluster: every node with the pods on it (bound, or assumed
//! by this scheduler while their binding is in flight), the resources they request, the
//! host ports they use, the images the node holds; and the pods nominated to nodes by
//! preemption. Informer handlers keep it current; a scheduling cycle holds its lock, so
//! the cycle sees one consistent snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A map hashed with foldhash (names and pod keys, hashed on every lookup of the cycle).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint};

use crate::labels::Labels;
use crate::resources::{self, Resources};

/// A host port a pod uses: (host IP, protocol, port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream's conflict rule: same protocol and port, and the same IP or either is the
    /// wildcard.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let wild = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || wild(&self.ip) || wild(&other.ip))
    }
}

/// A pod affinity term with its namespaces resolved.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    /// Namespaces the term selects pods from; `None` means all (an empty
    /// namespaceSelector).
    pub namespaces: Option<Vec<String>>,
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(owner_ns: &str, term: &PodAffinityTerm) -> AffinityTerm {
        let listed = term.namespaces.clone().unwrap_or_default();
        let namespaces = match (&term.namespace_selector, listed.is_empty()) {
            (None, true) => Some(vec![owner_ns.to_string()]),
            // An empty namespaceSelector selects every namespace.
            (Some(sel), _)
                if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
            {
                None
            }
            _ => Some(listed),
        };
        AffinityTerm {
            namespaces,
            selector: term.label_selector.clone(),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether the term selects `pod`.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        if let Some(ns) = &self.namespaces
            && !ns.contains(&pod.namespace)
        {
            return false;
        }
        crate::labels::selector_or_nothing(self.selector.as_ref(), &pod.labels)
    }
}

/// What the scheduler needs of a pod, computed once per pod version.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resources,
    pub non_zero: (i64, i64),
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<(i32, AffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i32, AffinityTerm)>,
    pub terminating: bool,
    /// status.startTime (or creation) in Unix seconds, for preemption's ordering.
    pub start_time: i64,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.iter().flat_map(|s| s.containers.iter()) {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                    host_ports.push(HostPort {
                        ip: p.host_ip.clone().unwrap_or_default(),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let terms = |ts: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            ts.into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(&namespace, t))
                .collect()
        };
        let weighted = |ts: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            ts.into_iter()
                .flatten()
                .map(|w| {
                    (
                        w.weight,
                        AffinityTerm::new(&namespace, &w.pod_affinity_term),
                    )
                })
                .collect::<Vec<_>>()
        };
        let required_affinity = terms(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = terms(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_affinity = weighted(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = weighted(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(pod.metadata.creation_timestamp.as_ref())
            .map(|t| t.0.as_second())
            .unwrap_or(0);
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            requests: resources::pod_requests(&pod),
            non_zero: resources::pod_non_zero_requests(&pod),
            host_ports,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            start_time,
            namespace,
            name,
            pod,
        }
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }

    fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// A pod's images as ImageLocality names them (a tag defaults to `latest`).
pub fn normalized_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// One node and what is on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while pods name a node the cache has not seen (yet).
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub requested: Resources,
    /// Scoring requests (CPU millicores, memory bytes) with upstream's non-zero defaults.
    pub non_zero_requested: (i64, i64),
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    /// Normalized image name → size in bytes.
    pub images: HashMap<String, i64>,
}

impl NodeInfo {
    fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.allocatable = resources::node_allocatable(&node);
        self.images.clear();
        for img in node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
        {
            for n in img.names.iter().flatten() {
                self.images
                    .insert(normalized_image(n), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
    }

    /// Adds a pod's requests, ports and affinity counts.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_requested.0 += p.non_zero.0;
        self.non_zero_requested.1 += p.non_zero.1;
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(p);
    }

    /// Removes the pod with key `key`; returns it.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.0 -= p.non_zero.0;
        self.non_zero_requested.1 -= p.non_zero.1;
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if p.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(p)
    }
}

#[derive(Clone, Debug)]
struct PodState {
    node: String,
    assumed: bool,
}

/// The scheduler cache. Not internally locked: the scheduler wraps it in a mutex.
#[derive(Default)]
pub struct Cache {
    /// Boxed, so that the table the scheduling cycle probes for every node it visits stays
    /// small enough for the CPU's caches (with node infos inline, each probe was a cache miss
    /// and the lookups took a quarter of the scheduler's time at 5,000 nodes).
    nodes: FastMap<String, Box<NodeInfo>>,
    /// Names of nodes with a Node object, in the order the cycle walks them.
    order: Vec<String>,
    pods: FastMap<String, PodState>,
    /// Image name → number of nodes holding it.
    image_nodes: HashMap<String, usize>,
    /// Node → pods nominated to it by preemption (not yet bound).
    nominated: BTreeMap<String, Vec<Arc<PodInfo>>>,
    nominated_of: HashMap<String, String>,
    /// Pods (anywhere) with any affinity terms / with required anti-affinity: when none,
    /// InterPodAffinity need not walk the nodes.
    affinity_pods: usize,
    anti_affinity_pods: usize,
}

/// Whether the cache accounts a pod: bound and not finished.
pub fn counts(pod: &Pod) -> bool {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    bound && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Nodes with Node objects (the "N" of "0/N nodes are available").
    pub fn num_nodes(&self) -> usize {
        self.order.len()
    }

    /// The node names in walk order.
    pub fn node_names(&self) -> &[String] {
        &self.order
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes
            .get(name)
            .map(|n| &**n)
            .filter(|n| n.node.is_some())
    }

    /// Every node info with a Node object.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.order
            .iter()
            .filter_map(|n| self.nodes.get(n).map(|b| &**b))
    }

    /// How many nodes hold an image.
    pub fn image_spread(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Adds or updates a node.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.nodes.entry(name.clone()).or_insert_with(|| {
            Box::new(NodeInfo {
                name: name.clone(),
                ..Default::default()
            })
        });
        for img in info.images.keys() {
            if let Some(c) = self.image_nodes.get_mut(img) {
                *c = c.saturating_sub(1);
            }
        }
        let was_known = info.node.is_some();
        info.set_node(node);
        for img in info.images.keys() {
            *self.image_nodes.entry(img.clone()).or_default() += 1;
        }
        if !was_known {
            self.order.push(name);
        }
    }

    /// Removes a node (its pods stay accounted under its name until they go).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            for img in info.images.keys() {
                if let Some(c) = self.image_nodes.get_mut(img) {
                    *c = c.saturating_sub(1);
                }
            }
            info.node = None;
            info.images.clear();
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
        self.order.retain(|n| n != name);
    }

    fn place(&mut self, p: Arc<PodInfo>, node: &str, assumed: bool) {
        self.remove_pod(&p.key);
        self.pods.insert(
            p.key.clone(),
            PodState {
                node: node.to_string(),
                assumed,
            },
        );
        if p.has_affinity() {
            self.affinity_pods += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.anti_affinity_pods += 1;
        }
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| {
                Box::new(NodeInfo {
                    name: node.to_string(),
                    ..Default::default()
                })
            })
            .add_pod(p);
    }

    /// Whether any pod in the cache has pod (anti-)affinity terms.
    pub fn has_affinity_pods(&self) -> bool {
        self.affinity_pods > 0
    }

    /// Whether any pod in the cache has required anti-affinity terms.
    pub fn has_anti_affinity_pods(&self) -> bool {
        self.anti_affinity_pods > 0
    }

    /// Adds or updates a pod seen by the informer (bound pods only; others are removed).
    /// An assumed pod is confirmed.
    pub fn set_pod(&mut self, pod: Arc<Pod>) {
        if !counts(&pod) {
            let key = format!(
                "{}/{}",
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or("")
            );
            // A pending pod may still be assumed (its binding in flight): keep that.
            if self.pods.get(&key).is_some_and(|s| !s.assumed) {
                self.remove_pod(&key);
            }
            return;
        }
        let info = Arc::new(PodInfo::new(pod));
        let node = info.node_name().unwrap_or_default().to_string();
        self.unnominate(&info.key);
        self.place(info, &node, false);
    }

    /// Removes a pod (deleted, or finished).
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(state) = self.pods.remove(key) {
            let drop_node = match self.nodes.get_mut(&state.node) {
                Some(n) => {
                    if let Some(p) = n.remove_pod(key) {
                        if p.has_affinity() {
                            self.affinity_pods -= 1;
                        }
                        if !p.required_anti_affinity.is_empty() {
                            self.anti_affinity_pods -= 1;
                        }
                    }
                    n.node.is_none() && n.pods.is_empty()
                }
                None => false,
            };
            if drop_node {
                self.nodes.remove(&state.node);
            }
        }
    }

    /// Assumes a pod on a node while its binding is in flight.
    pub fn assume(&mut self, p: Arc<PodInfo>, node: &str) {
        self.unnominate(&p.key);
        self.place(p, node, true);
    }

    /// Forgets an assumed pod (its binding failed).
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|s| s.assumed) {
            self.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|s| s.assumed)
    }

    /// Records that preemption nominated `p` to `node`.
    pub fn nominate(&mut self, p: Arc<PodInfo>, node: &str) {
        self.unnominate(&p.key);
        self.nominated_of.insert(p.key.clone(), node.to_string());
        self.nominated.entry(node.to_string()).or_default().push(p);
    }

    /// Drops a pod's nomination.
    pub fn unnominate(&mut self, key: &str) {
        if let Some(node) = self.nominated_of.remove(key)
            && let Some(list) = self.nominated.get_mut(&node)
        {
            list.retain(|p| p.key != key);
            if list.is_empty() {
                self.nominated.remove(&node);
            }
        }
    }

    /// Pods nominated to a node.
    pub fn nominated_on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.nominated.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The node a pod is nominated to.
    pub fn nominated_node_of(&self, key: &str) -> Option<&str> {
        self.nominated_of.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                           "images": [{"names": ["docker.io/library/busybox:1.36"], "sizeBytes": 5000000}]},
            }))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: &str, cpu: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"nodeName": node, "containers": [{"name": "c",
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "resources": {"requests": {"cpu": cpu}}}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn accounts_pods_and_confirms_assumed_ones() {
        let mut c = Cache::new();
        c.set_node(node("n1"));
        c.set_pod(pod("a", "n1", "1"));
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1000);
        assert_eq!(c.node("n1").unwrap().used_ports.len(), 1);
        assert_eq!(c.image_spread("docker.io/library/busybox:1.36"), 1);

        let pending = pod("b", "", "500m");
        c.assume(Arc::new(PodInfo::new(pending.clone())), "n1");
        assert!(c.is_assumed("default/b"));
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1500);
        // The informer still shows it unbound: the assumption stays.
        c.set_pod(pending);
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1500);
        // Bound: confirmed, counted once.
        c.set_pod(pod("b", "n1", "500m"));
        assert!(!c.is_assumed("default/b"));
        assert_eq!(c.node("n1").unwrap().pods.len(), 2);

        c.assume(Arc::new(PodInfo::new(pod("d", "", "1"))), "n1");
        c.forget("default/d");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1500);
        c.remove_pod("default/a");
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 500);
        assert!(c.node("n1").unwrap().used_ports.len() == 1);
        c.remove_node("n1");
        assert_eq!(c.num_nodes(), 0);
    }

    #[test]
    fn host_port_conflicts() {
        let a = HostPort {
            ip: "".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let b = HostPort {
            ip: "10.0.0.1".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let c = HostPort {
            ip: "10.0.0.2".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let d = HostPort {
            ip: "10.0.0.1".into(),
            protocol: "UDP".into(),
            port: 80,
        };
        assert!(a.conflicts(&b));
        assert!(!b.conflicts(&c));
        assert!(!b.conflicts(&d));
    }
}
