//! Per-resource lifecycle rules, as upstream's registry strategies have them: which
//! resources track `metadata.generation`, isolate `status` from the main resource, may be
//! created by an update, return the deleted object, delete gracefully; and what is reset
//! or filled in on create and update (pod phase and QoS class, namespace finalizer and
//! phase, cleared statuses, …). Defaulting and validation proper live in their own crate.

use rkube_api::meta;
use rkube_api::resources::Resource;
use serde_json::{Map, Value, json};

/// How the generic registry treats one resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct Strategy {
    /// `metadata.generation` starts at 1 and grows when the spec changes.
    pub generation: bool,
    /// Writes to the resource keep `status`; writes to `/status` keep everything else.
    pub status: bool,
    /// A PUT of a missing object creates it.
    pub create_on_update: bool,
    /// DELETE answers with the deleted object rather than a `Status`.
    pub return_deleted: bool,
    /// DELETE honours a grace period (pods).
    pub graceful: bool,
    /// Objects expire on their own (events).
    pub ttl: bool,
}

/// The strategy of a resource.
pub fn of(r: &Resource) -> Strategy {
    let status = r.subresource("status").is_some();
    let generation = matches!(
        r.plural,
        "deployments"
            | "replicasets"
            | "statefulsets"
            | "daemonsets"
            | "replicationcontrollers"
            | "jobs"
            | "cronjobs"
            | "horizontalpodautoscalers"
            | "poddisruptionbudgets"
            | "ingresses"
            | "ingressclasses"
            | "networkpolicies"
            | "validatingwebhookconfigurations"
            | "mutatingwebhookconfigurations"
            | "customresourcedefinitions"
    );
    Strategy {
        generation,
        status,
        create_on_update: matches!(r.storage, "endpoints" | "events" | "leases"),
        return_deleted: r.plural == "pods",
        graceful: r.plural == "pods",
        ttl: r.storage == "events",
    }
}

fn object(obj: &mut Value, field: &str) -> Map<String, Value> {
    obj.get(field)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Resets and fills in what upstream's `PrepareForCreate` does.
pub fn prepare_for_create(r: &Resource, obj: &mut Value) {
    let s = of(r);
    {
        let m = meta::meta_mut(obj);
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        if s.generation {
            m.insert("generation".into(), 1.into());
        } else {
            m.remove("generation");
        }
    }
    match (r.group, r.plural) {
        ("", "pods") => {
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "namespaces") => {
            label_namespace(obj);
            let mut spec = object(obj, "spec");
            let mut finalizers: Vec<Value> = spec
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == "kubernetes") {
                finalizers.push("kubernetes".into());
            }
            spec.insert("finalizers".into(), finalizers.into());
            obj["spec"] = Value::Object(spec);
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "services") => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "persistentvolumes") | ("", "persistentvolumeclaims") => {
            obj["status"] = json!({"phase": "Pending"});
        }
        // Nodes register with their status.
        ("", "nodes") => {}
        _ if s.status => {
            if let Some(o) = obj.as_object_mut() {
                o.insert("status".into(), json!({}));
            }
        }
        _ => {}
    }
}

/// Applies the status/spec isolation of an update (`status_write`: the request went to
/// `/status`), and bumps the generation when the spec changed.
pub fn prepare_for_update(r: &Resource, status_write: bool, new: &mut Value, old: &Value) {
    let s = of(r);
    if s.status {
        if status_write {
            // Only status (and the bookkeeping metadata) may change.
            let status = new.get("status").cloned();
            let rv = meta::resource_version(new).map(String::from);
            let managed = meta::meta_mut(new).get("managedFields").cloned();
            *new = old.clone();
            match status {
                Some(st) => new["status"] = st,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            let m = meta::meta_mut(new);
            match rv {
                Some(rv) => m.insert("resourceVersion".into(), rv.into()),
                None => m.remove("resourceVersion"),
            };
            if let Some(mf) = managed {
                m.insert("managedFields".into(), mf);
            }
        } else {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
    }
    // System-owned metadata never changes through an update.
    let old_meta = old.get("metadata").cloned().unwrap_or(Value::Null);
    {
        let m = meta::meta_mut(new);
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old_meta.get(field) {
                Some(v) if !v.is_null() => {
                    m.insert(field.into(), v.clone());
                }
                _ => {
                    m.remove(field);
                }
            }
        }
        let old_gen = old_meta.get("generation").and_then(Value::as_i64);
        match old_gen {
            Some(g) => m.insert("generation".into(), g.into()),
            None => m.remove("generation"),
        };
    }
    if r.plural == "namespaces" {
        label_namespace(new);
    }
    if s.generation && !status_write && spec_changed(new, old) {
        let g = meta::generation(old).max(0) + 1;
        meta::set(new, "generation", g);
    }
}

/// Every namespace carries `kubernetes.io/metadata.name: <name>` (set by the server).
fn label_namespace(obj: &mut Value) {
    let Some(name) = meta::name(obj).map(String::from) else {
        return;
    };
    let m = meta::meta_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = name.into();
}

/// Whether anything but metadata and status differs.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(new) != strip(old)
}

