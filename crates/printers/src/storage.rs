//! `storage.k8s.io` printers: storage classes, volume attachments, CSI drivers, CSI nodes,
//! CSI storage capacities and volume attributes classes.

use serde_json::Value;

use crate::cells::{age, annotation, boolean, len, list, name, opt_s, s};
use crate::describe::{self, AGE, NAME, col};
use crate::quantity::canonical;
use crate::{Column, Row};

pub static STORAGE_CLASS: &[Column] = &[
    NAME,
    col("Provisioner", "string", describe::SC_PROVISIONER),
    col("ReclaimPolicy", "string", describe::SC_RECLAIM),
    col("VolumeBindingMode", "string", describe::SC_BINDING_MODE),
    col("AllowVolumeExpansion", "string", describe::SC_EXPANSION),
    AGE,
];

pub fn storage_class(obj: &Value, now: i64) -> Row {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| annotation(obj, a) == Some("true"));
    let mut shown = name(obj).to_string();
    if default {
        shown.push_str(" (default)");
    }
    Row::new(vec![
        shown.into(),
        s(&obj["provisioner"]).into(),
        opt_s(&obj["reclaimPolicy"]).unwrap_or("Delete").into(),
        opt_s(&obj["volumeBindingMode"])
            .unwrap_or("Immediate")
            .into(),
        boolean(&obj["allowVolumeExpansion"]).into(),
        age(obj, now),
    ])
}

pub static VOLUME_ATTACHMENT: &[Column] = &[
    NAME,
    crate::Column {
        name: "Attacher",
        ty: "string",
        format: "name",
        description: describe::VA_ATTACHER,
        priority: 0,
    },
    col("PV", "string", describe::VA_PV),
    col("Node", "string", describe::VA_NODE),
    col("Attached", "boolean", describe::VA_ATTACHED),
    AGE,
];

pub fn volume_attachment(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    Row::new(vec![
        name(obj).into(),
        s(&spec["attacher"]).into(),
        s(&spec["source"]["persistentVolumeName"]).into(),
        s(&spec["nodeName"]).into(),
        boolean(&obj["status"]["attached"]).into(),
        age(obj, now),
    ])
}

pub static CSI_DRIVER: &[Column] = &[
    NAME,
    col("AttachRequired", "boolean", describe::CSI_ATTACH),
    col("PodInfoOnMount", "boolean", describe::CSI_POD_INFO),
    col("StorageCapacity", "boolean", describe::CSI_CAPACITY),
    col("TokenRequests", "string", describe::CSI_TOKEN_REQUESTS),
    col("RequiresRepublish", "boolean", describe::CSI_REPUBLISH),
    col("Modes", "string", describe::CSI_MODES),
    AGE,
];

pub fn csi_driver(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    // `volumeLifecycleModes` defaults to Persistent.
    let mut modes: Vec<&str> = list(&spec["volumeLifecycleModes"]).iter().map(s).collect();
    if modes.is_empty() {
        modes.push("Persistent");
    }
    let token_requests = match spec["tokenRequests"].as_array() {
        Some(reqs) => reqs
            .iter()
            .map(|r| s(&r["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".into(),
    };
    Row::new(vec![
        name(obj).into(),
        spec["attachRequired"].as_bool().unwrap_or(true).into(),
        boolean(&spec["podInfoOnMount"]).into(),
        boolean(&spec["storageCapacity"]).into(),
        token_requests.into(),
        boolean(&spec["requiresRepublish"]).into(),
        modes.join(",").into(),
        age(obj, now),
    ])
}

pub static CSI_NODE: &[Column] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

pub fn csi_node(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        len(&obj["spec"]["drivers"]).into(),
        age(obj, now),
    ])
}

pub static CSI_STORAGE_CAPACITY: &[Column] = &[
    NAME,
    col(
        "StorageClassName",
        "string",
        "storageClassName represents the name of the StorageClass that the reported capacity applies to. It must meet the same requirements as the name of a StorageClass object (non-empty, DNS subdomain). If that object no longer exists, the CSIStorageCapacity object is obsolete and should be removed by its creator. This field is immutable.",
    ),
    col(
        "Capacity",
        "string",
        "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.\n\nThe semantic is currently (CSI spec 1.2) defined as: The available capacity, in bytes, of the storage that can be used to provision volumes. If not set, that information is currently unavailable.",
    ),
];

pub fn csi_storage_capacity(obj: &Value, _now: i64) -> Row {
    let capacity = if obj["capacity"].is_null() {
        "<unset>".to_string()
    } else {
        canonical(&obj["capacity"])
    };
    Row::new(vec![
        name(obj).into(),
        s(&obj["storageClassName"]).into(),
        capacity.into(),
    ])
}

pub static VOLUME_ATTRIBUTES_CLASS: &[Column] = &[
    NAME,
    col(
        "DriverName",
        "string",
        "Name of the CSI driver This field is immutable.",
    ),
    AGE,
];

pub fn volume_attributes_class(obj: &Value, now: i64) -> Row {
    let mut shown = name(obj).to_string();
    if annotation(obj, "volumeattributesclass.kubernetes.io/is-default-class") == Some("true") {
        shown.push_str(" (default)");
    }
    Row::new(vec![
        shown.into(),
        s(&obj["driverName"]).into(),
        age(obj, now),
    ])
}
