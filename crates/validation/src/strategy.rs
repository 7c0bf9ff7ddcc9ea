//! The create/update preparation upstream's per-resource strategies do around validation
//! (`PrepareForCreate`, `PrepareForUpdate`, and their status-subresource variants): status
//! reset on create, status kept on main-resource updates and spec kept on status
//! updates, `metadata.generation` set to 1 and bumped when the spec changes, the
//! Namespace finalizer, the Pod QoS class, the Job selector generated from the UID, and
//! Service cluster IPs and node ports carried over from the stored object.

use serde_json::{Map, Value, json};

use crate::Gvk;
use crate::quantity::Quantity;

/// How a kind's strategy treats status and generation.
struct Rules {
    /// The kind has a `status` subresource (status ignored on main updates and reset on
    /// create, spec ignored on status updates).
    status: bool,
    /// `metadata.generation` starts at 1 and grows when the spec changes.
    generation: bool,
}

fn rules(gvk: Gvk<'_>) -> Rules {
    let (status, generation) = match (gvk.group, gvk.kind) {
        ("", "Pod") => (true, false),
        ("", "Service") => (true, false),
        ("", "Namespace") => (true, false),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => (true, false),
        ("", "ResourceQuota") => (true, false),
        ("", "ReplicationController") => (true, true),
        ("", "Node") => (false, false),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => (true, true),
        ("batch", "Job" | "CronJob") => (true, true),
        ("autoscaling", "HorizontalPodAutoscaler") => (true, false),
        ("policy", "PodDisruptionBudget") => (true, true),
        ("networking.k8s.io", "Ingress") => (true, true),
        ("networking.k8s.io", "NetworkPolicy") => (false, true),
        ("certificates.k8s.io", "CertificateSigningRequest") => (true, false),
        ("storage.k8s.io", "VolumeAttachment") => (true, false),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => (true, true),
        ("admissionregistration.k8s.io", _) => (false, true),
        _ => (false, false),
    };
    Rules { status, generation }
}

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn meta(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = v.as_object_mut()?;
    let m = o.entry("metadata").or_insert_with(|| json!({}));
    m.as_object_mut()
}

/// `PrepareForCreate`: call after defaulting and after the caller has set
/// `metadata.uid` (Jobs derive their selector from it), before [`crate::validate_create`].
pub fn prepare_for_create(gvk: Gvk<'_>, obj_v: &mut Value) {
    let r = rules(gvk);
    if r.generation
        && let Some(m) = meta(obj_v)
    {
        m.insert("generation".into(), json!(1));
    }
    let initial_status = match (gvk.group, gvk.kind) {
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": pod_qos(obj_v)})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => {
            Some(json!({"phase": "Pending"}))
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let stored: Vec<Value> = obj_v
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .take(1)
                .collect();
            Some(json!({"storedVersions": stored}))
        }
        _ if r.status => Some(json!({})),
        _ => None,
    };
    if let (Some(st), Some(o)) = (initial_status, obj(obj_v)) {
        o.insert("status".into(), st);
    }
    match (gvk.group, gvk.kind) {
        ("", "Namespace") => {
            if let Some(o) = obj(obj_v) {
                let spec = o.entry("spec").or_insert_with(|| json!({}));
                if let Some(spec) = spec.as_object_mut() {
                    let f = spec.entry("finalizers").or_insert_with(|| json!([]));
                    if let Some(list) = f.as_array_mut()
                        && !list.iter().any(|x| x == "kubernetes")
                    {
                        list.push(json!("kubernetes"));
                    }
                }
            }
        }
        ("batch", "Job") => {
            if let Ok(mut job) =
                serde_json::from_value::<k8s_openapi::api::batch::v1::Job>(obj_v.clone())
            {
                crate::groups::batch::generate_job_selector(&mut job);
                if let Ok(v) = serde_json::to_value(&job) {
                    *obj_v = v;
                }
            }
        }
        _ => {}
    }
}

/// `PrepareForUpdate` of the main resource: the stored object's system metadata, status
/// (for kinds with a status subresource), generation (bumped if the spec changed), and
/// for Services the allocated cluster IPs and node ports when the update leaves them out.
pub fn prepare_for_update(gvk: Gvk<'_>, new: &mut Value, old: &Value) {
    copy_system_meta(new, old);
    let r = rules(gvk);
    if r.status
        && let Some(o) = obj(new)
    {
        match old.get("status") {
            Some(st) => o.insert("status".into(), st.clone()),
            None => o.remove("status"),
        };
    }
    if gvk.group.is_empty() && gvk.kind == "Namespace" {
        let f = old.pointer("/spec/finalizers").cloned();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            match f {
                Some(f) => spec.insert("finalizers".into(), f),
                None => spec.remove("finalizers"),
            };
        }
    }
    if gvk.group.is_empty() && gvk.kind == "Service" {
        patch_service_allocations(new, old);
    }
    if r.generation {
        let old_gen = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut changed = new.get("spec") != old.get("spec");
        if gvk.group == "apps" && gvk.kind == "Deployment" {
            changed |= new.pointer("/metadata/annotations") != old.pointer("/metadata/annotations");
        }
        if gvk.group == "admissionregistration.k8s.io" {
            changed = new.get("webhooks") != old.get("webhooks");
        }
        let g = if changed { old_gen + 1 } else { old_gen };
        if let Some(m) = meta(new) {
            m.insert("generation".into(), json!(g));
        }
    }
}

