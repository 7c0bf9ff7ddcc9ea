//! Resource accounting shared by ResourceQuota (its controller and its admission) and
//! LimitRange: what one object counts against a quota, pod requests and limits as the
//! scheduler sums them, and which quotas (scopes) cover a pod.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::quantity::Quantity;

/// Resource name → amount.
pub type ResourceList = BTreeMap<String, Quantity>;

fn add(list: &mut ResourceList, name: &str, q: Quantity) {
    let sum = match list.get(name) {
        Some(old) => old.add(&q),
        None => q,
    };
    list.insert(name.to_string(), sum);
}

/// Adds every amount of `b` into `a`.
pub fn add_all(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        add(a, k, *v);
    }
}

/// Parses a JSON resource map (`{"cpu": "500m"}`), skipping values that do not parse.
pub fn parse_list(v: &Value) -> ResourceList {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let q = match v {
                Value::String(s) => Quantity::parse(s).ok()?,
                Value::Number(n) => Quantity::parse(&n.to_string()).ok()?,
                _ => return None,
            };
            Some((k.clone(), q))
        })
        .collect()
}

/// The JSON form of a resource list (canonical quantities).
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.canonical())))
            .collect(),
    )
}

fn max_into(acc: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        match acc.get(k) {
            Some(old) if old >= v => {}
            _ => {
                acc.insert(k.clone(), *v);
            }
        }
    }
}

/// A pod's effective requests (`field` = "requests") or limits: the containers' sum or the
/// largest init container's, whichever is larger, plus the pod overhead.
pub fn pod_resources(pod: &Value, field: &str) -> ResourceList {
    let spec = &pod["spec"];
    let mut sum = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        add_all(&mut sum, &parse_list(&c["resources"][field]));
    }
    let mut init_max = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let list = parse_list(&c["resources"][field]);
        if c["restartPolicy"] == "Always" {
            // Sidecars run alongside the containers.
            add_all(&mut sum, &list);
        } else {
            max_into(&mut init_max, &list);
        }
    }
    max_into(&mut sum, &init_max);
    if !spec["overhead"].is_null() {
        add_all(&mut sum, &parse_list(&spec["overhead"]));
    }
    sum
}

/// Whether a pod has finished (it no longer counts against quota).
pub fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a pod is BestEffort: no container requests or limits at all.
pub fn best_effort(pod: &Value) -> bool {
    let spec = &pod["spec"];
    let none = |cs: &Value| {
        cs.as_array().into_iter().flatten().all(|c| {
            c["resources"]["requests"]
                .as_object()
                .is_none_or(|m| m.is_empty())
                && c["resources"]["limits"]
                    .as_object()
                    .is_none_or(|m| m.is_empty())
        })
    };
    none(&spec["containers"]) && none(&spec["initContainers"])
}

/// The quota resource name counting objects of a resource (`count/pods`,
/// `count/deployments.apps`).
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// What one object of `group`/`plural` counts against a quota.
pub fn object_usage(group: &str, plural: &str, obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    let one = Quantity::from_units(1);
    if group.is_empty() && plural == "pods" {
        if pod_terminal(obj) {
            return out;
        }
        out.insert("pods".into(), one);
        out.insert(count_name("", "pods"), one);
        for (k, v) in pod_resources(obj, "requests") {
            if k == "cpu" || k == "memory" {
                out.insert(k.clone(), v);
            }
            out.insert(format!("requests.{k}"), v);
        }
        for (k, v) in pod_resources(obj, "limits") {
            out.insert(format!("limits.{k}"), v);
        }
        return out;
    }
    out.insert(count_name(group, plural), one);
    if !group.is_empty() {
        return out;
    }
    match plural {
        "services" => {
            out.insert("services".into(), one);
            let kind = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if kind == "LoadBalancer" {
                out.insert("services.loadbalancers".into(), one);
            }
            if kind == "LoadBalancer" || kind == "NodePort" {
                let ports = obj["spec"]["ports"].as_array().map_or(0, |p| p.len());
                out.insert(
                    "services.nodeports".into(),
                    Quantity::from_units(ports as i64),
                );
            }
        }
        "persistentvolumeclaims" => {
            out.insert("persistentvolumeclaims".into(), one);
            if let Some(s) = obj["spec"]["resources"]["requests"]["storage"].as_str()
                && let Ok(q) = Quantity::parse(s)
            {
                out.insert("requests.storage".into(), q);
            }
        }
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => {
            out.insert(plural.to_string(), one);
        }
        _ => {}
    }
    out
}

