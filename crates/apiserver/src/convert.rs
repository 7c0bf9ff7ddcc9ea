//! Conversion between a served version and the stored one, for the resources served in more
//! than one form: `events.k8s.io/v1` events (stored as core `v1` events) and
//! `autoscaling/v1` HorizontalPodAutoscalers (stored as `autoscaling/v2`, with upstream's
//! round-trip annotations for what v1 cannot express).

use rkube_api::resources::Resource;
use serde_json::{Map, Value, json};

const HPA_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const HPA_CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const HPA_CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const HPA_BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// Whether objects of `resource` are stored in another version.
pub fn needs_conversion(resource: &Resource) -> bool {
    (resource.group, resource.version) != resource.storage_version
}

/// From the served version to the stored one.
pub fn to_storage(resource: &Resource, obj: Value) -> Value {
    match (resource.group, resource.version, resource.kind) {
        ("events.k8s.io", "v1", "Event") => event_to_core(obj),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        _ => obj,
    }
}

/// From the stored version to the served one.
pub fn from_storage(resource: &Resource, obj: Value) -> Value {
    match (resource.group, resource.version, resource.kind) {
        ("events.k8s.io", "v1", "Event") => event_from_core(obj),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        _ => obj,
    }
}

fn take(m: &mut Map<String, Value>, from: &str) -> Option<Value> {
    m.remove(from).filter(|v| !v.is_null())
}

/// (core field, events.k8s.io field)
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn event_from_core(obj: Value) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    for (core, new) in EVENT_FIELDS {
        if let Some(v) = take(&mut m, core) {
            m.insert(new.to_string(), v);
        }
    }
    m.insert("apiVersion".into(), "events.k8s.io/v1".into());
    m.insert("kind".into(), "Event".into());
    Value::Object(m)
}

fn event_to_core(obj: Value) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    for (core, new) in EVENT_FIELDS {
        if let Some(v) = take(&mut m, new) {
            m.insert(core.to_string(), v);
        }
    }
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "Event".into());
    Value::Object(m)
}

