//! Pods and pod templates: `SetDefaults_PodSpec`, `SetDefaults_Container`, probes and volume
//! sources; `ValidatePodSpec` (containers, init containers, ports, env, mounts, resources,
//! probes, lifecycle, security contexts, volumes, affinity, tolerations, topology spread,
//! DNS) and the pod update rules (only images, activeDeadlineSeconds, tolerations
//! additions, scheduling-gate removals and a few more may change).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, Lifecycle,
    LifecycleHandler, NodeSelector, NodeSelectorRequirement, Pod, PodAffinityTerm, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecurityContext, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::super::{
    default_opt, default_str, dns_label, optional_enum, push_msgs, required_enum, s,
};
use crate::error::{BadValue, FieldError, go_quote};
use crate::meta::{self, Errs, NEGATIVE};
use crate::names;
use crate::path::Path;
use crate::quantity::Quantity;

// ---------------------------------------------------------------- defaults

/// `SetDefaults_ResourceList`: values rounded up to milli-units.
pub(crate) fn default_resource_list(list: &mut Option<BTreeMap<String, K8sQuantity>>) {
    for v in list.iter_mut().flat_map(|m| m.values_mut()) {
        if let Ok(q) = Quantity::parse(&v.0) {
            let rounded = q.milli_value();
            if rounded * 1_000_000 != q.nanos() {
                let r = Quantity::parse(&format!("{rounded}m")).unwrap_or(q);
                v.0 = r.canonical();
            }
        }
    }
}

fn default_probe(p: &mut Option<Probe>) {
    let Some(p) = p else { return };
    default_opt(&mut p.timeout_seconds, 1);
    default_opt(&mut p.period_seconds, 10);
    default_opt(&mut p.success_threshold, 1);
    default_opt(&mut p.failure_threshold, 3);
    default_http_get(&mut p.http_get);
}

fn default_http_get(h: &mut Option<HTTPGetAction>) {
    if let Some(h) = h {
        default_str(&mut h.path, "/");
        default_str(&mut h.scheme, "HTTP");
    }
}

fn default_lifecycle_handler(h: &mut Option<LifecycleHandler>) {
    if let Some(h) = h {
        default_http_get(&mut h.http_get);
    }
}

/// The image pull policy upstream picks from the tag: `Always` for `:latest` or no tag,
/// `IfNotPresent` otherwise (digests count as tags).
pub(crate) fn pull_policy_for(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        None => "Always",
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container_fields(
    image: &Option<String>,
    pull: &mut Option<String>,
    tmp: &mut Option<String>,
    tmpol: &mut Option<String>,
    ports: &mut Option<Vec<ContainerPort>>,
) {
    if s(pull).is_empty() {
        *pull = Some(pull_policy_for(s(image)).to_string());
    }
    default_str(tmp, "/dev/termination-log");
    default_str(tmpol, "File");
    for p in ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
    }
}

fn default_container(c: &mut Container) {
    default_container_fields(
        &c.image,
        &mut c.image_pull_policy,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
        &mut c.ports,
    );
    default_probe(&mut c.liveness_probe);
    default_probe(&mut c.readiness_probe);
    default_probe(&mut c.startup_probe);
    if let Some(l) = &mut c.lifecycle {
        default_lifecycle_handler(&mut l.post_start);
        default_lifecycle_handler(&mut l.pre_stop);
    }
    if let Some(r) = &mut c.resources {
        default_resource_list(&mut r.limits);
        default_resource_list(&mut r.requests);
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_str(&mut f.api_version, "v1");
        }
    }
}

