//! The core group's printers other than pods and events: pod templates, replication
//! controllers, services, endpoints, nodes, namespaces, secrets, service accounts,
//! persistent volumes and claims, config maps, resource quotas, component statuses.
//!
//! Upstream prints objects after applying the API's defaults, so absent fields that have a
//! default (a service's type, a volume's reclaim policy, …) print as their default.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::cells::{age, annotation, deleting, int, len, list, map, name, opt_int, opt_s, s};
use crate::describe::{self, AGE, CONTAINERS, IMAGES, NAME, col, wide};
use crate::format::{access_modes, containers, labels};
use crate::quantity::canonical;
use crate::{Column, Row};

fn or<'a>(v: &'a str, default: &'a str) -> &'a str {
    if v.is_empty() { default } else { v }
}

pub static POD_TEMPLATE: &[Column] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    col(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    col("Pod Labels", "string", "The labels for the pod template."),
];

pub fn pod_template(obj: &Value, _now: i64) -> Row {
    let (names, images) = containers(&obj["template"]["spec"]["containers"]);
    Row::new(vec![
        name(obj).into(),
        names.into(),
        images.into(),
        labels(&obj["template"]["metadata"]["labels"]).into(),
    ])
}

pub static RC: &[Column] = &[
    NAME,
    col("Desired", "integer", describe::RC_SPEC_REPLICAS),
    col("Current", "integer", describe::RC_STATUS_REPLICAS),
    col("Ready", "integer", describe::RC_STATUS_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::RC_SPEC_SELECTOR),
];

pub fn rc(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let (names, images) = containers(&spec["template"]["spec"]["containers"]);
    // The selector defaults to the template's labels.
    let selector = if map(&spec["selector"]).is_empty() {
        &spec["template"]["metadata"]["labels"]
    } else {
        &spec["selector"]
    };
    Row::new(vec![
        name(obj).into(),
        opt_int(&spec["replicas"]).unwrap_or(1).into(),
        int(&obj["status"]["replicas"]).into(),
        int(&obj["status"]["readyReplicas"]).into(),
        age(obj, now),
        names.into(),
        images.into(),
        labels(selector).into(),
    ])
}

pub static SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", describe::SVC_TYPE),
    col("Cluster-IP", "string", describe::SVC_CLUSTER_IP),
    col("External-IP", "string", describe::SVC_EXTERNAL_IPS),
    col("Port(s)", "string", describe::SVC_PORTS),
    AGE,
    wide("Selector", "string", describe::SVC_SELECTOR),
];