fn annotations(obj: &mut Value) -> &mut Map<String, Value> {
    let meta = rkube_api::meta::meta_mut(obj);
    let a = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !a.is_object() {
        *a = Value::Object(Map::new());
    }
    a.as_object_mut().expect("object")
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let status = obj.get("status").cloned().unwrap_or(Value::Null);
    let mut v1_spec = Map::new();
    for f in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(f).filter(|v| !v.is_null()) {
            v1_spec.insert(f.into(), v.clone());
        }
    }
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut others = Vec::new();
    for m in metrics {
        if is_cpu_utilization(&m) && !v1_spec.contains_key("targetCPUUtilizationPercentage") {
            v1_spec.insert(
                "targetCPUUtilizationPercentage".into(),
                m["resource"]["target"]["averageUtilization"].clone(),
            );
        } else {
            others.push(m);
        }
    }
    let mut v1_status = Map::new();
    for f in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        if let Some(v) = status.get(f).filter(|v| !v.is_null()) {
            v1_status.insert(f.into(), v.clone());
        }
    }
    let current = status
        .get("currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut other_current = Vec::new();
    for m in current {
        if m["type"] == "Resource"
            && m["resource"]["name"] == "cpu"
            && m["resource"]["current"].get("averageUtilization").is_some()
            && !v1_status.contains_key("currentCPUUtilizationPercentage")
        {
            v1_status.insert(
                "currentCPUUtilizationPercentage".into(),
                m["resource"]["current"]["averageUtilization"].clone(),
            );
        } else {
            other_current.push(m);
        }
    }
    let conditions = status.get("conditions").cloned().filter(|c| !c.is_null());
    let behavior = spec.get("behavior").cloned().filter(|b| !b.is_null());
    {
        let a = annotations(&mut obj);
        if !others.is_empty() {
            a.insert(
                HPA_METRICS.into(),
                Value::String(Value::Array(others).to_string()),
            );
        }
        if !other_current.is_empty() {
            a.insert(
                HPA_CURRENT_METRICS.into(),
                Value::String(Value::Array(other_current).to_string()),
            );
        }
        if let Some(c) = conditions {
            a.insert(HPA_CONDITIONS.into(), Value::String(c.to_string()));
        }
        if let Some(b) = behavior {
            a.insert(HPA_BEHAVIOR.into(), Value::String(b.to_string()));
        }
    }
    if annotations(&mut obj).is_empty() {
        rkube_api::meta::meta_mut(&mut obj).remove("annotations");
    }
    obj["apiVersion"] = "autoscaling/v1".into();
    obj["spec"] = Value::Object(v1_spec);
    obj["status"] = Value::Object(v1_status);
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let status = obj.get("status").cloned().unwrap_or(Value::Null);
    let (metrics_ann, current_ann, conditions_ann, behavior_ann) = {
        let a = annotations(&mut obj);
        (
            a.remove(HPA_METRICS),
            a.remove(HPA_CURRENT_METRICS),
            a.remove(HPA_CONDITIONS),
            a.remove(HPA_BEHAVIOR),
        )
    };
    if annotations(&mut obj).is_empty() {
        rkube_api::meta::meta_mut(&mut obj).remove("annotations");
    }
    let parse = |v: Option<Value>| -> Option<Value> {
        v.and_then(|s| s.as_str().and_then(|s| serde_json::from_str(s).ok()))
    };
    let mut v2_spec = Map::new();
    for f in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(f).filter(|v| !v.is_null()) {
            v2_spec.insert(f.into(), v.clone());
        }
    }
    let mut metrics = Vec::new();
    if let Some(pct) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        metrics.push(json!({
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}},
        }));
    }
    if let Some(Value::Array(more)) = parse(metrics_ann) {
        metrics.extend(more);
    }
    if !metrics.is_empty() {
        v2_spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(b) = parse(behavior_ann) {
        v2_spec.insert("behavior".into(), b);
    }
    let mut v2_status = Map::new();
    for f in [
        "observedGeneration",
        "lastScaleTime",
        "currentReplicas",
        "desiredReplicas",
    ] {
        if let Some(v) = status.get(f).filter(|v| !v.is_null()) {
            v2_status.insert(f.into(), v.clone());
        }
    }
    let mut current = Vec::new();
    if let Some(pct) = status
        .get("currentCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        current.push(json!({
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": pct}},
        }));
    }
    if let Some(Value::Array(more)) = parse(current_ann) {
        current.extend(more);
    }
    if !current.is_empty() {
        v2_status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(c) = parse(conditions_ann) {
        v2_status.insert("conditions".into(), c);
    }
    obj["apiVersion"] = "autoscaling/v2".into();
    obj["spec"] = Value::Object(v2_spec);
    if !v2_status.is_empty() || obj.get("status").is_some() {
        obj["status"] = Value::Object(v2_status);
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::resources::find;

    #[test]
    fn events_convert_both_ways() {
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                          "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi",
                          "reason": "Started", "count": 3});
        let new = from_storage(ev, core.clone());
        assert_eq!(new["apiVersion"], "events.k8s.io/v1");
        assert_eq!(new["regarding"]["name"], "p");
        assert_eq!(new["note"], "hi");
        assert_eq!(new["deprecatedCount"], 3);
        assert_eq!(to_storage(ev, new), core);
    }

    #[test]
    fn hpa_round_trips_through_v1() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}});
        let served = from_storage(v1, v2.clone());
        assert_eq!(served["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(
            served["metadata"]["annotations"][HPA_METRICS]
                .as_str()
                .unwrap()
                .contains("memory")
        );
        let back = to_storage(v1, served);
        assert_eq!(back["spec"], v2["spec"]);
        assert_eq!(back["status"]["currentReplicas"], 2);
        assert!(back["metadata"].get("annotations").is_none());
    }
}