/// The resource names a pod's containers must set when a quota tracks them (upstream's
/// backward-compatible constraint), with the containers missing each; sorted.
pub fn missing_pod_constraints(
    pod: &Value,
    tracked: &BTreeSet<String>,
) -> Vec<(String, Vec<String>)> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("").to_string();
        for r in tracked {
            let (field, key) = match r.as_str() {
                "cpu" | "memory" => ("requests", r.as_str()),
                "requests.cpu" => ("requests", "cpu"),
                "requests.memory" => ("requests", "memory"),
                "limits.cpu" => ("limits", "cpu"),
                "limits.memory" => ("limits", "memory"),
                _ => continue,
            };
            if c["resources"][field][key].is_null() {
                out.entry(r.clone()).or_default().insert(name.clone());
            }
        }
    }
    out.into_iter()
        .map(|(r, cs)| (r, cs.into_iter().collect()))
        .collect()
}

/// Whether a quota's scopes (and scopeSelector) cover an object; scoped quotas cover pods
/// only.
pub fn quota_covers(quota: &Value, group: &str, plural: &str, obj: &Value) -> bool {
    let mut scopes: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        scopes.push((
            e["scopeName"].as_str().unwrap_or("").to_string(),
            e["operator"].as_str().unwrap_or("").to_string(),
            values,
        ));
    }
    if scopes.is_empty() {
        return true;
    }
    if !(group.is_empty() && plural == "pods") {
        return false;
    }
    scopes
        .iter()
        .all(|(scope, op, values)| match scope.as_str() {
            "Terminating" => !obj["spec"]["activeDeadlineSeconds"].is_null(),
            "NotTerminating" => obj["spec"]["activeDeadlineSeconds"].is_null(),
            "BestEffort" => best_effort(obj),
            "NotBestEffort" => !best_effort(obj),
            "PriorityClass" => {
                let pc = obj["spec"]["priorityClassName"]
                    .as_str()
                    .filter(|s| !s.is_empty());
                match op.as_str() {
                    "Exists" => pc.is_some(),
                    "DoesNotExist" => pc.is_none(),
                    "In" => pc.is_some_and(|p| values.iter().any(|v| v == p)),
                    "NotIn" => pc.is_none_or(|p| !values.iter().any(|v| v == p)),
                    _ => false,
                }
            }
            "CrossNamespacePodAffinity" => {
                let aff = &obj["spec"]["affinity"];
                ["podAffinity", "podAntiAffinity"].iter().any(|k| {
                    !aff[k]["requiredDuringSchedulingIgnoredDuringExecution"].is_null()
                        && aff[k]["requiredDuringSchedulingIgnoredDuringExecution"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|t| {
                                !t["namespaces"].is_null() || !t["namespaceSelector"].is_null()
                            })
                })
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_usage_sums_containers_and_init_maximum() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
        }});
        let u = object_usage("", "pods", &pod);
        assert_eq!(u["pods"].canonical(), "1");
        assert_eq!(u["requests.cpu"].canonical(), "1");
        assert_eq!(u["cpu"].canonical(), "1");
        assert_eq!(u["requests.memory"].canonical(), "64Mi");
        assert_eq!(u["limits.cpu"].canonical(), "200m");
        // Adding to a zero keeps the added amount's suffix family (upstream's Add).
        let zero = Quantity::parse("0").unwrap();
        assert_eq!(zero.add(&u["requests.memory"]).canonical(), "64Mi");
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(object_usage("", "pods", &done).is_empty());
        let tracked: BTreeSet<String> = ["limits.cpu", "requests.memory", "pods"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            missing_pod_constraints(&pod, &tracked),
            vec![
                ("limits.cpu".to_string(), vec!["b".to_string()]),
                ("requests.memory".to_string(), vec!["b".to_string()]),
            ]
        );
    }

    #[test]
    fn counts_and_scopes() {
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        let u = object_usage("", "services", &svc);
        assert_eq!(u["services.nodeports"].canonical(), "2");
        assert_eq!(u["count/services"].canonical(), "1");
        assert!(
            object_usage("apps", "deployments", &json!({})).contains_key("count/deployments.apps")
        );
        let scoped = json!({"spec": {"scopes": ["BestEffort"]}});
        assert!(quota_covers(
            &scoped,
            "",
            "pods",
            &json!({"spec": {"containers": [{"name": "a"}]}})
        ));
        assert!(!quota_covers(&scoped, "", "configmaps", &json!({})));
        let pc = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        assert!(quota_covers(
            &pc,
            "",
            "pods",
            &json!({"spec": {"priorityClassName": "high"}})
        ));
        assert!(!quota_covers(&pc, "", "pods", &json!({"spec": {}})));
    }
}