/// Upstream's pod QoS class: Guaranteed when every container has equal CPU and memory
/// requests and limits, BestEffort when none has any, Burstable otherwise.
pub fn qos_class(pod: &Value) -> &'static str {
    let spec = &pod["spec"];
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = c["resources"]["requests"].as_object();
        let limits = c["resources"]["limits"].as_object();
        let relevant = |m: Option<&Map<String, Value>>| -> Vec<(String, String)> {
            m.map(|m| {
                m.iter()
                    .filter(|(k, _)| *k == "cpu" || *k == "memory")
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
        };
        let (req, lim) = (relevant(requests), relevant(limits));
        if !req.is_empty() || !lim.is_empty() {
            any = true;
        }
        let lim_has = |k: &str| lim.iter().any(|(n, _)| n == k);
        if !(lim_has("cpu") && lim_has("memory")) {
            guaranteed = false;
        }
        for (k, v) in &req {
            match lim.iter().find(|(n, _)| n == k) {
                Some((_, l)) if quantity_eq(l, v) => {}
                _ => guaranteed = false,
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

/// Compares two quantities (`500m` and `0.5`, `1Gi` and `1024Mi`).
pub fn quantity_eq(a: &str, b: &str) -> bool {
    match (parse_quantity(a), parse_quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// A quantity as a number (enough precision to compare and sum requests).
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::resources::find;

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "c", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"},
                                  "requests": {"cpu": "1000m", "memory": "1024Mi"}}))),
            "Guaranteed"
        );
    }

    #[test]
    fn status_isolation_and_generation() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let old = json!({"metadata": {"name": "d", "generation": 3, "uid": "u"},
                         "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "d", "uid": "other"},
                             "spec": {"replicas": 2}, "status": {"replicas": 9}});
        prepare_for_update(deploy, false, &mut new, &old);
        assert_eq!(new["status"]["replicas"], 1, "status kept");
        assert_eq!(new["metadata"]["generation"], 4, "spec changed");
        assert_eq!(new["metadata"]["uid"], "u");
        let mut st = json!({"metadata": {"name": "d", "labels": {"x": "y"}, "resourceVersion": "7"},
                            "spec": {"replicas": 5}, "status": {"replicas": 2}});
        prepare_for_update(deploy, true, &mut st, &old);
        assert_eq!(st["spec"]["replicas"], 1, "spec kept on status writes");
        assert_eq!(st["status"]["replicas"], 2);
        assert!(st["metadata"].get("labels").is_none());
        assert_eq!(st["metadata"]["resourceVersion"], "7");
        assert_eq!(st["metadata"]["generation"], 3);
    }

    #[test]
    fn create_resets() {
        let ns = find("", "v1", "namespaces").unwrap();
        let mut obj = json!({"metadata": {"name": "x", "generation": 9}});
        prepare_for_create(ns, &mut obj);
        assert_eq!(obj["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(obj["status"]["phase"], "Active");
        assert!(obj["metadata"].get("generation").is_none());
        assert!(quantity_eq("0.5", "500m"));
        assert_eq!(parse_quantity("2Gi"), Some(2.0 * 1024f64.powi(3)));
    }
}
