//! The smaller core/v1 kinds: Namespace, ConfigMap, Secret, ServiceAccount, Node,
//! Endpoints, Event, LimitRange, ResourceQuota, ReplicationController and PodTemplate.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PodTemplate, ReplicationController,
    ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::super::{default_opt, default_str, dns_label, push_msgs, required_enum, s};
use super::pod::{self, default_resource_list, validate_quantity_value};
use crate::error::{BadValue, FieldError, go_string_map};
use crate::meta::{self, Errs};
use crate::names;
use crate::path::Path;
use crate::quantity::Quantity;

/// Upstream's limit on the data of a Secret or ConfigMap (1 MiB).
pub(crate) const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

// ---------------------------------------------------------------- Namespace

/// `SetDefaults_Namespace` and `SetDefaults_NamespaceStatus`.
pub(crate) fn default_namespace(ns: &mut Namespace) {
    let name = ns.metadata.name.clone().unwrap_or_default();
    if !name.is_empty() {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
    let st = ns.status.get_or_insert_with(Default::default);
    default_str(&mut st.phase, "Active");
}

pub(crate) fn validate_namespace(ns: &Namespace, errs: &mut Errs) {
    let fp = Path::new("spec").child("finalizers");
    for f in ns.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
        validate_namespace_finalizer(f, &fp, errs);
    }
}

