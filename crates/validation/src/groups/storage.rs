//! storage.k8s.io/v1: StorageClass, VolumeAttachment, CSIDriver and CSINode.

use std::collections::BTreeSet;

use k8s_openapi::api::storage::v1 as st;

use super::{default_opt, push_msgs, s};
use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def, no_default, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

/// `ValidateCSIDriverName`.
pub(crate) fn validate_csi_driver_name(name: &str, path: &Path, errs: &mut Errs) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, name, 63));
    }
    push_msgs(
        names::is_dns1123_subdomain(&name.to_lowercase()),
        path,
        name,
        errs,
    );
}

fn csi_driver_object_name(name: &str, prefix: bool) -> Vec<String> {
    let mut out = names::name_is_dns_subdomain(&name.to_lowercase(), prefix);
    if name.len() > 63 {
        out.insert(0, names::max_len_error(63));
    }
    out
}

// ---------------------------------------------------------------- StorageClass

fn default_storage_class(sc: &mut st::StorageClass) {
    default_opt(&mut sc.reclaim_policy, "Delete".to_string());
    default_opt(&mut sc.volume_binding_mode, "Immediate".to_string());
}

fn validate_storage_class(sc: &st::StorageClass, errs: &mut Errs) {
    let pp = Path::new("provisioner");
    if sc.provisioner.is_empty() {
        errs.push(FieldError::required(&pp, ""));
    } else {
        push_msgs(
            names::is_qualified_name(&sc.provisioner.to_lowercase()),
            &pp,
            sc.provisioner.to_lowercase(),
            errs,
        );
    }
    let params = sc.parameters.clone().unwrap_or_default();
    if params.len() > 512 {
        errs.push(FieldError::too_long(
            &Path::new("parameters"),
            "Provisioner Parameters exceeded max allowed",
            512,
        ));
    }
    let total: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > 256 * 1024 {
        errs.push(FieldError::too_long(
            &Path::new("parameters"),
            "",
            256 * 1024,
        ));
    }
    if params.keys().any(|k| k.is_empty()) {
        errs.push(FieldError::invalid(
            &Path::new("parameters"),
            "",
            "key must not be empty",
        ));
    }
    if let Some(rp) = sc.reclaim_policy.as_deref()
        && !["Delete", "Retain"].contains(&rp)
    {
        errs.push(FieldError::not_supported(
            &Path::new("reclaimPolicy"),
            rp,
            &["Delete", "Retain"],
        ));
    }
    match sc.volume_binding_mode.as_deref() {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some(m) if !["Immediate", "WaitForFirstConsumer"].contains(&m) => {
            errs.push(FieldError::not_supported(
                &Path::new("volumeBindingMode"),
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ))
        }
        _ => {}
    }
    for (i, t) in sc.allowed_topologies.iter().flatten().enumerate() {
        let tp = Path::new("allowedTopologies").index(i);
        let exprs = t.match_label_expressions.as_deref().unwrap_or(&[]);
        if exprs.is_empty() {
            errs.push(FieldError::required(
                &tp.child("matchLabelExpressions"),
                "must have at least one label expression",
            ));
        }
        let mut keys = BTreeSet::new();
        for (j, e) in exprs.iter().enumerate() {
            let ep = tp.child("matchLabelExpressions").index(j);
            meta::validate_label_name(&e.key, &ep.child("key"), errs);
            if e.values.is_empty() {
                errs.push(FieldError::required(
                    &ep.child("values"),
                    "must have at least one value",
                ));
            }
            if !keys.insert(e.key.clone()) {
                errs.push(FieldError::duplicate(&ep.child("key"), &e.key));
            }
        }
    }
}