fn default_volume(v: &mut Volume) {
    let has_source = v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some();
    if !has_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(x) = &mut v.secret {
        default_opt(&mut x.default_mode, 0o644);
    }
    if let Some(x) = &mut v.config_map {
        default_opt(&mut x.default_mode, 0o644);
    }
    if let Some(x) = &mut v.downward_api {
        default_opt(&mut x.default_mode, 0o644);
        for i in x.items.iter_mut().flatten() {
            if let Some(f) = &mut i.field_ref {
                default_str(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(x) = &mut v.projected {
        default_opt(&mut x.default_mode, 0o644);
        for src in x.sources.iter_mut().flatten() {
            if let Some(t) = &mut src.service_account_token {
                default_opt(&mut t.expiration_seconds, 3600);
            }
            if let Some(d) = &mut src.downward_api {
                for i in d.items.iter_mut().flatten() {
                    if let Some(f) = &mut i.field_ref {
                        default_str(&mut f.api_version, "v1");
                    }
                }
            }
        }
    }
    if let Some(x) = &mut v.host_path {
        default_opt(&mut x.type_, String::new());
    }
    if let Some(x) = &mut v.iscsi {
        default_str(&mut x.iscsi_interface, "default");
    }
    if let Some(x) = &mut v.rbd {
        default_str(&mut x.pool, "rbd");
        default_str(&mut x.user, "admin");
        default_str(&mut x.keyring, "/etc/ceph/keyring");
    }
    if let Some(x) = &mut v.azure_disk {
        default_str(&mut x.caching_mode, "ReadWrite");
        default_str(&mut x.kind, "Shared");
        default_str(&mut x.fs_type, "ext4");
        default_opt(&mut x.read_only, false);
    }
    if let Some(x) = &mut v.scale_io {
        default_str(&mut x.storage_mode, "ThinProvisioned");
        default_str(&mut x.fs_type, "xfs");
    }
    if let Some(x) = &mut v.ephemeral
        && let Some(t) = &mut x.volume_claim_template
    {
        super::storage_kinds::default_pvc_spec(&mut t.spec);
    }
}

/// `SetDefaults_PodSpec` plus the container, volume and probe defaults under it.
pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    default_opt(&mut spec.security_context, Default::default());
    default_opt(&mut spec.termination_grace_period_seconds, 30);
    default_str(&mut spec.scheduler_name, "default-scheduler");
    for c in spec.containers.iter_mut() {
        default_container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_container_fields(
            &c.image,
            &mut c.image_pull_policy,
            &mut c.termination_message_path,
            &mut c.termination_message_policy,
            &mut c.ports,
        );
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    default_resource_list(&mut spec.overhead);
}

/// A pod template's defaults (`SetDefaults_PodSpec` applies to templates too).
pub(crate) fn default_template(t: &mut Option<PodTemplateSpec>) {
    if let Some(t) = t {
        default_template_spec(t);
    }
}

/// [`default_template`] for a template that is always present.
pub(crate) fn default_template_spec(t: &mut PodTemplateSpec) {
    // Go's template spec is a value, not a pointer: it is always there and defaulted.
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

fn default_host_network_ports(cs: &mut [Container]) {
    for c in cs {
        for p in c.ports.iter_mut().flatten() {
            if p.host_port.is_none_or(|h| h == 0) {
                p.host_port = Some(p.container_port);
            }
        }
    }
}

fn default_requests_from_limits(cs: &mut [Container]) {
    for c in cs {
        let Some(r) = &mut c.resources else { continue };
        let Some(limits) = &r.limits else { continue };
        if limits.is_empty() {
            continue;
        }
        let req = r.requests.get_or_insert_with(Default::default);
        for (k, v) in limits {
            req.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// `SetDefaults_Pod`.
pub(crate) fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    default_requests_from_limits(&mut spec.containers);
    if let Some(ic) = &mut spec.init_containers {
        default_requests_from_limits(ic);
    }
    default_pod_spec(spec);
    default_opt(&mut spec.enable_service_links, true);
    if spec.host_network == Some(true) {
        default_host_network_ports(&mut spec.containers);
        if let Some(ic) = &mut spec.init_containers {
            default_host_network_ports(ic);
        }
    }
}

// ---------------------------------------------------------------- validation

const PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const DOWNWARD_ENV_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const DOWNWARD_VOLUME_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// The volumes a pod declares, by name, as `ValidateVolumes` returns them.
type VolumeMap<'a> = BTreeMap<&'a str, &'a Volume>;

fn validate_port_num_or_name(p: &IntOrString, path: &Path, errs: &mut Errs) {
    match p {
        IntOrString::Int(i) => push_msgs(names::is_valid_port_num(i64::from(*i)), path, *i, errs),
        IntOrString::String(st) => push_msgs(names::is_valid_port_name(st), path, st, errs),
    }
}

fn validate_container_ports(ports: &[ContainerPort], path: &Path, errs: &mut Errs) {
    let mut names_seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = path.index(i);
        let name = s(&p.name);
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                push_msgs(msgs, &ip.child("name"), name, errs);
            } else if !names_seen.insert(name) {
                errs.push(FieldError::duplicate(&ip.child("name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(&ip.child("containerPort"), ""));
        } else {
            push_msgs(
                names::is_valid_port_num(p.container_port.into()),
                &ip.child("containerPort"),
                p.container_port,
                errs,
            );
        }
        if let Some(h) = p.host_port.filter(|h| *h != 0) {
            push_msgs(
                names::is_valid_port_num(h.into()),
                &ip.child("hostPort"),
                h,
                errs,
            );
        }
        required_enum(s(&p.protocol), PORT_PROTOCOLS, &ip.child("protocol"), errs);
    }
}

fn validate_object_field_selector(
    api_version: &str,
    field_path: &str,
    allowed: &[&str],
    path: &Path,
    errs: &mut Errs,
) {
    if api_version.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return;
    }
    if field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return;
    }
    if api_version != "v1" {
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            api_version,
            "unsupported API version",
        ));
        return;
    }
    // `metadata.labels['key']` and `metadata.annotations['key']` select one entry.
    if let Some((base, rest)) = field_path.split_once('[')
        && (base == "metadata.labels" || base == "metadata.annotations")
        && allowed.contains(&base)
    {
        let key = rest.strip_suffix("']").and_then(|r| r.strip_prefix('\''));
        match key {
            Some(k) => {
                let msgs = if base == "metadata.annotations" {
                    names::is_qualified_name(&k.to_lowercase())
                } else {
                    names::is_qualified_name(k)
                };
                push_msgs(msgs, &path.child("fieldPath"), field_path, errs);
            }
            None => errs.push(FieldError::invalid(
                &path.child("fieldPath"),
                field_path,
                "error converting fieldPath: invalid subscript",
            )),
        }
        return;
    }
    if !allowed.contains(&field_path) {
        errs.push(FieldError::not_supported(
            &path.child("fieldPath"),
            field_path,
            allowed,
        ));
    }
}

fn validate_resource_field_ref(
    container_name: Option<&str>,
    resource: &str,
    require_container: bool,
    path: &Path,
    errs: &mut Errs,
) {
    if require_container && container_name.unwrap_or("").is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else {
        let ok = matches!(
            resource,
            "limits.cpu"
                | "limits.memory"
                | "limits.ephemeral-storage"
                | "requests.cpu"
                | "requests.memory"
                | "requests.ephemeral-storage"
        ) || resource.starts_with("limits.hugepages-")
            || resource.starts_with("requests.hugepages-");
        if !ok {
            errs.push(FieldError::not_supported(
                &path.child("resource"),
                resource,
                &[
                    "limits.cpu",
                    "limits.ephemeral-storage",
                    "limits.memory",
                    "requests.cpu",
                    "requests.ephemeral-storage",
                    "requests.memory",
                ],
            ));
        }
    }
}

fn validate_key_selector(name: &str, key: &str, path: &Path, errs: &mut Errs) {
    push_msgs(
        names::name_is_dns_subdomain(name, false),
        &path.child("name"),
        name,
        errs,
    );
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        push_msgs(names::is_config_map_key(key), &path.child("key"), key, errs);
    }
}

fn validate_env(env: &[EnvVar], path: &Path, errs: &mut Errs) {
    for (i, ev) in env.iter().enumerate() {
        let ip = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&ip.child("name"), ""));
        } else {
            push_msgs(
                names::is_env_var_name(&ev.name),
                &ip.child("name"),
                &ev.name,
                errs,
            );
        }
        let Some(vf) = &ev.value_from else { continue };
        let vp = ip.child("valueFrom");
        let mut n = 0;
        if let Some(f) = &vf.field_ref {
            n += 1;
            validate_object_field_selector(
                s(&f.api_version),
                &f.field_path,
                DOWNWARD_ENV_PATHS,
                &vp.child("fieldRef"),
                errs,
            );
        }
        if let Some(r) = &vf.resource_field_ref {
            n += 1;
            validate_resource_field_ref(
                r.container_name.as_deref(),
                &r.resource,
                false,
                &vp.child("resourceFieldRef"),
                errs,
            );
        }
        if let Some(c) = &vf.config_map_key_ref {
            n += 1;
            validate_key_selector(&c.name, &c.key, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(c) = &vf.secret_key_ref {
            n += 1;
            validate_key_selector(&c.name, &c.key, &vp.child("secretKeyRef"), errs);
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(&ev.value).is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_env_from(env_from: &[EnvFromSource], path: &Path, errs: &mut Errs) {
    for (i, ev) in env_from.iter().enumerate() {
        let ip = path.index(i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            push_msgs(
                names::is_env_var_name(prefix),
                &ip.child("prefix"),
                prefix,
                errs,
            );
        }
        let mut n = 0;
        if let Some(c) = &ev.config_map_ref {
            n += 1;
            let p = ip.child("configMapRef").child("name");
            if c.name.is_empty() {
                errs.push(FieldError::required(&p, ""));
            } else {
                push_msgs(
                    names::name_is_dns_subdomain(&c.name, false),
                    &p,
                    &c.name,
                    errs,
                );
            }
        }
        if let Some(c) = &ev.secret_ref {
            n += 1;
            let p = ip.child("secretRef").child("name");
            if c.name.is_empty() {
                errs.push(FieldError::required(&p, ""));
            } else {
                push_msgs(
                    names::name_is_dns_subdomain(&c.name, false),
                    &p,
                    &c.name,
                    errs,
                );
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &ip,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &ip,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_local_descending_path(p: &str, path: &Path, errs: &mut Errs) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|seg| seg == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn validate_local_non_reserved_path(p: &str, path: &Path, errs: &mut Errs) {
    validate_local_descending_path(p, path, errs);
    if p.starts_with("..") && p.split('/').next().is_some_and(|f| f.len() > 2) {
        errs.push(FieldError::invalid(path, p, "must not start with '..'"));
    }
}

fn validate_volume_mounts(c: &Container, volumes: &VolumeMap<'_>, path: &Path, errs: &mut Errs) {
    let devices: BTreeMap<&str, &str> = c
        .volume_devices
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let mut points = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let ip = path.index(i);
        validate_volume_mount(m, volumes, &devices, &mut points, &ip, path, errs);
    }
}

fn validate_volume_mount<'a>(
    m: &'a VolumeMount,
    volumes: &VolumeMap<'_>,
    devices: &BTreeMap<&str, &str>,
    points: &mut BTreeSet<&'a str>,
    ip: &Path,
    list_path: &Path,
    errs: &mut Errs,
) {
    if m.name.is_empty() {
        errs.push(FieldError::required(&ip.child("name"), ""));
    }
    if !volumes.contains_key(m.name.as_str()) {
        errs.push(FieldError::not_found(&ip.child("name"), &m.name));
    }
    if m.mount_path.is_empty() {
        errs.push(FieldError::required(&ip.child("mountPath"), ""));
    }
    if !points.insert(&m.mount_path) {
        errs.push(FieldError::invalid(
            &ip.child("mountPath"),
            &m.mount_path,
            "must be unique",
        ));
    }
    if devices.contains_key(m.name.as_str()) {
        errs.push(FieldError::invalid(
            &ip.child("name"),
            &m.name,
            "must not already exist in volumeDevices",
        ));
    }
    if devices.values().any(|d| *d == m.mount_path) {
        errs.push(FieldError::invalid(
            &ip.child("mountPath"),
            &m.mount_path,
            "must not already exist as a path in volumeDevices",
        ));
    }
    let sub = s(&m.sub_path);
    if !sub.is_empty() {
        validate_local_descending_path(sub, &list_path.child("subPath"), errs);
    }
    let expr = s(&m.sub_path_expr);
    if !expr.is_empty() {
        if !sub.is_empty() {
            errs.push(FieldError::invalid(
                &ip.child("subPathExpr"),
                expr,
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        validate_local_descending_path(expr, &list_path.child("subPathExpr"), errs);
    }
    optional_enum(
        m.mount_propagation.as_deref(),
        &["Bidirectional", "HostToContainer", "None"],
        &list_path.child("mountPropagation"),
        errs,
    );
    if let Some(rro) = m.recursive_read_only.as_deref() {
        let rp = list_path.child("recursiveReadOnly");
        if !["Disabled", "IfPossible", "Enabled"].contains(&rro) {
            errs.push(FieldError::not_supported(
                &rp,
                rro,
                &["Disabled", "IfPossible", "Enabled"],
            ));
        } else if rro != "Disabled" && m.read_only != Some(true) {
            errs.push(FieldError::forbidden(
                &rp,
                "may only be specified when readOnly is true",
            ));
        }
    }
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Extended resources: not native, not `requests.`-prefixed, and `requests.<name>` a
/// qualified name.
pub(crate) fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_integer_resource(name: &str) -> bool {
    is_extended_resource(name)
        || matches!(
            name,
            "pods"
                | "services"
                | "replicationcontrollers"
                | "resourcequotas"
                | "secrets"
                | "configmaps"
                | "persistentvolumeclaims"
                | "services.nodeports"
                | "services.loadbalancers"
        )
}

/// `ValidateResourceQuantityValue`.
pub(crate) fn validate_quantity_value(
    resource: &str,
    q: &K8sQuantity,
    path: &Path,
    errs: &mut Errs,
) {
    let Ok(parsed) = Quantity::parse(&q.0) else {
        return;
    };
    if parsed.is_negative() {
        errs.push(FieldError::invalid(path, parsed.canonical(), NEGATIVE));
    }
    if is_integer_resource(resource) && parsed.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            BadValue::Raw(parsed.canonical()),
            "must be an integer",
        ));
    }
}

fn validate_container_resource_name(name: &str, path: &Path, errs: &mut Errs) {
    push_msgs(names::is_qualified_name(name), path, name, errs);
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name);
        if !standard {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// `ValidateContainerResourceRequirements`.
pub(crate) fn validate_resources(r: &ResourceRequirements, path: &Path, errs: &mut Errs) {
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let (mut lim_cm, mut req_cm, mut lim_hp, mut req_hp) = (false, false, false, false);
    for (name, q) in limits {
        let p = lim_path.key(name);
        validate_container_resource_name(name, &p, errs);
        validate_quantity_value(name, q, &p, errs);
        lim_hp |= is_hugepages(name);
        lim_cm |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let p = req_path.key(name);
        validate_container_resource_name(name, &p, errs);
        validate_quantity_value(name, q, &p, errs);
        let overcommit = is_native_resource(name) && !is_hugepages(name);
        match (limits.get(name), Quantity::parse(&q.0)) {
            (Some(l), Ok(rq)) => {
                if let Ok(lq) = Quantity::parse(&l.0) {
                    if rq != lq && !overcommit {
                        errs.push(FieldError::invalid(
                            &req_path,
                            rq.canonical(),
                            format!("must be equal to {name} limit of {}", lq.canonical()),
                        ));
                    } else if rq > lq {
                        errs.push(FieldError::invalid(
                            &req_path,
                            rq.canonical(),
                            format!(
                                "must be less than or equal to {name} limit of {}",
                                lq.canonical()
                            ),
                        ));
                    }
                }
            }
            (None, _) if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            _ => {}
        }
        req_hp |= is_hugepages(name);
        req_cm |= name == "cpu" || name == "memory";
    }
    if !lim_cm && !req_cm && (req_hp || lim_hp) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
}

fn validate_http_get(h: &HTTPGetAction, path: &Path, errs: &mut Errs) {
    if s(&h.path).is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    validate_port_num_or_name(&h.port, &path.child("port"), errs);
    let scheme = s(&h.scheme);
    if !["HTTP", "HTTPS"].contains(&scheme) {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for hdr in h.http_headers.iter().flatten() {
        push_msgs(
            names::is_http_header_name(&hdr.name),
            &path.child("httpHeaders"),
            &hdr.name,
            errs,
        );
    }
}

struct Handler<'a> {
    exec: Option<&'a k8s_openapi::api::core::v1::ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a k8s_openapi::api::core::v1::TCPSocketAction>,
    grpc: Option<&'a k8s_openapi::api::core::v1::GRPCAction>,
    sleep: Option<&'a k8s_openapi::api::core::v1::SleepAction>,
}

fn validate_handler(h: &Handler<'_>, grace: i64, path: &Path, errs: &mut Errs) {
    let mut n = 0;
    let mut one = |field: &str, errs: &mut Errs| -> bool {
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(e) = h.exec
        && one("exec", errs)
        && e.command.as_ref().is_none_or(|c| c.is_empty())
    {
        errs.push(FieldError::required(
            &path.child("exec").child("command"),
            "",
        ));
    }
    if let Some(g) = h.http_get
        && one("httpGet", errs)
    {
        validate_http_get(g, &path.child("httpGet"), errs);
    }
    if let Some(t) = h.tcp_socket
        && one("tcpSocket", errs)
    {
        validate_port_num_or_name(&t.port, &path.child("tcpSocket").child("port"), errs);
    }
    if let Some(g) = h.grpc
        && one("grpc", errs)
    {
        push_msgs(
            names::is_valid_port_num(g.port.into()),
            &path.child("grpc").child("port"),
            g.port,
            errs,
        );
    }
    if let Some(sl) = h.sleep
        && one("sleep", errs)
        && (sl.seconds < 0 || sl.seconds > grace)
    {
        errs.push(FieldError::invalid(
            &path.child("sleep").child("seconds"),
            sl.seconds,
            format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
        ));
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn validate_probe(p: &Probe, grace: i64, path: &Path, errs: &mut Errs) {
    let h = Handler {
        exec: p.exec.as_ref(),
        http_get: p.http_get.as_ref(),
        tcp_socket: p.tcp_socket.as_ref(),
        grpc: p.grpc.as_ref(),
        sleep: None,
    };
    validate_handler(&h, grace, path, errs);
    for (v, f) in [
        (p.initial_delay_seconds, "initialDelaySeconds"),
        (p.timeout_seconds, "timeoutSeconds"),
        (p.period_seconds, "periodSeconds"),
        (p.success_threshold, "successThreshold"),
        (p.failure_threshold, "failureThreshold"),
    ] {
        meta::nonnegative(v.unwrap_or(0).into(), &path.child(f), errs);
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
}

fn validate_probes(c: &Container, grace: i64, path: &Path, errs: &mut Errs) {
    if let Some(p) = &c.liveness_probe {
        let lp = path.child("livenessProbe");
        validate_probe(p, grace, &lp, errs);
        if p.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                &lp.child("successThreshold"),
                p.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    if let Some(p) = &c.readiness_probe {
        let rp = path.child("readinessProbe");
        validate_probe(p, grace, &rp, errs);
        if let Some(t) = p.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                &rp.child("terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(p) = &c.startup_probe {
        let sp = path.child("startupProbe");
        validate_probe(p, grace, &sp, errs);
        if p.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                &sp.child("successThreshold"),
                p.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
}

fn validate_lifecycle(l: &Lifecycle, grace: i64, path: &Path, errs: &mut Errs) {
    for (h, f) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        if let Some(h) = h {
            let hh = Handler {
                exec: h.exec.as_ref(),
                http_get: h.http_get.as_ref(),
                tcp_socket: h.tcp_socket.as_ref(),
                grpc: None,
                sleep: h.sleep.as_ref(),
            };
            validate_handler(&hh, grace, &path.child(f), errs);
        }
    }
}

fn validate_id(v: Option<i64>, path: &Path, errs: &mut Errs) {
    if let Some(v) = v
        && !(0..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            path,
            v,
            "must be between 0 and 2147483647, inclusive",
        ));
    }
}

fn validate_seccomp(
    sp: Option<&k8s_openapi::api::core::v1::SeccompProfile>,
    path: &Path,
    errs: &mut Errs,
) {
    let Some(sp) = sp else { return };
    let lp = s(&sp.localhost_profile);
    match sp.type_.as_str() {
        "Localhost" => {
            if sp.localhost_profile.is_none() {
                errs.push(FieldError::required(
                    &path.child("localhostProfile"),
                    "must be set when seccomp type is Localhost",
                ));
            } else {
                validate_local_descending_path(lp, &path.child("localhostProfile"), errs);
            }
        }
        "RuntimeDefault" | "Unconfined" => {
            if sp.localhost_profile.is_some() {
                errs.push(FieldError::invalid(
                    &path.child("localhostProfile"),
                    lp,
                    "can only be set when seccomp type is Localhost",
                ));
            }
        }
        t => errs.push(FieldError::not_supported(
            &path.child("type"),
            t,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
}

fn validate_container_security_context(sc: &SecurityContext, path: &Path, errs: &mut Errs) {
    validate_id(sc.run_as_user, &path.child("runAsUser"), errs);
    validate_id(sc.run_as_group, &path.child("runAsGroup"), errs);
    optional_enum(
        sc.proc_mount.as_deref(),
        &["Default", "Unmasked"],
        &path.child("procMount"),
        errs,
    );
    validate_seccomp(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
        errs,
    );
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                BadValue::Raw("core.SecurityContext{...}".into()),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let sys_admin = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN"));
        if sys_admin {
            errs.push(FieldError::invalid(
                path,
                BadValue::Raw("core.SecurityContext{...}".into()),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
}

fn validate_container_common(c: &Container, volumes: &VolumeMap<'_>, path: &Path, errs: &mut Errs) {
    let np = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&np, ""));
    } else {
        dns_label(&c.name, &np, errs);
    }
    if s(&c.image).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    required_enum(
        s(&c.termination_message_policy),
        &["File", "FallbackToLogsOnError"],
        &path.child("terminationMessagePolicy"),
        errs,
    );
    validate_container_ports(
        c.ports.as_deref().unwrap_or(&[]),
        &path.child("ports"),
        errs,
    );
    validate_env(c.env.as_deref().unwrap_or(&[]), &path.child("env"), errs);
    validate_env_from(
        c.env_from.as_deref().unwrap_or(&[]),
        &path.child("envFrom"),
        errs,
    );
    validate_volume_mounts(c, volumes, &path.child("volumeMounts"), errs);
    for (i, d) in c.volume_devices.iter().flatten().enumerate() {
        let ip = path.child("volumeDevices").index(i);
        if d.name.is_empty() {
            errs.push(FieldError::required(&ip.child("name"), ""));
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(&ip.child("devicePath"), ""));
        }
        match volumes.get(d.name.as_str()) {
            Some(v) if v.persistent_volume_claim.is_some() || v.ephemeral.is_some() => {}
            Some(_) => errs.push(FieldError::invalid(
                &ip.child("name"),
                &d.name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            None => errs.push(FieldError::not_found(&ip.child("name"), &d.name)),
        }
    }
    required_enum(
        s(&c.image_pull_policy),
        PULL_POLICIES,
        &path.child("imagePullPolicy"),
        errs,
    );
    if let Some(r) = &c.resources {
        validate_resources(r, &path.child("resources"), errs);
    }
    for (i, rp) in c.resize_policy.iter().flatten().enumerate() {
        let ip = path.child("resizePolicy").index(i);
        required_enum(
            &rp.resource_name,
            &["cpu", "memory"],
            &ip.child("resourceName"),
            errs,
        );
        required_enum(
            &rp.restart_policy,
            &["NotRequired", "RestartContainer"],
            &ip.child("restartPolicy"),
            errs,
        );
    }
    if let Some(sc) = &c.security_context {
        validate_container_security_context(sc, &path.child("securityContext"), errs);
    }
}

fn check_host_port_conflicts(cs: &[Container], path: &Path, errs: &mut Errs) {
    let mut seen = BTreeSet::new();
    for (ci, c) in cs.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let Some(h) = p.host_port.filter(|h| *h != 0) else {
                continue;
            };
            let key = format!("{}/{}/{h}", s(&p.protocol), s(&p.host_ip));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
}

fn validate_volume_source(v: &Volume, path: &Path, errs: &mut Errs) {
    let mut n = 0usize;
    let mut one = |field: &str, errs: &mut Errs| -> bool {
        if n > 0 {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "may not specify more than 1 volume type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(x) = &v.empty_dir
        && one("emptyDir", errs)
    {
        let p = path.child("emptyDir");
        let medium = s(&x.medium);
        if !(medium.is_empty()
            || medium == "Memory"
            || medium == "HugePages"
            || medium.starts_with("HugePages-"))
        {
            errs.push(FieldError::not_supported(
                &p.child("medium"),
                medium,
                &["", "Memory", "HugePages"],
            ));
        }
        if let Some(sl) = &x.size_limit
            && Quantity::parse(&sl.0).is_ok_and(|q| q.is_negative())
        {
            errs.push(FieldError::forbidden(
                &p.child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    if let Some(x) = &v.host_path
        && one("hostPath", errs)
    {
        let p = path.child("hostPath");
        if x.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else if x.path.split('/').any(|seg| seg == "..") {
            errs.push(FieldError::invalid(
                &p.child("path"),
                &x.path,
                "must not contain '..'",
            ));
        }
        optional_enum(
            x.type_.as_deref(),
            &[
                "",
                "BlockDevice",
                "CharDevice",
                "Directory",
                "DirectoryOrCreate",
                "File",
                "FileOrCreate",
                "Socket",
            ],
            &p.child("type"),
            errs,
        );
    }
    if let Some(x) = &v.secret
        && one("secret", errs)
    {
        let p = path.child("secret");
        let name = s(&x.secret_name);
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        validate_mode(x.default_mode, &p.child("defaultMode"), errs);
        validate_key_to_paths(x.items.as_deref(), &p.child("items"), errs);
    }
    if let Some(x) = &v.config_map
        && one("configMap", errs)
    {
        let p = path.child("configMap");
        if x.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        validate_mode(x.default_mode, &p.child("defaultMode"), errs);
        validate_key_to_paths(x.items.as_deref(), &p.child("items"), errs);
    }
    if let Some(x) = &v.persistent_volume_claim
        && one("persistentVolumeClaim", errs)
        && x.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("persistentVolumeClaim").child("claimName"),
            "",
        ));
    }
    if let Some(x) = &v.downward_api
        && one("downwardAPI", errs)
    {
        let p = path.child("downwardAPI");
        validate_mode(x.default_mode, &p.child("defaultMode"), errs);
        for (i, item) in x.items.iter().flatten().enumerate() {
            validate_downward_file(item, &p.child("items").index(i), errs);
        }
    }
    if let Some(x) = &v.projected
        && one("projected", errs)
    {
        let p = path.child("projected");
        validate_mode(x.default_mode, &p.child("defaultMode"), errs);
        for (i, src) in x.sources.iter().flatten().enumerate() {
            let sp = p.child("sources").index(i);
            let mut k = 0;
            if let Some(sec) = &src.secret {
                k += 1;
                if sec.name.is_empty() {
                    errs.push(FieldError::required(&sp.child("secret").child("name"), ""));
                }
                validate_key_to_paths(
                    sec.items.as_deref(),
                    &sp.child("secret").child("items"),
                    errs,
                );
            }
            if let Some(cm) = &src.config_map {
                k += 1;
                if cm.name.is_empty() {
                    errs.push(FieldError::required(
                        &sp.child("configMap").child("name"),
                        "",
                    ));
                }
                validate_key_to_paths(
                    cm.items.as_deref(),
                    &sp.child("configMap").child("items"),
                    errs,
                );
            }
            if let Some(d) = &src.downward_api {
                k += 1;
                for (j, item) in d.items.iter().flatten().enumerate() {
                    validate_downward_file(
                        item,
                        &sp.child("downwardAPI").child("items").index(j),
                        errs,
                    );
                }
            }
            if let Some(t) = &src.service_account_token {
                k += 1;
                let tp = sp.child("serviceAccountToken");
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
                if t.path.is_empty() {
                    errs.push(FieldError::required(&tp.child("path"), ""));
                }
            }
            if src.cluster_trust_bundle.is_some() {
                k += 1;
            }
            if k > 1 {
                errs.push(FieldError::forbidden(
                    &sp,
                    "may not specify more than 1 volume type per source",
                ));
            }
        }
    }
    if let Some(x) = &v.nfs
        && one("nfs", errs)
    {
        let p = path.child("nfs");
        if x.server.is_empty() {
            errs.push(FieldError::required(&p.child("server"), ""));
        }
        if x.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else if !x.path.starts_with('/') {
            errs.push(FieldError::invalid(
                &p.child("path"),
                &x.path,
                "must be an absolute path",
            ));
        }
    }
    if let Some(x) = &v.csi
        && one("csi", errs)
    {
        let p = path.child("csi").child("driver");
        if x.driver.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else {
            super::super::storage::validate_csi_driver_name(&x.driver, &p, errs);
        }
    }
    if let Some(x) = &v.ephemeral
        && one("ephemeral", errs)
    {
        let p = path.child("ephemeral").child("volumeClaimTemplate");
        match &x.volume_claim_template {
            None => errs.push(FieldError::required(&p, "")),
            Some(t) => {
                super::storage_kinds::validate_pvc_spec(&t.spec, &p.child("spec"), errs);
            }
        }
    }
    if let Some(x) = &v.image
        && one("image", errs)
    {
        let p = path.child("image");
        if s(&x.reference).is_empty() {
            errs.push(FieldError::required(&p.child("reference"), ""));
        }
        optional_enum(
            x.pull_policy.as_deref(),
            PULL_POLICIES,
            &p.child("pullPolicy"),
            errs,
        );
    }
    for (present, field) in [
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.azure_file.is_some(), "azureFile"),
        (v.cephfs.is_some(), "cephfs"),
        (v.cinder.is_some(), "cinder"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.flocker.is_some(), "flocker"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.rbd.is_some(), "rbd"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
    ] {
        if present {
            one(field, errs);
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

fn validate_mode(mode: Option<i32>, path: &Path, errs: &mut Errs) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        errs.push(FieldError::invalid(
            path,
            m,
            "must be a number between 0 and 0777 (octal), both inclusive",
        ));
    }
}

fn validate_key_to_paths(
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    path: &Path,
    errs: &mut Errs,
) {
    for (i, kp) in items.into_iter().flatten().enumerate() {
        let ip = path.index(i);
        if kp.key.is_empty() {
            errs.push(FieldError::required(&ip.child("key"), ""));
        }
        if kp.path.is_empty() {
            errs.push(FieldError::required(&ip.child("path"), ""));
        }
        validate_local_non_reserved_path(&kp.path, &ip.child("path"), errs);
        validate_mode(kp.mode, &ip.child("mode"), errs);
    }
}

fn validate_downward_file(
    f: &k8s_openapi::api::core::v1::DownwardAPIVolumeFile,
    path: &Path,
    errs: &mut Errs,
) {
    if f.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    validate_local_non_reserved_path(&f.path, &path.child("path"), errs);
    if let Some(fr) = &f.field_ref {
        validate_object_field_selector(
            s(&fr.api_version),
            &fr.field_path,
            DOWNWARD_VOLUME_PATHS,
            &path.child("fieldRef"),
            errs,
        );
        if f.resource_field_ref.is_some() {
            errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(r) = &f.resource_field_ref {
        validate_resource_field_ref(
            r.container_name.as_deref(),
            &r.resource,
            true,
            &path.child("resourceFieldRef"),
            errs,
        );
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    validate_mode(f.mode, &path.child("mode"), errs);
}

fn validate_volumes<'a>(volumes: &'a [Volume], path: &Path, errs: &mut Errs) -> VolumeMap<'a> {
    let mut map = VolumeMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let ip = path.index(i);
        let mut el = Vec::new();
        validate_volume_source(v, &ip, &mut el);
        let np = ip.child("name");
        if v.name.is_empty() {
            el.push(FieldError::required(&np, ""));
        } else {
            dns_label(&v.name, &np, &mut el);
        }
        if map.contains_key(v.name.as_str()) {
            el.push(FieldError::duplicate(&np, &v.name));
        }
        if el.is_empty() {
            map.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
    }
    map
}

fn validate_node_selector_requirement(r: &NodeSelectorRequirement, path: &Path, errs: &mut Errs) {
    let n = r.values.as_ref().map_or(0, |v| v.len());
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if n == 0 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if n > 0 {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if n != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    meta::validate_label_name(&r.key, &path.child("key"), errs);
}

fn validate_node_field_selector_requirement(
    r: &NodeSelectorRequirement,
    path: &Path,
    errs: &mut Errs,
) {
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if r.values.as_ref().map_or(0, |v| v.len()) != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            &path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    if r.key != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            &r.key,
            "not a valid field selector key",
        ));
    }
}

fn validate_node_selector_term(
    t: &k8s_openapi::api::core::v1::NodeSelectorTerm,
    path: &Path,
    errs: &mut Errs,
) {
    for (i, r) in t.match_expressions.iter().flatten().enumerate() {
        validate_node_selector_requirement(r, &path.child("matchExpressions").index(i), errs);
    }
    for (i, r) in t.match_fields.iter().flatten().enumerate() {
        validate_node_field_selector_requirement(r, &path.child("matchFields").index(i), errs);
    }
}

/// `ValidateNodeSelector`.
pub(crate) fn validate_node_selector(ns: &NodeSelector, path: &Path, errs: &mut Errs) {
    let tp = path.child("nodeSelectorTerms");
    if ns.node_selector_terms.is_empty() {
        errs.push(FieldError::required(
            &tp,
            "must have at least one node selector term",
        ));
    }
    for (i, t) in ns.node_selector_terms.iter().enumerate() {
        validate_node_selector_term(t, &tp.index(i), errs);
    }
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, path: &Path, errs: &mut Errs) {
    if let Some(sel) = &t.label_selector {
        meta::validate_label_selector(sel, &path.child("labelSelector"), errs);
    }
    if let Some(sel) = &t.namespace_selector {
        meta::validate_label_selector(sel, &path.child("namespaceSelector"), errs);
    }
    for n in t.namespaces.iter().flatten() {
        push_msgs(
            names::is_dns1123_label(n),
            &path.child("namespace"),
            n,
            errs,
        );
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    } else {
        meta::validate_label_name(&t.topology_key, &path.child("topologyKey"), errs);
    }
}

fn validate_weight(w: i32, path: &Path, errs: &mut Errs) {
    if !(1..=100).contains(&w) {
        errs.push(FieldError::invalid(path, w, "must be in the range 1-100"));
    }
}

fn validate_affinity(a: &Affinity, path: &Path, errs: &mut Errs) {
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(r) = &na.required_during_scheduling_ignored_during_execution {
            validate_node_selector(
                r,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let tp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            validate_weight(t.weight, &tp.child("weight"), errs);
            validate_node_selector_term(&t.preference, &tp.child("preference"), errs);
        }
    }
    for (aff, field) in [
        (
            a.pod_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAffinity",
        ),
        (
            a.pod_anti_affinity.as_ref().map(|x| {
                (
                    &x.required_during_scheduling_ignored_during_execution,
                    &x.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAntiAffinity",
        ),
    ] {
        let Some((req, pref)) = aff else { continue };
        let p = path.child(field);
        for (i, t) in req.iter().flatten().enumerate() {
            validate_pod_affinity_term(
                t,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution")
                    .index(i),
                errs,
            );
        }
        for (i, t) in pref.iter().flatten().enumerate() {
            let tp = p
                .child("preferredDuringSchedulingIgnoredDuringExecution")
                .index(i);
            validate_weight(t.weight, &tp.child("weight"), errs);
            validate_pod_affinity_term(&t.pod_affinity_term, &tp.child("podAffinityTerm"), errs);
        }
    }
}

fn toleration_text(t: &Toleration) -> String {
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{}}}",
        go_quote(s(&t.key)),
        go_quote(s(&t.operator)),
        go_quote(s(&t.value)),
        go_quote(s(&t.effect)),
        match t.toleration_seconds {
            Some(v) => format!("(*int64)({v})"),
            None => "(*int64)(nil)".to_string(),
        }
    )
}

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(ts: &[Toleration], path: &Path, errs: &mut Errs) {
    for (i, t) in ts.iter().enumerate() {
        let ip = path.index(i);
        let key = s(&t.key);
        let op = s(&t.operator);
        if !key.is_empty() {
            meta::validate_label_name(key, &ip.child("key"), errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &ip.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && s(&t.effect) != "NoExecute" {
            errs.push(FieldError::invalid(
                &ip.child("effect"),
                s(&t.effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(s(&t.value));
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &ip.child("operator"),
                        s(&t.value),
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !s(&t.value).is_empty() {
                    errs.push(FieldError::invalid(
                        &ip.child("operator"),
                        BadValue::Raw(toleration_text(t)),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &ip.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        let effect = s(&t.effect);
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &ip.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
}

fn validate_topology_spread(cs: &[TopologySpreadConstraint], path: &Path, errs: &mut Errs) {
    for (i, c) in cs.iter().enumerate() {
        let ip = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                &ip.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                &ip.child("topologyKey"),
                "can not be empty",
            ));
        } else {
            meta::validate_label_name(&c.topology_key, &ip.child("topologyKey"), errs);
        }
        let wu = c.when_unsatisfiable.as_str();
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&wu) {
            errs.push(FieldError::not_supported(
                &ip.child("whenUnsatisfiable"),
                wu,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if cs[i + 1..].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errs.push(FieldError::duplicate(
                &ip.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(md) = c.min_domains {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    &ip.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            } else if wu != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &ip.child("minDomains"),
                    md,
                    format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}"),
                ));
            }
        }
        for (v, f) in [
            (&c.node_affinity_policy, "nodeAffinityPolicy"),
            (&c.node_taints_policy, "nodeTaintsPolicy"),
        ] {
            optional_enum(v.as_deref(), &["Honor", "Ignore"], &ip.child(f), errs);
        }
        if let Some(sel) = &c.label_selector {
            meta::validate_label_selector(sel, &ip.child("labelSelector"), errs);
        }
        for (j, k) in c.match_label_keys.iter().flatten().enumerate() {
            meta::validate_label_name(k, &ip.child("matchLabelKeys").index(j), errs);
        }
    }
}

fn validate_dns_config(spec: &PodSpec, path: &Path, errs: &mut Errs) {
    let policy = s(&spec.dns_policy);
    let Some(c) = &spec.dns_config else {
        if policy == "None" {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
        }
        return;
    };
    if policy == "None" && c.nameservers.as_ref().is_none_or(|n| n.is_empty()) {
        errs.push(FieldError::required(
            &path.child("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    let ns = c.nameservers.as_deref().unwrap_or(&[]);
    if ns.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            crate::error::go_string_slice(Some(ns)),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        if names::parse_ip(n).is_none() {
            errs.push(FieldError::invalid(
                &path.child("nameservers").index(i),
                n,
                names::IP_ERROR,
            ));
        }
    }
    let searches = c.searches.as_deref().unwrap_or(&[]);
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            crate::error::go_string_slice(Some(searches)),
            "must not have more than 32 search paths",
        ));
    }
    for (i, sp) in searches.iter().enumerate() {
        let trimmed = sp.strip_suffix('.').unwrap_or(sp);
        if trimmed != "." && !trimmed.is_empty() {
            push_msgs(
                names::is_dns1123_subdomain(trimmed),
                &path.child("searches").index(i),
                sp,
                errs,
            );
        }
    }
    for (i, o) in c.options.iter().flatten().enumerate() {
        if s(&o.name).is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "Option.Name must not be empty",
            ));
        }
    }
}

fn validate_containers(spec: &PodSpec, volumes: &VolumeMap<'_>, path: &Path, errs: &mut Errs) {
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    let cp = path.child("containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&cp, ""));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let ip = cp.index(i);
        validate_container_common(c, volumes, &ip, errs);
        if !seen.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&ip.child("name"), &c.name));
        }
        if let Some(l) = &c.lifecycle {
            validate_lifecycle(l, grace, &ip.child("lifecycle"), errs);
        }
        validate_probes(c, grace, &ip, errs);
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &ip.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    check_host_port_conflicts(&spec.containers, &cp, errs);

    let ip_path = path.child("initContainers");
    let mut all: BTreeSet<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let ip = ip_path.index(i);
        validate_container_common(c, volumes, &ip, errs);
        let mut restart_always = false;
        if let Some(rp) = c.restart_policy.as_deref() {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    &ip.child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        if all.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&ip.child("name"), &c.name));
        } else if !c.name.is_empty() {
            all.insert(&c.name);
        }
        check_host_port_conflicts(std::slice::from_ref(c), &ip_path, errs);
        if restart_always {
            if let Some(l) = &c.lifecycle {
                validate_lifecycle(l, grace, &ip.child("lifecycle"), errs);
            }
            validate_probes(c, grace, &ip, errs);
        } else {
            let msg = "may not be set for init containers without restartPolicy=Always";
            if c.lifecycle.is_some() {
                errs.push(FieldError::forbidden(&ip.child("lifecycle"), msg));
            }
            if c.liveness_probe.is_some() {
                errs.push(FieldError::forbidden(&ip.child("livenessProbe"), msg));
            }
            if c.readiness_probe.is_some() {
                errs.push(FieldError::forbidden(&ip.child("readinessProbe"), msg));
            }
            if c.startup_probe.is_some() {
                errs.push(FieldError::forbidden(&ip.child("startupProbe"), msg));
            }
        }
        if c.resize_policy.as_ref().is_some_and(|r| !r.is_empty()) {
            errs.push(FieldError::invalid(
                &ip.child("resizePolicy"),
                BadValue::Raw("[]core.ContainerResizePolicy{...}".into()),
                "must not be set for init containers",
            ));
        }
    }
    if spec.host_network == Some(true) {
        for (list, field) in [
            (&spec.containers, "containers"),
            (
                spec.init_containers.as_ref().unwrap_or(&Vec::new()),
                "initContainers",
            ),
        ] {
            for (ci, c) in list.iter().enumerate() {
                for (pi, p) in c.ports.iter().flatten().enumerate() {
                    if p.host_port.unwrap_or(0) != p.container_port {
                        errs.push(FieldError::invalid(
                            &path
                                .child(field)
                                .index(ci)
                                .child("ports")
                                .index(pi)
                                .child("containerPort"),
                            p.container_port,
                            "must match `hostPort` when `hostNetwork` is true",
                        ));
                    }
                }
            }
        }
    }
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &Path, errs: &mut Errs) {
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &path.child("volumes"),
        errs,
    );
    validate_containers(spec, &volumes, path, errs);
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        let ip = path.child("ephemeralContainers").index(i);
        if c.name.is_empty() {
            errs.push(FieldError::required(&ip.child("name"), ""));
        } else {
            dns_label(&c.name, &ip.child("name"), errs);
        }
        if s(&c.image).is_empty() {
            errs.push(FieldError::required(&ip.child("image"), ""));
        }
    }
    required_enum(
        s(&spec.restart_policy),
        RESTART_POLICIES,
        &path.child("restartPolicy"),
        errs,
    );
    required_enum(
        s(&spec.dns_policy),
        DNS_POLICIES,
        &path.child("dnsPolicy"),
        errs,
    );
    meta::validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
        errs,
    );
    if let Some(sc) = &spec.security_context {
        let p = path.child("securityContext");
        validate_id(sc.fs_group, &p.child("fsGroup"), errs);
        validate_id(sc.run_as_user, &p.child("runAsUser"), errs);
        validate_id(sc.run_as_group, &p.child("runAsGroup"), errs);
        for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
            validate_id(Some(*g), &p.child("supplementalGroups").index(i), errs);
        }
        if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
            errs.push(FieldError::invalid(
                &p.child("shareProcessNamespace"),
                true,
                "ShareProcessNamespace and HostPID cannot both be enabled",
            ));
        }
        optional_enum(
            sc.fs_group_change_policy.as_deref(),
            &["OnRootMismatch", "Always"],
            &p.child("fsGroupChangePolicy"),
            errs,
        );
        optional_enum(
            sc.supplemental_groups_policy.as_deref(),
            &["Merge", "Strict"],
            &p.child("supplementalGroupsPolicy"),
            errs,
        );
        validate_seccomp(
            sc.seccomp_profile.as_ref(),
            &p.child("seccompProfile"),
            errs,
        );
        for (i, sy) in sc.sysctls.iter().flatten().enumerate() {
            let sp = p.child("sysctls").index(i);
            if sy.name.is_empty() {
                errs.push(FieldError::required(&sp.child("name"), ""));
            }
        }
    }
    if let Some(a) = &spec.affinity {
        validate_affinity(a, &path.child("affinity"), errs);
    }
    validate_dns_config(spec, &path.child("dnsConfig"), errs);
    for (i, g) in spec.readiness_gates.iter().flatten().enumerate() {
        meta::validate_label_name(
            &g.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
            errs,
        );
    }
    let mut gates = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let gp = path.child("schedulingGates").index(i).child("name");
        meta::validate_label_name(&g.name, &gp, errs);
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(&gp, &g.name));
        }
    }
    validate_topology_spread(
        spec.topology_spread_constraints.as_deref().unwrap_or(&[]),
        &path.child("topologySpreadConstraints"),
        errs,
    );
    let san = s(&spec.service_account_name);
    if !san.is_empty() {
        push_msgs(
            names::name_is_dns_subdomain(san, false),
            &path.child("serviceAccountName"),
            san,
            errs,
        );
    }
    let nn = s(&spec.node_name);
    if !nn.is_empty() {
        push_msgs(
            names::name_is_dns_subdomain(nn, false),
            &path.child("nodeName"),
            nn,
            errs,
        );
    }
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            ads,
            names::inclusive_range_error(1, i32::MAX.into()),
        ));
    }
    let hn = s(&spec.hostname);
    if !hn.is_empty() {
        dns_label(hn, &path.child("hostname"), errs);
    }
    let sd = s(&spec.subdomain);
    if !sd.is_empty() {
        dns_label(sd, &path.child("subdomain"), errs);
    }
    if let Some(ts) = &spec.tolerations {
        validate_tolerations(ts, &path.child("tolerations"), errs);
    }
    for (i, ha) in spec.host_aliases.iter().flatten().enumerate() {
        let hp = path.child("hostAliases").index(i);
        if names::parse_ip(&ha.ip).is_none() {
            errs.push(FieldError::invalid(
                &hp.child("ip"),
                &ha.ip,
                names::IP_ERROR,
            ));
        }
        for (j, h) in ha.hostnames.iter().flatten().enumerate() {
            dns_label_or_subdomain(h, &hp.child("hostnames").index(j), errs);
        }
    }
    let pcn = s(&spec.priority_class_name);
    if !pcn.is_empty() {
        push_msgs(
            names::name_is_dns_subdomain(pcn, false),
            &path.child("priorityClassName"),
            pcn,
            errs,
        );
    }
    if let Some(rc) = &spec.runtime_class_name {
        push_msgs(
            names::name_is_dns_subdomain(rc, false),
            &path.child("runtimeClassName"),
            rc,
            errs,
        );
    }
    optional_enum(
        spec.preemption_policy.as_deref(),
        &["PreemptLowerPriority", "Never"],
        &path.child("preemptionPolicy"),
        errs,
    );
    if let Some(o) = &spec.overhead {
        for (k, q) in o {
            let p = path.child("overhead").key(k);
            validate_container_resource_name(k, &p, errs);
            validate_quantity_value(k, q, &p, errs);
        }
    }
    if let Some(os) = &spec.os
        && !["linux", "windows"].contains(&os.name.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("os").child("name"),
            &os.name,
            &["linux", "windows"],
        ));
    }
}

fn dns_label_or_subdomain(h: &str, path: &Path, errs: &mut Errs) {
    super::super::dns_subdomain(h, path, errs);
}

/// `ValidatePodTemplateSpec`: the template's metadata (labels and annotations) and spec.
pub(crate) fn validate_template(t: &PodTemplateSpec, path: &Path, errs: &mut Errs) {
    let md = t.metadata.clone().unwrap_or_default();
    let mp = path.child("metadata");
    meta::validate_labels(md.labels.as_ref(), &mp.child("labels"), errs);
    meta::validate_annotations(md.annotations.as_ref(), &mp.child("annotations"), errs);
    match &t.spec {
        Some(spec) => {
            validate_pod_spec(spec, &path.child("spec"), errs);
            if spec
                .ephemeral_containers
                .as_ref()
                .is_some_and(|e| !e.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &path.child("spec").child("ephemeralContainers"),
                    "ephemeral containers not allowed in pod template",
                ));
            }
        }
        None => validate_pod_spec(&PodSpec::default(), &path.child("spec"), errs),
    }
}

/// Pod create checks (beyond ObjectMeta).
pub(crate) fn validate_pod(pod: &Pod, errs: &mut Errs) {
    let spec = pod.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    validate_pod_spec(&spec, &sp, errs);
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &sp.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !s(&spec.node_name).is_empty()
        && spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        errs.push(FieldError::forbidden(
            &sp.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    validate_pod_status_ips(pod, errs);
}

fn validate_pod_status_ips(pod: &Pod, errs: &mut Errs) {
    let Some(st) = &pod.status else { return };
    let p = Path::new("status");
    for (ips, field) in [
        (list_ips_pod(st.pod_ips.as_deref()), "podIPs"),
        (list_ips_host(st.host_ips.as_deref()), "hostIPs"),
    ] {
        let mut seen = BTreeSet::new();
        for (i, ip) in ips.iter().enumerate() {
            let ipp = p.child(field).index(i).child("ip");
            if names::parse_ip(ip).is_none() {
                errs.push(FieldError::invalid(&ipp, *ip, names::IP_ERROR));
            } else if !seen.insert(*ip) {
                errs.push(FieldError::duplicate(&p.child(field).index(i), *ip));
            }
        }
        if ips.len() > 2 {
            errs.push(FieldError::invalid(
                &p.child(field),
                BadValue::Raw(format!("{ips:?}")),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
}

fn list_ips_pod(v: Option<&[k8s_openapi::api::core::v1::PodIP]>) -> Vec<&str> {
    v.unwrap_or(&[]).iter().map(|p| p.ip.as_str()).collect()
}

fn list_ips_host(v: Option<&[k8s_openapi::api::core::v1::HostIP]>) -> Vec<&str> {
    v.unwrap_or(&[]).iter().map(|p| p.ip.as_str()).collect()
}

/// A short description of which top-level pod spec fields differ, in place of upstream's
/// `cmp.Diff` output.
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (Ok(serde_json::Value::Object(o)), Ok(serde_json::Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return String::new();
    };
    let mut keys: BTreeSet<&String> = o.keys().collect();
    keys.extend(n.keys());
    let mut out = String::from("  core.PodSpec{\n");
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

/// `ValidatePodUpdate` (beyond ObjectMeta).
pub(crate) fn validate_pod_update(new: &Pod, old: &Pod, errs: &mut Errs) {
    validate_pod(new, errs);
    let sp = Path::new("spec");
    let ns = new.spec.clone().unwrap_or_default();
    let os = old.spec.clone().unwrap_or_default();
    for (n, o, field) in [
        (&ns.containers, &os.containers, "containers"),
        (
            ns.init_containers.as_ref().unwrap_or(&Vec::new()),
            os.init_containers.as_ref().unwrap_or(&Vec::new()),
            "initContainers",
        ),
    ] {
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                &sp.child(field),
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in n.iter().enumerate() {
            if s(&c.image).is_empty() {
                errs.push(FieldError::required(
                    &sp.child(field).index(i).child("image"),
                    "",
                ));
            }
        }
    }
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), o) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(
                    &sp.child("activeDeadlineSeconds"),
                    n,
                    names::inclusive_range_error(0, i32::MAX.into()),
                ));
                return;
            }
            if let Some(o) = o
                && o < n
            {
                errs.push(FieldError::invalid(
                    &sp.child("activeDeadlineSeconds"),
                    n,
                    "must be less than or equal to previous value",
                ));
                return;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &sp.child("activeDeadlineSeconds"),
            BadValue::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    // Only additions to tolerations (tolerationSeconds may change).
    let new_t = ns.tolerations.clone().unwrap_or_default();
    for o in os.tolerations.iter().flatten() {
        let found = new_t.iter().any(|n| {
            let mut oc = o.clone();
            oc.toleration_seconds = n.toleration_seconds;
            &oc == n
        });
        if !found {
            errs.push(FieldError::forbidden(
                &sp.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Only removals of scheduling gates.
    let old_gates: BTreeSet<&str> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for g in ns.scheduling_gates.iter().flatten() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                &sp.child("schedulingGates"),
                "only deletion is allowed, but found new scheduling gate 'foo'"
                    .replace("foo", &g.name),
            ));
        }
    }
    // Everything else must be unchanged.
    let mut munged = ns.clone();
    for (i, c) in munged.containers.iter_mut().enumerate() {
        c.image = os.containers.get(i).and_then(|o| o.image.clone());
    }
    if let (Some(nic), Some(oic)) = (&mut munged.init_containers, &os.init_containers) {
        for (i, c) in nic.iter_mut().enumerate() {
            c.image = oic.get(i).and_then(|o| o.image.clone());
        }
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.scheduling_gates = os.scheduling_gates.clone();
    munged.tolerations = os.tolerations.clone();
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    }
    if !os.scheduling_gates.as_ref().is_none_or(|g| g.is_empty()) {
        // Gated pods may gain node selector entries and change affinity.
        munged.node_selector = os.node_selector.clone();
        munged.affinity = os.affinity.clone();
    }
    if munged != os {
        errs.push(FieldError::forbidden(
            &sp,
            format!(
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n{}",
                spec_diff(&os, &munged)
            ),
        ));
    }
}

const POD_CONDITIONS: &[&str] = &[
    "ContainersReady",
    "Initialized",
    "PodReady",
    "PodScheduled",
    "DisruptionTarget",
    "PodReadyToStartContainers",
    "Ready",
];

/// `ValidatePodStatusUpdate` (beyond ObjectMeta).
pub(crate) fn validate_pod_status_update(new: &Pod, old: &Pod, errs: &mut Errs) {
    let st = new.status.clone().unwrap_or_default();
    for (i, c) in st.conditions.iter().flatten().enumerate() {
        if !POD_CONDITIONS.contains(&c.type_.as_str()) {
            meta::validate_label_name(
                &c.type_,
                &Path::new("status")
                    .child("conditions")
                    .index(i)
                    .child("type"),
                errs,
            );
        }
    }
    let sp = Path::new("status");
    let nn = new
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let on = old
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    if nn != on {
        errs.push(FieldError::forbidden(
            &sp.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nom = s(&st.nominated_node_name);
    let old_nom = old
        .status
        .as_ref()
        .map(|x| s(&x.nominated_node_name))
        .unwrap_or("");
    if nom != old_nom && !nom.is_empty() {
        push_msgs(
            names::name_is_dns_subdomain(nom, false),
            &sp.child("nominatedNodeName"),
            nom,
            errs,
        );
    }
    validate_pod_status_ips(new, errs);
}