fn validate_namespace_finalizer(f: &str, path: &Path, errs: &mut Errs) {
    let before = errs.len();
    push_msgs(names::is_qualified_name(f), path, f, errs);
    if errs.len() == before && !f.contains('/') && f != "kubernetes" {
        errs.push(FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

pub(crate) fn validate_namespace_status(new: &Namespace, _old: &Namespace, errs: &mut Errs) {
    let phase = new.status.as_ref().map(|st| s(&st.phase)).unwrap_or("");
    let p = Path::new("status").child("Phase");
    if new.metadata.deletion_timestamp.is_none() {
        if phase != "Active" {
            errs.push(FieldError::invalid(
                &p,
                phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            ));
        }
    } else if phase != "Terminating" {
        errs.push(FieldError::invalid(
            &p,
            phase,
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        ));
    }
}

// ---------------------------------------------------------------- ConfigMap / Secret

pub(crate) fn validate_config_map(cm: &ConfigMap, errs: &mut Errs) {
    let mut total = 0usize;
    let empty_b: BTreeMap<String, ByteString> = BTreeMap::new();
    let empty_s: BTreeMap<String, String> = BTreeMap::new();
    let data = cm.data.as_ref().unwrap_or(&empty_s);
    let bin = cm.binary_data.as_ref().unwrap_or(&empty_b);
    for (k, v) in data {
        let p = Path::new("data").key(k);
        push_msgs(names::is_config_map_key(k), &p, k, errs);
        if bin.contains_key(k) {
            errs.push(FieldError::invalid(
                &p,
                k,
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in bin {
        let p = Path::new("binaryData").key(k);
        push_msgs(names::is_config_map_key(k), &p, k, errs);
        if data.contains_key(k) {
            errs.push(FieldError::invalid(
                &p,
                k,
                "duplicate of key present in data",
            ));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), "", MAX_SECRET_SIZE));
    }
}

pub(crate) fn validate_config_map_update(new: &ConfigMap, old: &ConfigMap, errs: &mut Errs) {
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE_SET));
        }
        if new.binary_data != old.binary_data {
            errs.push(FieldError::forbidden(
                &Path::new("binaryData"),
                IMMUTABLE_SET,
            ));
        }
    }
    validate_config_map(new, errs);
}

/// `SetDefaults_Secret`, and the v1 conversion that folds `stringData` into `data`.
pub(crate) fn default_secret(sec: &mut Secret) {
    default_str(&mut sec.type_, "Opaque");
    if let Some(sd) = sec.string_data.take() {
        let data = sec.data.get_or_insert_with(Default::default);
        for (k, v) in sd {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

pub(crate) fn validate_secret(sec: &Secret, errs: &mut Errs) {
    let dp = Path::new("data");
    let empty = BTreeMap::new();
    let data = sec.data.as_ref().unwrap_or(&empty);
    let mut total = 0usize;
    for (k, v) in data {
        push_msgs(names::is_config_map_key(k), &dp.key(k), k, errs);
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&dp, "", MAX_SECRET_SIZE));
    }
    match s(&sec.type_) {
        "kubernetes.io/service-account-token" => {
            let has = sec
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|v| !v.is_empty());
            if !has {
                errs.push(FieldError::required(
                    &Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key) {
                None => errs.push(FieldError::required(&dp.key(key), "")),
                Some(b) => {
                    if let Err(e) =
                        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b.0)
                    {
                        errs.push(FieldError::invalid(
                            &dp.key(key),
                            "<secret contents redacted>",
                            e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(FieldError::required(&dp.key("username"), ""));
            errs.push(FieldError::required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|b| b.0.is_empty()) => {
            errs.push(FieldError::required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            if !data.contains_key("tls.crt") {
                errs.push(FieldError::required(&dp.key("tls.crt"), ""));
            }
            if !data.contains_key("tls.key") {
                errs.push(FieldError::required(&dp.key("tls.key"), ""));
            }
        }
        _ => {}
    }
}

pub(crate) fn validate_secret_update(new: &Secret, old: &Secret, errs: &mut Errs) {
    if s(&new.type_) != s(&old.type_) {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            s(&new.type_),
            meta::IMMUTABLE,
        ));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &Path::new("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE_SET));
        }
    }
    validate_secret(new, errs);
}

// ---------------------------------------------------------------- ServiceAccount

pub(crate) fn validate_service_account(sa: &ServiceAccount, errs: &mut Errs) {
    for (i, sec) in sa.secrets.iter().flatten().enumerate() {
        if let Some(n) = sec.name.as_deref().filter(|n| !n.is_empty()) {
            push_msgs(
                names::name_is_dns_subdomain(n, false),
                &Path::new("secrets").index(i).child("name"),
                n,
                errs,
            );
        }
    }
}

// ---------------------------------------------------------------- Node

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(crate) fn default_node(node: &mut Node) {
    if let Some(st) = &mut node.status {
        default_resource_list(&mut st.capacity);
        default_resource_list(&mut st.allocatable);
        if st.allocatable.is_none() {
            st.allocatable = st.capacity.clone();
        }
    }
}

pub(crate) fn validate_node(node: &Node, errs: &mut Errs) {
    let spec = node.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    let tp = sp.child("taints");
    let mut seen = BTreeSet::new();
    for (i, t) in spec.taints.iter().flatten().enumerate() {
        let ip = tp.index(i);
        meta::validate_label_name(&t.key, &ip.child("key"), errs);
        push_msgs(
            names::is_valid_label_value(s(&t.value)),
            &ip.child("value"),
            s(&t.value),
            errs,
        );
        required_enum(
            &t.effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            &ip.child("effect"),
            errs,
        );
        if !seen.insert((t.key.clone(), t.effect.clone())) {
            errs.push(FieldError::duplicate(
                &ip,
                BadValue::Raw(format!(
                    "core.Taint{{Key:{:?}, Value:{:?}, Effect:{:?}, TimeAdded:<nil>}}",
                    t.key,
                    s(&t.value),
                    t.effect
                )),
            ));
        }
    }
    let cidrs = spec.pod_cidrs.clone().unwrap_or_default();
    for (i, c) in cidrs.iter().enumerate() {
        if names::parse_cidr(c).is_none() {
            errs.push(FieldError::invalid(
                &sp.child("podCIDRs").index(i),
                c,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }
    if cidrs.len() > 2 {
        errs.push(FieldError::invalid(
            &sp.child("podCIDRs"),
            crate::error::go_string_slice(Some(&cidrs)),
            "may specify no more than one CIDR for each IP family",
        ));
    }
    if let Some(st) = &node.status {
        let p = Path::new("status");
        for (k, q) in st.capacity.iter().flatten() {
            validate_quantity_value(k, q, &p.child("capacity").key(k), errs);
        }
        for (k, q) in st.allocatable.iter().flatten() {
            validate_quantity_value(k, q, &p.child("allocatable").key(k), errs);
        }
    }
}

pub(crate) fn validate_node_update(new: &Node, old: &Node, errs: &mut Errs) {
    validate_node(new, errs);
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    let oc = os.pod_cidrs.clone().unwrap_or_default();
    if !oc.is_empty() && ns.pod_cidrs.clone().unwrap_or_default() != oc {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("podCIDRs"),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let op = s(&os.provider_id);
    if !op.is_empty() && s(&ns.provider_id) != op {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
}

pub(crate) fn validate_node_status(new: &Node, old: &Node, errs: &mut Errs) {
    validate_node_update(new, old, errs);
}

// ---------------------------------------------------------------- Endpoints

pub(crate) fn default_endpoints(ep: &mut Endpoints) {
    for ss in ep.subsets.iter_mut().flatten() {
        for p in ss.ports.iter_mut().flatten() {
            default_str(&mut p.protocol, "TCP");
        }
    }
}

/// `ValidateNonSpecialIP`.
pub(crate) fn validate_non_special_ip(ip: &str, path: &Path, errs: &mut Errs) {
    let Some(a) = names::parse_ip(ip) else {
        errs.push(FieldError::invalid(path, ip, names::IP_ERROR));
        return;
    };
    let msg = match a {
        a if a.is_unspecified() => Some("may not be unspecified (0.0.0.0)"),
        a if a.is_loopback() => Some("may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        std::net::IpAddr::V4(v) if v.is_link_local() => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        std::net::IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80 => {
            Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        }
        std::net::IpAddr::V4(v) if v.octets()[..3] == [224, 0, 0] => {
            Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        }
        _ => None,
    };
    if let Some(m) = msg {
        errs.push(FieldError::invalid(path, ip, m));
    }
}

pub(crate) fn validate_endpoints(ep: &Endpoints, errs: &mut Errs) {
    let p = Path::new("subsets");
    for (i, ss) in ep.subsets.iter().flatten().enumerate() {
        let ip = p.index(i);
        let addrs = ss.addresses.as_deref().unwrap_or(&[]);
        let nr = ss.not_ready_addresses.as_deref().unwrap_or(&[]);
        if addrs.is_empty() && nr.is_empty() {
            errs.push(FieldError::required(
                &ip,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (list, field) in [(addrs, "addresses"), (nr, "notReadyAddresses")] {
            for (j, a) in list.iter().enumerate() {
                let ap = ip.child(field).index(j);
                if names::parse_ip(&a.ip).is_none() {
                    errs.push(FieldError::invalid(&ap.child("ip"), &a.ip, names::IP_ERROR));
                } else {
                    validate_non_special_ip(&a.ip, &ap.child("ip"), errs);
                }
                if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                    dns_label(h, &ap.child("hostname"), errs);
                }
                if let Some(n) = a.node_name.as_deref().filter(|h| !h.is_empty()) {
                    push_msgs(
                        names::name_is_dns_subdomain(n, false),
                        &ap.child("nodeName"),
                        n,
                        errs,
                    );
                }
            }
        }
        let ports = ss.ports.as_deref().unwrap_or(&[]);
        for (j, port) in ports.iter().enumerate() {
            let pp = ip.child("ports").index(j);
            let name = s(&port.name);
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            } else if !name.is_empty() {
                dns_label(name, &pp.child("name"), errs);
            }
            push_msgs(
                names::is_valid_port_num(port.port.into()),
                &pp.child("port"),
                port.port,
                errs,
            );
            required_enum(
                s(&port.protocol),
                &["SCTP", "TCP", "UDP"],
                &pp.child("protocol"),
                errs,
            );
        }
    }
}

// ---------------------------------------------------------------- Event (core/v1)

/// Core/v1 Events skip the strategy's ObjectMeta validation upstream: the legacy event
/// rules, then the generic registry's common metadata checks.
pub(crate) fn validate_core_event(ev: &Event, errs: &mut Errs) {
    validate_core_event_legacy(ev, errs);
    meta::validate_object_meta(
        &ev.metadata,
        true,
        names::path_segment_name,
        &Path::new("metadata"),
        errs,
    );
}

fn validate_core_event_legacy(ev: &Event, errs: &mut Errs) {
    let ns = ev.metadata.namespace.clone().unwrap_or_default();
    let inv_ns = s(&ev.involved_object.namespace);
    let inp = Path::new("involvedObject").child("namespace");
    if ev.event_time.is_none() {
        if inv_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(FieldError::invalid(
                    &inp,
                    inv_ns,
                    "does not match event.namespace",
                ));
            }
        } else if ns != inv_ns {
            errs.push(FieldError::invalid(
                &inp,
                inv_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if inv_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(
                &inp,
                inv_ns,
                "does not match event.namespace",
            ));
        }
        let rc = s(&ev.reporting_component);
        if rc.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingComponent"), ""));
        }
        push_msgs(
            names::is_qualified_name(rc),
            &Path::new("reportingComponent"),
            rc,
            errs,
        );
        for (v, f, limit) in [
            (s(&ev.reporting_instance), "reportingInstance", 128),
            (s(&ev.action), "action", 128),
            (s(&ev.reason), "reason", 128),
        ] {
            if v.is_empty() {
                errs.push(FieldError::required(&Path::new(f), ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    &Path::new(f),
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if s(&ev.message).len() > 1024 {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                "can have at most 1024 characters",
            ));
        }
    }
    push_msgs(
        names::is_dns1123_subdomain(&ns),
        &Path::new("namespace"),
        ns.clone(),
        errs,
    );
}

/// On update core Events get the legacy rules only (ObjectMetaUpdate runs separately).
pub(crate) fn validate_core_event_update(new: &Event, _old: &Event, errs: &mut Errs) {
    validate_core_event_legacy(new, errs);
}

// ---------------------------------------------------------------- LimitRange / ResourceQuota

/// `SetDefaults_LimitRangeItem`.
pub(crate) fn default_limit_range(lr: &mut LimitRange) {
    let Some(spec) = &mut lr.spec else { return };
    for item in spec.limits.iter_mut() {
        for l in [
            &mut item.max,
            &mut item.min,
            &mut item.default,
            &mut item.default_request,
            &mut item.max_limit_request_ratio,
        ] {
            default_resource_list(l);
        }
        if item.type_ == "Container" {
            let max = item.max.clone().unwrap_or_default();
            let min = item.min.clone().unwrap_or_default();
            let def = item.default.get_or_insert_with(Default::default);
            for (k, v) in &max {
                def.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let def = def.clone();
            let dr = item.default_request.get_or_insert_with(Default::default);
            for (k, v) in def.iter().chain(min.iter()) {
                dr.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

fn q(v: &K8sQuantity) -> Option<Quantity> {
    Quantity::parse(&v.0).ok()
}

pub(crate) fn validate_limit_range(lr: &LimitRange, errs: &mut Errs) {
    let p = Path::new("spec").child("limits");
    let mut types = BTreeSet::new();
    for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
        let ip = p.index(i);
        let ty = item.type_.as_str();
        push_msgs(names::is_qualified_name(ty), &ip.child("type"), ty, errs);
        if !ty.contains('/') && !["Container", "Pod", "PersistentVolumeClaim"].contains(&ty) {
            errs.push(FieldError::invalid(
                &ip.child("type"),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(&ip.child("type"), ty));
        }
        let get = |m: &Option<BTreeMap<String, K8sQuantity>>| m.clone().unwrap_or_default();
        let (max, min, def, dr, ratio) = (
            get(&item.max),
            get(&item.min),
            get(&item.default),
            get(&item.default_request),
            get(&item.max_limit_request_ratio),
        );
        for (m, f) in [
            (&max, "max"),
            (&min, "min"),
            (&def, "default"),
            (&dr, "defaultRequest"),
            (&ratio, "maxLimitRequestRatio"),
        ] {
            for (k, v) in m {
                let kp = ip.child(f).key(k);
                push_msgs(names::is_qualified_name(k), &kp, k, errs);
                validate_quantity_value(k, v, &kp, errs);
            }
        }
        if ty == "Pod" {
            if !def.is_empty() {
                errs.push(FieldError::forbidden(
                    &ip.child("default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if !dr.is_empty() {
                errs.push(FieldError::forbidden(
                    &ip.child("defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
        if ty == "PersistentVolumeClaim"
            && !min.contains_key("storage")
            && !max.contains_key("storage")
        {
            errs.push(FieldError::required(
                &ip.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        let keys: BTreeSet<&String> = max
            .keys()
            .chain(min.keys())
            .chain(def.keys())
            .chain(dr.keys())
            .chain(ratio.keys())
            .collect();
        for k in keys {
            let (mn, mx, d, r, rt) = (
                min.get(k).and_then(q),
                max.get(k).and_then(q),
                def.get(k).and_then(q),
                dr.get(k).and_then(q),
                ratio.get(k).and_then(q),
            );
            let raw = |x: &Quantity| BadValue::Raw(x.canonical());
            if let (Some(mn), Some(mx)) = (&mn, &mx)
                && mn > mx
            {
                errs.push(FieldError::invalid(
                    &ip.child("min").key(k),
                    raw(mn),
                    format!(
                        "min value {} is greater than max value {}",
                        mn.canonical(),
                        mx.canonical()
                    ),
                ));
            }
            if let (Some(r), Some(mn)) = (&r, &mn)
                && mn > r
            {
                errs.push(FieldError::invalid(
                    &ip.child("defaultRequest").key(k),
                    raw(r),
                    format!(
                        "min value {} is greater than default request value {}",
                        mn.canonical(),
                        r.canonical()
                    ),
                ));
            }
            if let (Some(r), Some(mx)) = (&r, &mx)
                && r > mx
            {
                errs.push(FieldError::invalid(
                    &ip.child("defaultRequest").key(k),
                    raw(r),
                    format!(
                        "default request value {} is greater than max value {}",
                        r.canonical(),
                        mx.canonical()
                    ),
                ));
            }
            if let (Some(r), Some(d)) = (&r, &d)
                && r > d
            {
                errs.push(FieldError::invalid(
                    &ip.child("defaultRequest").key(k),
                    raw(r),
                    format!(
                        "default request value {} is greater than default limit value {}",
                        r.canonical(),
                        d.canonical()
                    ),
                ));
            }
            if let (Some(d), Some(mn)) = (&d, &mn)
                && mn > d
            {
                errs.push(FieldError::invalid(
                    &ip.child("default").key(k),
                    raw(mn),
                    format!(
                        "min value {} is greater than default value {}",
                        mn.canonical(),
                        d.canonical()
                    ),
                ));
            }
            if let (Some(d), Some(mx)) = (&d, &mx)
                && d > mx
            {
                errs.push(FieldError::invalid(
                    &ip.child("default").key(k),
                    raw(mx),
                    format!(
                        "default value {} is greater than max value {}",
                        d.canonical(),
                        mx.canonical()
                    ),
                ));
            }
            if let Some(rt) = &rt
                && *rt < Quantity::from_units(1)
            {
                errs.push(FieldError::invalid(
                    &ip.child("maxLimitRequestRatio").key(k),
                    raw(rt),
                    format!("ratio {} is less than 1", rt.canonical()),
                ));
            }
        }
    }
}

const QUOTA_STANDARD: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

pub(crate) fn default_quota(rq: &mut ResourceQuota) {
    if let Some(spec) = &mut rq.spec {
        default_resource_list(&mut spec.hard);
    }
}

pub(crate) fn validate_quota(rq: &ResourceQuota, errs: &mut Errs) {
    let spec = rq.spec.clone().unwrap_or_default();
    let hp = Path::new("spec").child("hard");
    for (k, v) in spec.hard.iter().flatten() {
        let kp = hp.key(k);
        push_msgs(names::is_qualified_name(k), &kp, k, errs);
        if !k.contains('/')
            && !QUOTA_STANDARD.contains(&k.as_str())
            && !k.starts_with("count/")
            && !k.starts_with("hugepages-")
            && !k.starts_with("requests.hugepages-")
        {
            errs.push(FieldError::invalid(
                &kp,
                k,
                "must be a standard resource for quota",
            ));
        }
        validate_quantity_value(k, v, &kp, errs);
    }
    let scopes = [
        "BestEffort",
        "CrossNamespacePodAffinity",
        "NotBestEffort",
        "NotTerminating",
        "PriorityClass",
        "Terminating",
        "VolumeAttributesClass",
    ];
    for sc in spec.scopes.iter().flatten() {
        if !scopes.contains(&sc.as_str()) {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("scopes"),
                sc,
                "unsupported scope",
            ));
        }
    }
}

pub(crate) fn validate_quota_status(new: &ResourceQuota, _old: &ResourceQuota, errs: &mut Errs) {
    let st = new.status.clone().unwrap_or_default();
    for (field, m) in [("hard", &st.hard), ("used", &st.used)] {
        for (k, v) in m.iter().flatten() {
            validate_quantity_value(k, v, &Path::new("status").child(field).key(k), errs);
        }
    }
}

// ---------------------------------------------------------------- ReplicationController / PodTemplate

/// `SetDefaults_ReplicationController`.
pub(crate) fn default_rc(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let tlabels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(l) = tlabels {
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            spec.selector = Some(l.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(|s| s.is_empty()) {
            rc.metadata.labels = Some(l);
        }
    }
    default_opt(&mut spec.replicas, 1);
    pod::default_template(&mut spec.template);
}

pub(crate) fn validate_rc(rc: &ReplicationController, errs: &mut Errs) {
    let spec = rc.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    meta::nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &sp.child("minReadySeconds"),
        errs,
    );
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&sp.child("selector"), ""));
    } else {
        meta::validate_labels(Some(&selector), &sp.child("selector"), errs);
    }
    meta::nonnegative(
        spec.replicas.unwrap_or(0).into(),
        &sp.child("replicas"),
        errs,
    );
    let tp = sp.child("template");
    match &spec.template {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
            if !selector.is_empty()
                && !selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            {
                errs.push(FieldError::invalid(
                    &tp.child("metadata").child("labels"),
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
            pod::validate_template(t, &tp, errs);
            let ps = t.spec.clone().unwrap_or_default();
            let rp = s(&ps.restart_policy);
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    &tp.child("spec").child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            if ps.active_deadline_seconds.is_some() {
                errs.push(FieldError::forbidden(
                    &tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
}

pub(crate) fn validate_rc_status(
    new: &ReplicationController,
    _old: &ReplicationController,
    errs: &mut Errs,
) {
    let st = new.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (Some(st.replicas), "replicas"),
        (st.fully_labeled_replicas, "fullyLabeledReplicas"),
        (st.ready_replicas, "readyReplicas"),
        (st.available_replicas, "availableReplicas"),
        (
            st.observed_generation.map(|g| g as i32),
            "observedGeneration",
        ),
    ] {
        meta::nonnegative(v.unwrap_or(0).into(), &p.child(f), errs);
    }
}

pub(crate) fn default_pod_template(pt: &mut PodTemplate) {
    pod::default_template(&mut pt.template);
}

pub(crate) fn validate_pod_template(pt: &PodTemplate, errs: &mut Errs) {
    let t = pt.template.clone().unwrap_or_default();
    pod::validate_template(&t, &Path::new("template"), errs);
}