fn validate_storage_class_update(n: &st::StorageClass, o: &st::StorageClass, errs: &mut Errs) {
    if n.parameters != o.parameters {
        errs.push(FieldError::forbidden(
            &Path::new("parameters"),
            "updates to parameters are forbidden.",
        ));
    }
    if n.provisioner != o.provisioner {
        errs.push(FieldError::forbidden(
            &Path::new("provisioner"),
            "updates to provisioner are forbidden.",
        ));
    }
    if n.reclaim_policy != o.reclaim_policy {
        errs.push(FieldError::forbidden(
            &Path::new("reclaimPolicy"),
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    if n.volume_binding_mode != o.volume_binding_mode {
        errs.push(FieldError::invalid(
            &Path::new("volumeBindingMode"),
            n.volume_binding_mode.clone(),
            meta::IMMUTABLE,
        ));
    }
    validate_storage_class(n, errs);
}

pub(crate) static STORAGE_CLASS: Def<st::StorageClass> = def(
    false,
    name_is_dns_subdomain,
    default_storage_class,
    validate_storage_class,
    validate_storage_class_update,
    no_update_checks,
);

// ---------------------------------------------------------------- VolumeAttachment

fn validate_volume_attachment(va: &st::VolumeAttachment, errs: &mut Errs) {
    let sp = Path::new("spec");
    let spec = &va.spec;
    if spec.attacher.is_empty() {
        errs.push(FieldError::required(&sp.child("attacher"), ""));
    } else {
        validate_csi_driver_name(&spec.attacher, &sp.child("attacher"), errs);
    }
    let src = sp.child("source");
    match (
        &spec.source.persistent_volume_name,
        &spec.source.inline_volume_spec,
    ) {
        (None, None) => errs.push(FieldError::required(
            &src,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &src,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(n), None) => {
            push_msgs(
                names::name_is_dns_subdomain(n, false),
                &src.child("persistentVolumeName"),
                n,
                errs,
            );
        }
        _ => {}
    }
    if spec.node_name.is_empty() {
        errs.push(FieldError::required(&sp.child("nodeName"), ""));
    } else {
        push_msgs(
            names::name_is_dns_subdomain(&spec.node_name, false),
            &sp.child("nodeName"),
            &spec.node_name,
            errs,
        );
    }
}

fn validate_volume_attachment_update(
    n: &st::VolumeAttachment,
    o: &st::VolumeAttachment,
    errs: &mut Errs,
) {
    validate_volume_attachment(n, errs);
    if n.spec != o.spec {
        errs.push(FieldError::invalid(
            &Path::new("spec"),
            BadValue::Raw("storage.VolumeAttachmentSpec{...}".into()),
            meta::IMMUTABLE,
        ));
    }
}

fn validate_volume_attachment_status(
    n: &st::VolumeAttachment,
    _o: &st::VolumeAttachment,
    errs: &mut Errs,
) {
    let Some(stt) = &n.status else { return };
    let p = Path::new("status");
    for (e, f) in [
        (&stt.attach_error, "attachError"),
        (&stt.detach_error, "detachError"),
    ] {
        if let Some(e) = e
            && s(&e.message).len() > 1024
        {
            errs.push(FieldError::too_long(
                &p.child(f).child("message"),
                s(&e.message),
                1024,
            ));
        }
    }
}

pub(crate) static VOLUME_ATTACHMENT: Def<st::VolumeAttachment> = def(
    false,
    name_is_dns_subdomain,
    no_default,
    validate_volume_attachment,
    validate_volume_attachment_update,
    validate_volume_attachment_status,
);

// ---------------------------------------------------------------- CSIDriver

fn default_csi_driver(d: &mut st::CSIDriver) {
    let spec = &mut d.spec;
    default_opt(&mut spec.attach_required, true);
    default_opt(&mut spec.pod_info_on_mount, false);
    default_opt(&mut spec.storage_capacity, false);
    default_opt(
        &mut spec.fs_group_policy,
        "ReadWriteOnceWithFSType".to_string(),
    );
    default_opt(&mut spec.requires_republish, false);
    default_opt(
        &mut spec.volume_lifecycle_modes,
        vec!["Persistent".to_string()],
    );
    default_opt(&mut spec.se_linux_mount, false);
}

fn validate_csi_driver(d: &st::CSIDriver, errs: &mut Errs) {
    let sp = Path::new("spec");
    let spec = &d.spec;
    for (v, f) in [
        (spec.attach_required, "attachRequired"),
        (spec.pod_info_on_mount, "podInfoOnMount"),
        (spec.storage_capacity, "storageCapacity"),
        (spec.requires_republish, "requiresRepublish"),
    ] {
        if v.is_none() {
            errs.push(FieldError::required(&sp.child(f), ""));
        }
    }
    if let Some(p) = spec.fs_group_policy.as_deref() {
        let supported = ["File", "None", "ReadWriteOnceWithFSType"];
        if !supported.contains(&p) {
            errs.push(FieldError::not_supported(
                &sp.child("fsGroupPolicy"),
                p,
                &supported,
            ));
        }
    }
    for m in spec.volume_lifecycle_modes.iter().flatten() {
        if m != "Persistent" && m != "Ephemeral" {
            errs.push(FieldError::not_supported(
                &sp.child("volumeLifecycleModes"),
                m,
                &["Ephemeral", "Persistent"],
            ));
        }
    }
    let mut auds = BTreeSet::new();
    for (i, t) in spec.token_requests.iter().flatten().enumerate() {
        let tp = sp.child("tokenRequests").index(i);
        if !auds.insert(t.audience.clone()) {
            errs.push(FieldError::duplicate(&tp.child("audience"), &t.audience));
        }
        if let Some(e) = t.expiration_seconds {
            if e < 600 {
                errs.push(FieldError::invalid(
                    &tp.child("expirationSeconds"),
                    e,
                    "may not specify a duration less than 10 minutes",
                ));
            } else if e > 1 << 32 {
                errs.push(FieldError::invalid(
                    &tp.child("expirationSeconds"),
                    e,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
        }
    }
}

fn validate_csi_driver_update(n: &st::CSIDriver, o: &st::CSIDriver, errs: &mut Errs) {
    validate_csi_driver(n, errs);
    let sp = Path::new("spec");
    if n.spec.attach_required != o.spec.attach_required {
        errs.push(FieldError::invalid(
            &sp.child("attachRequired"),
            n.spec.attach_required,
            meta::IMMUTABLE,
        ));
    }
    if n.spec.fs_group_policy != o.spec.fs_group_policy {
        errs.push(FieldError::invalid(
            &sp.child("fsGroupPolicy"),
            n.spec.fs_group_policy.clone(),
            meta::IMMUTABLE,
        ));
    }
    if n.spec.volume_lifecycle_modes != o.spec.volume_lifecycle_modes {
        errs.push(FieldError::invalid(
            &sp.child("volumeLifecycleModes"),
            crate::error::go_string_slice(n.spec.volume_lifecycle_modes.as_deref()),
            meta::IMMUTABLE,
        ));
    }
}

pub(crate) static CSI_DRIVER: Def<st::CSIDriver> = def(
    false,
    csi_driver_object_name,
    default_csi_driver,
    validate_csi_driver,
    validate_csi_driver_update,
    no_update_checks,
);

// ---------------------------------------------------------------- CSINode

fn validate_csi_node(n: &st::CSINode, errs: &mut Errs) {
    let dp = Path::new("spec").child("drivers");
    let mut seen = BTreeSet::new();
    for (i, d) in n.spec.drivers.iter().enumerate() {
        let ip = dp.index(i);
        validate_csi_driver_name(&d.name, &ip.child("name"), errs);
        if d.node_id.is_empty() {
            errs.push(FieldError::required(&ip.child("nodeID"), ""));
        } else if d.node_id.len() > 192 {
            errs.push(FieldError::too_long(&ip.child("nodeID"), &d.node_id, 192));
        }
        for k in d.topology_keys.iter().flatten() {
            push_msgs(
                names::is_qualified_name(k),
                &ip.child("topologyKeys"),
                k,
                errs,
            );
        }
        if let Some(c) = d.allocatable.as_ref().and_then(|a| a.count) {
            meta::nonnegative(c.into(), &ip.child("allocatable").child("count"), errs);
        }
        if !seen.insert(d.name.clone()) {
            errs.push(FieldError::duplicate(&ip.child("name"), &d.name));
        }
    }
}

fn validate_csi_node_update(n: &st::CSINode, o: &st::CSINode, errs: &mut Errs) {
    validate_csi_node(n, errs);
    let dp = Path::new("spec").child("drivers");
    for od in &o.spec.drivers {
        for (i, nd) in n.spec.drivers.iter().enumerate() {
            if nd.name == od.name {
                if nd.node_id != od.node_id {
                    errs.push(FieldError::invalid(
                        &dp.index(i).child("nodeID"),
                        &nd.node_id,
                        meta::IMMUTABLE,
                    ));
                }
                if nd.topology_keys != od.topology_keys {
                    errs.push(FieldError::invalid(
                        &dp.index(i).child("topologyKeys"),
                        crate::error::go_string_slice(nd.topology_keys.as_deref()),
                        meta::IMMUTABLE,
                    ));
                }
            }
        }
    }
}

pub(crate) static CSI_NODE: Def<st::CSINode> = def(
    false,
    name_is_dns_subdomain,
    no_default,
    validate_csi_node,
    validate_csi_node_update,
    no_update_checks,
);
