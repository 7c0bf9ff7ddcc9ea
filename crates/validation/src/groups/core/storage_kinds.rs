//! PersistentVolumes and PersistentVolumeClaims: defaults (phase Pending, reclaim policy
//! Retain, volume mode Filesystem), spec validation (access modes, capacity and requests,
//! class names, volume sources) and the update rules (claim specs immutable but for a
//! storage increase and binding; volume sources immutable).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::super::{default_opt, default_str, push_msgs, s};
use super::pod::{default_resource_list, validate_quantity_value};
use crate::error::{BadValue, FieldError, go_quote};
use crate::meta::{self, Errs};
use crate::names;
use crate::path::Path;
use crate::quantity::Quantity;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

/// PVC spec defaults (`volumeMode: Filesystem`, resource lists rounded).
pub(crate) fn default_pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    default_opt(&mut spec.volume_mode, "Filesystem".to_string());
    if let Some(r) = &mut spec.resources {
        default_resource_list(&mut r.limits);
        default_resource_list(&mut r.requests);
    }
}

/// `SetDefaults_PersistentVolumeClaim`.
pub(crate) fn default_pvc(pvc: &mut PersistentVolumeClaim) {
    default_pvc_spec(pvc.spec.get_or_insert_with(Default::default));
    let st = pvc.status.get_or_insert_with(Default::default);
    default_str(&mut st.phase, "Pending");
}

/// `SetDefaults_PersistentVolume`.
pub(crate) fn default_pv(pv: &mut PersistentVolume) {
    let spec = pv.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
    default_opt(&mut spec.volume_mode, "Filesystem".to_string());
    default_resource_list(&mut spec.capacity);
    if let Some(hp) = &mut spec.host_path {
        default_opt(&mut hp.type_, String::new());
    }
    let st = pv.status.get_or_insert_with(Default::default);
    default_str(&mut st.phase, "Pending");
}

fn validate_access_modes(modes: &[String], path: &Path, errs: &mut Errs) {
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m, ACCESS_MODES));
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn positive_quantity(q: &K8sQuantity, path: &Path, errs: &mut Errs) -> bool {
    match Quantity::parse(&q.0) {
        Ok(v) if v.nanos() <= 0 => {
            errs.push(FieldError::invalid(
                path,
                v.canonical(),
                "must be greater than zero",
            ));
            false
        }
        _ => true,
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn validate_pvc_spec(spec: &PersistentVolumeClaimSpec, path: &Path, errs: &mut Errs) {
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = &spec.selector {
        meta::validate_label_selector(sel, &path.child("selector"), errs);
    }
    validate_access_modes(modes, &path.child("accessModes"), errs);
    let sp = path.child("resources").key("storage");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(&sp, "")),
        Some(q) => {
            if positive_quantity(q, &sp, errs) {
                validate_quantity_value("storage", q, &sp, errs);
            }
        }
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        push_msgs(
            names::name_is_dns_subdomain(sc, false),
            &path.child("storageClassName"),
            sc,
            errs,
        );
    }
    if let Some(vm) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&vm)
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            vm,
            VOLUME_MODES,
        ));
    }
    for (ds, field) in [(&spec.data_source, "dataSource")] {
        if let Some(ds) = ds {
            let p = path.child(field);
            if ds.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            if ds.kind.is_empty() {
                errs.push(FieldError::required(&p.child("kind"), ""));
            }
            let group = s(&ds.api_group);
            if group.is_empty() && ds.kind != "PersistentVolumeClaim" {
                errs.push(FieldError::invalid(
                    &p,
                    ds.kind.clone(),
                    "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
                ));
            }
        }
    }
    if let Some(ds) = &spec.data_source_ref {
        let p = path.child("dataSourceRef");
        if ds.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if ds.kind.is_empty() {
            errs.push(FieldError::required(&p.child("kind"), ""));
        }
    }
}

/// `ValidatePersistentVolumeClaim` (beyond ObjectMeta).
pub(crate) fn validate_pvc(pvc: &PersistentVolumeClaim, errs: &mut Errs) {
    validate_pvc_spec(
        &pvc.spec.clone().unwrap_or_default(),
        &Path::new("spec"),
        errs,
    );
}

fn storage_request(spec: &PersistentVolumeClaimSpec) -> Option<Quantity> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

