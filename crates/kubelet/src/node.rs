//! The node's own objects: its Node (registration with labels, capacity, allocatable,
//! conditions, addresses, nodeInfo; status reports) and its Lease in `kube-node-lease`
//! (renewed every 10 s with a 40 s duration, owned by the Node), as upstream's kubelet
//! writes them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::ipam::Cidr;

/// The namespace holding node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The kubelet version nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-rkube";

/// What a node offers (capacity; allocatable is the same: no reservations yet).
#[derive(Debug, Clone)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }
}

/// One node this kubelet runs.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub name: String,
    pub internal_ip: Ipv4Addr,
    /// The pod range to use when the Node's spec has none (upstream's `--pod-cidr`); it is
    /// also written into the spec when the Node is first created.
    pub pod_cidr: Option<Cidr>,
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_string())
}

fn resources(c: &Capacity) -> BTreeMap<String, Quantity> {
    [
        ("cpu", q(&c.cpu)),
        ("memory", q(&c.memory)),
        ("pods", q(&c.pods)),
        ("ephemeral-storage", q(&c.ephemeral_storage)),
        ("hugepages-1Gi", q("0")),
        ("hugepages-2Mi", q("0")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &Time) -> NodeCondition {
    NodeCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// The node's status as the kubelet reports it.
pub fn status(
    id: &NodeIdentity,
    cap: &Capacity,
    runtime_version: &str,
    now: Timestamp,
) -> NodeStatus {
    let now = Time(now);
    let r = resources(cap);
    NodeStatus {
        capacity: Some(r.clone()),
        allocatable: Some(r),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                &now,
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                &now,
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                &now,
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
                &now,
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: id.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: id.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            os_image: "rkube hollow node".into(),
            kernel_version: "6.1.0".into(),
            container_runtime_version: runtime_version.into(),
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            machine_id: crate::runtime::fake_digest(&format!("machine/{}", id.name))[..32].into(),
            system_uuid: crate::runtime::fake_digest(&format!("uuid/{}", id.name))[..32].into(),
            boot_id: crate::runtime::fake_digest(&format!("boot/{}", id.name))[..32].into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Node object a kubelet registers.
pub fn node_object(
    id: &NodeIdentity,
    cap: &Capacity,
    runtime_version: &str,
    now: Timestamp,
) -> Node {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", id.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(id.name.clone()),
            labels: Some(labels),
            annotations: Some(
                [("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string())].into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: id.pod_cidr.map(|c| c.to_string()),
            pod_cidrs: id.pod_cidr.map(|c| vec![c.to_string()]),
            ..Default::default()
        }),
        status: Some(status(id, cap, runtime_version, now)),
    }
}

/// Registers the node (creating it, or reporting status on an existing one); returns the
/// Node as stored.
pub async fn register(
    nodes: &Api<Node>,
    id: &NodeIdentity,
    cap: &Capacity,
    runtime_version: &str,
) -> Result<Node, kube::Error> {
    let node = node_object(id, cap, runtime_version, Timestamp::now());
    match nodes.create(&PostParams::default(), &node).await {
        Ok(created) => {
            // Servers that drop status on create get it as a status write.
            if created
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_none()
            {
                return report_status(nodes, id, cap, runtime_version, None).await;
            }
            Ok(created)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = nodes.get_opt(&id.name).await?;
            report_status(nodes, id, cap, runtime_version, existing.as_ref()).await
        }
        Err(e) => Err(e),
    }
}

/// Writes the node's status (with fresh heartbeat times) as a merge patch of `status`;
/// conditions whose status did not change since `previous` keep their transition time.
pub async fn report_status(
    nodes: &Api<Node>,
    id: &NodeIdentity,
    cap: &Capacity,
    runtime_version: &str,
    previous: Option<&Node>,
) -> Result<Node, kube::Error> {
    let mut st = status(id, cap, runtime_version, Timestamp::now());
    let before = previous
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref());
    for c in st.conditions.iter_mut().flatten() {
        if let Some(old) = before.into_iter().flatten().find(|o| o.type_ == c.type_)
            && old.status == c.status
            && old.last_transition_time.is_some()
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
    let patch = serde_json::json!({ "status": st });
    nodes
        .patch_status(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// The node's Lease, owned by the Node (`uid`), held by the node itself.
pub fn lease_object(node: &str, uid: &str, duration: Duration) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(node.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.into(),
                uid: uid.into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.into()),
            lease_duration_seconds: Some(duration.as_secs().try_into().unwrap_or(i32::MAX)),
            renew_time: Some(MicroTime(Timestamp::now())),
            ..Default::default()
        }),
    }
}

/// Renews a node Lease: updates the last Lease written (no read), creating it when it is
/// missing and re-reading it after a conflict, as upstream's lease controller does.
pub async fn renew_lease(
    leases: &Api<Lease>,
    last: Option<Lease>,
    node: &str,
    uid: &str,
    duration: Duration,
) -> Result<Lease, kube::Error> {
    let base = match last {
        Some(l) => l,
        None => match leases.get_opt(node).await? {
            Some(l) => l,
            None => {
                return match leases
                    .create(&PostParams::default(), &lease_object(node, uid, duration))
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 409 => leases.get(node).await,
                    other => other,
                };
            }
        },
    };
    let mut lease = base;
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some(node.into());
    spec.lease_duration_seconds = Some(duration.as_secs().try_into().unwrap_or(i32::MAX));
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match leases.replace(node, &PostParams::default(), &lease).await {
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            Box::pin(renew_lease(leases, None, node, uid, duration)).await
        }
        other => other,
    }
}