/// `PrepareForUpdate` of the `status` subresource: everything but status (and the
/// metadata a status writer may touch) comes from the stored object.
pub fn prepare_for_status_update(gvk: Gvk<'_>, new: &mut Value, old: &Value) {
    copy_system_meta(new, old);
    let keep_status = new.get("status").cloned();
    let new_meta = new.get("metadata").cloned();
    *new = old.clone();
    if let Some(o) = obj(new) {
        match keep_status {
            Some(st) => o.insert("status".into(), st),
            None => o.remove("status"),
        };
        // Status writers may still change labels, annotations, finalizers and owners
        // (except pods' owner references, which upstream protects from old kubelets).
        if let (Some(nm), Some(Value::Object(m))) = (new_meta, o.get_mut("metadata")) {
            for k in [
                "labels",
                "annotations",
                "finalizers",
                "ownerReferences",
                "resourceVersion",
                "managedFields",
            ] {
                if gvk.kind == "Pod" && gvk.group.is_empty() && k == "ownerReferences" {
                    continue;
                }
                match nm.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
    }
}

fn copy_system_meta(new: &mut Value, old: &Value) {
    let Some(om) = old.get("metadata").cloned() else {
        return;
    };
    let Some(m) = meta(new) else { return };
    if m.get("uid").is_none_or(|v| v.is_null() || v == "")
        && let Some(u) = om.get("uid")
    {
        m.insert("uid".into(), u.clone());
    }
    for k in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        if let Some(v) = om.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    match om.get("generation") {
        Some(g) => m.insert("generation".into(), g.clone()),
        None => m.remove("generation"),
    };
}

fn patch_service_allocations(new: &mut Value, old: &Value) {
    let (Some(ns), Some(os)) = (new.get("spec").cloned(), old.get("spec")) else {
        return;
    };
    let ty = |s: &Value| {
        s.get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let (nt, ot) = (ty(&ns), ty(os));
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if nt != "ExternalName" && ot != "ExternalName" {
        let empty = |v: Option<&Value>| {
            v.is_none_or(|x| x.is_null() || x == "" || x.as_array().is_some_and(|a| a.is_empty()))
        };
        if empty(ns.get("clusterIP")) && empty(ns.get("clusterIPs")) {
            for k in ["clusterIP", "clusterIPs"] {
                if let Some(v) = os.get(k) {
                    spec.insert(k.into(), v.clone());
                }
            }
        }
        if empty(ns.get("ipFamilies"))
            && let Some(v) = os.get("ipFamilies")
        {
            spec.insert("ipFamilies".into(), v.clone());
        }
        if ns.get("ipFamilyPolicy").is_none()
            && let Some(v) = os.get("ipFamilyPolicy")
        {
            spec.insert("ipFamilyPolicy".into(), v.clone());
        }
    }
    let node_port_types = ["NodePort", "LoadBalancer"];
    if node_port_types.contains(&nt.as_str()) && node_port_types.contains(&ot.as_str()) {
        let old_ports = os
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    continue;
                }
                let key = |x: &Value| (x.get("port").cloned(), x.get("protocol").cloned());
                if let Some(np) = old_ports
                    .iter()
                    .find(|op| key(op) == key(p))
                    .and_then(|op| op.get("nodePort"))
                    && let Some(po) = p.as_object_mut()
                {
                    po.insert("nodePort".into(), np.clone());
                }
            }
        }
        if ns
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
            && let Some(h) = os.get("healthCheckNodePort")
        {
            spec.insert("healthCheckNodePort".into(), h.clone());
        }
    }
}

/// The pod's QoS class from its containers' cpu and memory requests and limits.
pub fn pod_qos(pod: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let lists = ["/spec/containers", "/spec/initContainers"];
    for l in lists {
        for c in pod
            .pointer(l)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let res = c.get("resources");
            let get = |kind: &str, name: &str| {
                res.and_then(|r| r.get(kind))
                    .and_then(|m| m.get(name))
                    .map(|q| match q {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .and_then(|s| Quantity::parse(&s).ok())
            };
            for name in ["cpu", "memory"] {
                let (req, lim) = (get("requests", name), get("limits", name));
                if req.is_some_and(|q| !q.is_zero()) || lim.is_some_and(|q| !q.is_zero()) {
                    any = true;
                }
                match (req, lim) {
                    (_, None) => guaranteed = false,
                    (Some(r), Some(l)) if r != l => guaranteed = false,
                    _ => {}
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        let be = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pod_qos(&be), "BestEffort");
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}}]}});
        assert_eq!(pod_qos(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}});
        assert_eq!(pod_qos(&b), "Burstable");
    }
}