/// `ValidatePersistentVolumeClaimUpdate` (beyond ObjectMeta).
pub(crate) fn validate_pvc_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
    errs: &mut Errs,
) {
    validate_pvc(new, errs);
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let mut n_clone = ns.clone();
    let mut o_clone = os.clone();
    if s(&os.volume_name).is_empty() {
        o_clone.volume_name = n_clone.volume_name.clone();
    }
    let bound = new.status.as_ref().map(|st| s(&st.phase)) == Some("Bound");
    if bound && let Some(reqs) = n_clone.resources.as_mut().and_then(|r| r.requests.as_mut()) {
        match os
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
        {
            Some(q) => {
                reqs.insert("storage".into(), q.clone());
            }
            None => {
                reqs.remove("storage");
            }
        }
    }
    // Canonical comparison of quantities: 1Gi and 1024Mi are the same request.
    let canon = |sp: &mut PersistentVolumeClaimSpec| {
        if let Some(r) = sp.resources.as_mut() {
            for l in [&mut r.requests, &mut r.limits].into_iter().flatten() {
                for q in l.values_mut() {
                    q.0 = crate::quantity::canonicalize(&q.0);
                }
            }
        }
    };
    canon(&mut n_clone);
    canon(&mut o_clone);
    if n_clone != o_clone {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            format!(
                "spec is immutable after creation except resources.requests for bound claims\n{}",
                diff_json(&o_clone, &n_clone, "core.PersistentVolumeClaimSpec")
            ),
        ));
    }
    if let (Some(n), Some(o)) = (storage_request(&ns), storage_request(&os))
        && n < o
    {
        errs.push(FieldError::forbidden(
            &Path::new("spec").children(&["resources", "requests", "storage"]),
            "field can not be less than previous value",
        ));
    }
    if ns.volume_mode != os.volume_mode {
        errs.push(FieldError::invalid(
            &Path::new("volumeMode"),
            ns.volume_mode.clone(),
            meta::IMMUTABLE,
        ));
    }
}

/// A readable list of differing top-level fields (upstream prints a `cmp.Diff`).
pub(crate) fn diff_json<T: serde::Serialize>(old: &T, new: &T, type_name: &str) -> String {
    let (Ok(serde_json::Value::Object(o)), Ok(serde_json::Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return String::new();
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = format!("  {type_name}{{\n");
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a != b {
            out.push_str(&format!(
                "-\t{k}: {}\n+\t{k}: {}\n",
                a.map_or("nil".to_string(), |v| v.to_string()),
                b.map_or("nil".to_string(), |v| v.to_string())
            ));
        }
    }
    out.push_str("  }\n");
    out
}

const PV_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn pv_sources(spec: &PersistentVolumeSpec) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(spec) {
        for (k, v) in m {
            if PV_SOURCES.contains(&k.as_str()) {
                out.insert(k, v);
            }
        }
    }
    out
}

fn resource_list_text(m: &BTreeMap<String, K8sQuantity>) -> String {
    let inner: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                go_quote(k),
                go_quote(&crate::quantity::canonicalize(&v.0))
            )
        })
        .collect();
    format!("core.ResourceList{{{}}}", inner.join(", "))
}