/// `loadBalancerStatusStringer` (wide, so never shortened): the sorted, distinct IPs or
/// host names of the load balancer's ingress points.
pub fn load_balancer(status: &Value) -> String {
    let set: BTreeSet<&str> = list(&status["ingress"])
        .iter()
        .filter_map(|i| {
            let ip = s(&i["ip"]);
            let host = s(&i["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn external_ip(svc: &Value, ty: &str) -> String {
    let spec = &svc["spec"];
    let external: Vec<&str> = list(&spec["externalIPs"]).iter().map(s).collect();
    match ty {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer(&svc["status"]["loadBalancer"]);
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => s(&spec["externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

pub fn service(svc: &Value, now: i64) -> Row {
    let spec = &svc["spec"];
    let ty = opt_s(&spec["type"]).unwrap_or("ClusterIP");
    let cluster_ip = list(&spec["clusterIPs"])
        .first()
        .map(s)
        .or_else(|| opt_s(&spec["clusterIP"]).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    let ports: Vec<String> = list(&spec["ports"])
        .iter()
        .map(|p| {
            let protocol = opt_s(&p["protocol"]).unwrap_or("TCP");
            let node_port = int(&p["nodePort"]);
            if node_port > 0 {
                format!("{}:{node_port}/{protocol}", int(&p["port"]))
            } else {
                format!("{}/{protocol}", int(&p["port"]))
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    Row::new(vec![
        name(svc).into(),
        ty.into(),
        cluster_ip.into(),
        external_ip(svc, ty).into(),
        ports.into(),
        age(svc, now),
        labels(&spec["selector"]).into(),
    ])
}

pub static ENDPOINTS: &[Column] = &[NAME, col("Endpoints", "string", describe::EP_SUBSETS), AGE];

/// `net.JoinHostPort`.
fn host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints` with every port: up to three `ip:port`, then ` + N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = list(&obj["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut out: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = list(&ss["addresses"]);
        let ports = list(&ss["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if out.len() == MAX {
                    more = true;
                    break;
                }
                out.push(s(&a["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if out.len() == MAX {
                    more = true;
                    break;
                }
                out.push(host_port(s(&a["ip"]), int(&port["port"])));
            }
        }
    }
    let joined = out.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub fn endpoints(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        age(obj, now),
    ])
}

pub static NODE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", describe::NODE_KUBELET_VERSION),
    wide("Internal-IP", "string", describe::NODE_ADDRESSES),
    wide("External-IP", "string", describe::NODE_ADDRESSES),
    wide("OS-Image", "string", describe::NODE_OS_IMAGE),
    wide("Kernel-Version", "string", describe::NODE_KERNEL),
    wide("Container-Runtime", "string", describe::NODE_RUNTIME),
];

/// The roles of a node: `node-role.kubernetes.io/<role>` labels and the value of a
/// `kubernetes.io/role` label, sorted.
fn node_roles(node: &Value) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (k, v) in map(&node["metadata"]["labels"]) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !s(v).is_empty() {
            roles.insert(s(v).to_string());
        }
    }
    roles.into_iter().collect()
}

fn node_address(node: &Value, ty: &str) -> String {
    list(&node["status"]["addresses"])
        .iter()
        .find(|a| s(&a["type"]) == ty)
        .map_or_else(|| "<none>".into(), |a| s(&a["address"]).into())
}

pub fn node(node: &Value, now: i64) -> Row {
    let status = &node["status"];
    // The last condition of each type counts; only Ready is shown.
    let ready = list(&status["conditions"])
        .iter()
        .rev()
        .find(|c| s(&c["type"]) == "Ready");
    let mut state = vec![match ready {
        Some(c) if s(&c["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        state.push("SchedulingDisabled");
    }
    let roles = node_roles(node).join(",");
    let info = &status["nodeInfo"];
    let unknown = |v: &Value| or(s(v), "<unknown>").to_string();
    Row::new(vec![
        name(node).into(),
        state.join(",").into(),
        or(&roles, "<none>").into(),
        age(node, now),
        s(&info["kubeletVersion"]).into(),
        node_address(node, "InternalIP").into(),
        node_address(node, "ExternalIP").into(),
        unknown(&info["osImage"]).into(),
        unknown(&info["kernelVersion"]).into(),
        unknown(&info["containerRuntimeVersion"]).into(),
    ])
}

pub static NAMESPACE: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

pub fn namespace(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        or(s(&obj["status"]["phase"]), "Active").into(),
        age(obj, now),
    ])
}

pub static SECRET: &[Column] = &[
    NAME,
    col("Type", "string", describe::SECRET_TYPE),
    col("Data", "string", describe::SECRET_DATA),
    AGE,
];

pub fn secret(obj: &Value, now: i64) -> Row {
    // `stringData` is merged into `data` when a secret is decoded.
    let keys: HashSet<&String> = map(&obj["data"])
        .keys()
        .chain(map(&obj["stringData"]).keys())
        .collect();
    Row::new(vec![
        name(obj).into(),
        or(s(&obj["type"]), "Opaque").into(),
        (keys.len() as i64).into(),
        age(obj, now),
    ])
}

pub static SERVICE_ACCOUNT: &[Column] =
    &[NAME, col("Secrets", "string", describe::SA_SECRETS), AGE];

pub fn service_account(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        len(&obj["secrets"]).into(),
        age(obj, now),
    ])
}

pub static PV: &[Column] = &[
    NAME,
    col("Capacity", "string", describe::PV_CAPACITY),
    col("Access Modes", "string", describe::PV_ACCESS_MODES),
    col("Reclaim Policy", "string", describe::PV_RECLAIM),
    col("Status", "string", describe::PV_PHASE),
    col("Claim", "string", describe::PV_CLAIM),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col("Reason", "string", describe::PV_REASON),
    AGE,
    wide("VolumeMode", "string", describe::PV_VOLUME_MODE),
];

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub fn pv(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let claim = &spec["claimRef"];
    let claim = if claim.is_object() {
        format!("{}/{}", s(&claim["namespace"]), s(&claim["name"]))
    } else {
        String::new()
    };
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        or(s(&obj["status"]["phase"]), "Pending")
    };
    let class = annotation(obj, BETA_STORAGE_CLASS).unwrap_or_else(|| s(&spec["storageClassName"]));
    Row::new(vec![
        name(obj).into(),
        canonical(&spec["capacity"]["storage"]).into(),
        access_modes(&spec["accessModes"]).into(),
        or(s(&spec["persistentVolumeReclaimPolicy"]), "Retain").into(),
        phase.into(),
        claim.into(),
        class.into(),
        opt_s(&spec["volumeAttributesClassName"])
            .unwrap_or("<unset>")
            .into(),
        s(&obj["status"]["reason"]).into(),
        age(obj, now),
        opt_s(&spec["volumeMode"]).unwrap_or("Filesystem").into(),
    ])
}

pub static PVC: &[Column] = &[
    NAME,
    col("Status", "string", describe::PVC_PHASE),
    col("Volume", "string", describe::PVC_VOLUME_NAME),
    col("Capacity", "string", describe::PVC_CAPACITY),
    col("Access Modes", "string", describe::PVC_ACCESS_MODES),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide("VolumeMode", "string", describe::PVC_VOLUME_MODE),
];

pub fn pvc(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let phase = if deleting(obj) {
        "Terminating"
    } else {
        or(s(&status["phase"]), "Pending")
    };
    let volume = s(&spec["volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            canonical(&status["capacity"]["storage"]),
            access_modes(&status["accessModes"]),
        )
    };
    let class = annotation(obj, BETA_STORAGE_CLASS)
        .or_else(|| opt_s(&spec["storageClassName"]))
        .unwrap_or("");
    Row::new(vec![
        name(obj).into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class.into(),
        opt_s(&spec["volumeAttributesClassName"])
            .unwrap_or("<unset>")
            .into(),
        age(obj, now),
        opt_s(&spec["volumeMode"]).unwrap_or("Filesystem").into(),
    ])
}

pub static CONFIG_MAP: &[Column] = &[NAME, col("Data", "string", describe::CM_DATA), AGE];

pub fn config_map(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        (len(&obj["data"]) + len(&obj["binaryData"])).into(),
        age(obj, now),
    ])
}

pub static RESOURCE_QUOTA: &[Column] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

pub fn resource_quota(obj: &Value, now: i64) -> Row {
    let hard = map(&obj["status"]["hard"]);
    let used = &obj["status"]["used"];
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for r in names {
        let entry = format!(
            "{r}: {}/{}",
            canonical(&used[r.as_str()]),
            canonical(&hard[r])
        );
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    Row::new(vec![
        name(obj).into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        age(obj, now),
    ])
}

pub static COMPONENT_STATUS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

pub fn component_status(obj: &Value, _now: i64) -> Row {
    let healthy = list(&obj["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if s(&c["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            s(&c["message"]),
            s(&c["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    Row::new(vec![
        name(obj).into(),
        status.into(),
        message.into(),
        error.into(),
    ])
}