/// `ValidatePersistentVolume` (beyond ObjectMeta).
pub(crate) fn validate_pv(pv: &PersistentVolume, errs: &mut Errs) {
    let spec = pv.spec.clone().unwrap_or_default();
    let p = Path::new("spec");
    let modes = spec.access_modes.as_deref().unwrap_or(&[]);
    if modes.is_empty() {
        errs.push(FieldError::required(&p.child("accessModes"), ""));
    }
    validate_access_modes(modes, &p.child("accessModes"), errs);
    let cap = spec.capacity.clone().unwrap_or_default();
    if cap.is_empty() {
        errs.push(FieldError::required(&p.child("capacity"), ""));
    }
    if !cap.contains_key("storage") || cap.len() > 1 {
        errs.push(FieldError::not_supported(
            &p.child("capacity"),
            BadValue::Raw(resource_list_text(&cap)),
            &["storage"],
        ));
    }
    for (k, q) in &cap {
        let kp = p.child("capacity").key(k);
        if let Ok(v) = Quantity::parse(&q.0)
            && v.value() < 0
        {
            errs.push(FieldError::invalid(
                &kp,
                i64::try_from(v.value()).unwrap_or(i64::MIN),
                "must be a valid resource quantity",
            ));
        }
        positive_quantity(q, &kp, errs);
    }
    let rp = s(&spec.persistent_volume_reclaim_policy);
    if !rp.is_empty() && !["Delete", "Recycle", "Retain"].contains(&rp) {
        errs.push(FieldError::not_supported(
            &p.child("persistentVolumeReclaimPolicy"),
            rp,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    if let Some(na) = spec
        .node_affinity
        .as_ref()
        .and_then(|n| n.required.as_ref())
    {
        super::pod::validate_node_selector(na, &p.child("nodeAffinity").child("required"), errs);
    }
    if let Some(vm) = spec.volume_mode.as_deref()
        && !VOLUME_MODES.contains(&vm)
    {
        errs.push(FieldError::not_supported(
            &p.child("volumeMode"),
            vm,
            VOLUME_MODES,
        ));
    }
    let sources = pv_sources(&spec);
    if sources.is_empty() {
        errs.push(FieldError::required(&p, "must specify a volume type"));
    } else if sources.len() > 1 {
        for k in sources.keys().skip(1) {
            errs.push(FieldError::forbidden(
                &p.child(k),
                "may not specify more than 1 volume type",
            ));
        }
    }
    if let Some(hp) = &spec.host_path {
        if hp.path.is_empty() {
            errs.push(FieldError::required(&p.child("hostPath").child("path"), ""));
        }
        if hp.path.trim_end_matches('/').is_empty() && !hp.path.is_empty() && rp == "Recycle" {
            errs.push(FieldError::forbidden(
                &p.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(l) = &spec.local {
        if l.path.is_empty() {
            errs.push(FieldError::required(&p.child("local").child("path"), ""));
        }
        if spec.node_affinity.is_none() {
            errs.push(FieldError::required(
                &p.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
    }
    if let Some(n) = &spec.nfs {
        if n.server.is_empty() {
            errs.push(FieldError::required(&p.child("nfs").child("server"), ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required(&p.child("nfs").child("path"), ""));
        }
    }
    if let Some(c) = &spec.csi {
        let cp = p.child("csi");
        if c.driver.is_empty() {
            errs.push(FieldError::required(&cp.child("driver"), ""));
        } else {
            crate::groups::storage::validate_csi_driver_name(&c.driver, &cp.child("driver"), errs);
        }
        if c.volume_handle.is_empty() {
            errs.push(FieldError::required(&cp.child("volumeHandle"), ""));
        }
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        push_msgs(
            names::name_is_dns_subdomain(sc, false),
            &p.child("storageClassName"),
            sc,
            errs,
        );
    }
}

/// `ValidatePersistentVolumeUpdate` (beyond ObjectMeta).
pub(crate) fn validate_pv_update(new: &PersistentVolume, old: &PersistentVolume, errs: &mut Errs) {
    validate_pv(new, errs);
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let (n, o) = (pv_sources(&ns), pv_sources(&os));
    if n != o {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff_json(
                    &serde_json::Value::Object(o),
                    &serde_json::Value::Object(n),
                    "core.PersistentVolumeSource"
                )
            ),
        ));
    }
    if ns.volume_mode != os.volume_mode {
        errs.push(FieldError::invalid(
            &Path::new("volumeMode"),
            ns.volume_mode.clone(),
            meta::IMMUTABLE,
        ));
    }
    if os.node_affinity.is_some() && ns.node_affinity != os.node_affinity {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("nodeAffinity"),
            BadValue::Raw("core.VolumeNodeAffinity{...}".into()),
            meta::IMMUTABLE,
        ));
    }
}

/// PV/PVC status updates: the phase must be a known one.
pub(crate) fn validate_pv_status(new: &PersistentVolume, _old: &PersistentVolume, errs: &mut Errs) {
    if let Some(ph) = new.status.as_ref().and_then(|st| st.phase.as_deref()) {
        let supported = ["Available", "Bound", "Failed", "Pending", "Released"];
        if !supported.contains(&ph) {
            errs.push(FieldError::not_supported(
                &Path::new("status").child("phase"),
                ph,
                &supported,
            ));
        }
    }
}

/// `ValidatePersistentVolumeClaimStatusUpdate` (beyond ObjectMeta).
pub(crate) fn validate_pvc_status(
    new: &PersistentVolumeClaim,
    _old: &PersistentVolumeClaim,
    errs: &mut Errs,
) {
    let st = new.status.clone().unwrap_or_default();
    let p = Path::new("status");
    if let Some(ph) = st.phase.as_deref() {
        let supported = ["Bound", "Lost", "Pending"];
        if !supported.contains(&ph) {
            errs.push(FieldError::not_supported(&p.child("phase"), ph, &supported));
        }
    }
    for (k, q) in st.capacity.iter().flatten() {
        validate_quantity_value(k, q, &p.child("capacity").key(k), errs);
    }
}
