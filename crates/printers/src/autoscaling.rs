//! `autoscaling` printers: HorizontalPodAutoscalers (`REFERENCE TARGETS MINPODS MAXPODS
//! REPLICAS AGE`, from `autoscaling/v2` objects or `autoscaling/v1` ones with their
//! round-trip annotations) and the `Scale` subresource.

use serde_json::{Value, json};

use crate::cells::{age, int, list, name, opt_int, s};
use crate::describe::{self, AGE, NAME, col};
use crate::quantity::canonical_ptr;
use crate::{Column, Row};

pub static HPA: &[Column] = &[
    NAME,
    col("Reference", "string", describe::HPA_TARGET_REF),
    col("Targets", "string", describe::HPA_METRICS),
    col("MinPods", "string", describe::HPA_MIN),
    col("MaxPods", "string", describe::HPA_MAX),
    col("Replicas", "string", describe::HPA_CURRENT),
    AGE,
];

const V1_METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const V1_CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// An annotation holding a JSON list.
fn annotation_list(obj: &Value, key: &str) -> Vec<Value> {
    obj["metadata"]["annotations"][key]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The `autoscaling/v2` metric specs and statuses of an HPA in either version.
fn metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let v1 = s(&obj["apiVersion"]) == "autoscaling/v1"
        || !spec["targetCPUUtilizationPercentage"].is_null()
        || !status["currentCPUUtilizationPercentage"].is_null();
    let (mut specs, statuses) = if v1 {
        let mut specs = Vec::new();
        if let Some(pct) = opt_int(&spec["targetCPUUtilizationPercentage"]) {
            specs.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": pct}}}));
        }
        specs.extend(annotation_list(obj, V1_METRICS));
        let mut statuses = Vec::new();
        if let Some(pct) = opt_int(&status["currentCPUUtilizationPercentage"]) {
            statuses.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": pct}}}));
        }
        statuses.extend(annotation_list(obj, V1_CURRENT_METRICS));
        (specs, statuses)
    } else {
        (
            list(&spec["metrics"]).to_vec(),
            list(&status["currentMetrics"]).to_vec(),
        )
    };
    if specs.is_empty() {
        // autoscaling/v2 defaults an HPA without metrics to 80% CPU utilisation.
        specs.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}));
    }
    (specs, statuses)
}

/// `formatHPAMetrics`: `current/target` per metric, at most two, then ` + N more...`.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    let unknown = || "<unknown>".to_string();
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i).unwrap_or(&Value::Null);
        let entry = match s(&spec["type"]) {
            "External" | "Object" => {
                let key = if s(&spec["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = &spec[key]["target"];
                let current = &status[key];
                if !target["averageValue"].is_null() {
                    let cur =
                        if current.is_object() && !current["current"]["averageValue"].is_null() {
                            canonical_ptr(&current["current"]["averageValue"])
                        } else {
                            unknown()
                        };
                    format!("{cur}/{} (avg)", canonical_ptr(&target["averageValue"]))
                } else {
                    let cur = if current.is_object() {
                        canonical_ptr(&current["current"]["value"])
                    } else {
                        unknown()
                    };
                    format!("{cur}/{}", canonical_ptr(&target["value"]))
                }
            }
            "Pods" => {
                let current = &status["pods"];
                let cur = if current.is_object() {
                    canonical_ptr(&current["current"]["averageValue"])
                } else {
                    unknown()
                };
                format!(
                    "{cur}/{}",
                    canonical_ptr(&spec["pods"]["target"]["averageValue"])
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if s(&spec["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let target = &spec[key]["target"];
                let current = &status[key];
                let metric = s(&spec[key]["name"]);
                if !target["averageValue"].is_null() {
                    let cur = if current.is_object() {
                        canonical_ptr(&current["current"]["averageValue"])
                    } else {
                        unknown()
                    };
                    format!("{metric}: {cur}/{}", canonical_ptr(&target["averageValue"]))
                } else {
                    let cur = match opt_int(&current["current"]["averageUtilization"]) {
                        Some(u) if current.is_object() => format!("{u}%"),
                        _ => unknown(),
                    };
                    let goal = match opt_int(&target["averageUtilization"]) {
                        Some(u) => format!("{u}%"),
                        None => "<auto>".into(),
                    };
                    format!("{metric}: {cur}/{goal}")
                }
            }
            _ => "<unknown type>".into(),
        };
        out.push(entry);
    }
    let count = out.len();
    if count > MAX {
        format!("{} + {} more...", out[..MAX].join(", "), count - MAX)
    } else {
        out.join(", ")
    }
}

pub fn hpa(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let target = &spec["scaleTargetRef"];
    let (specs, statuses) = metrics(obj);
    // `minReplicas` defaults to 1.
    let min = opt_int(&spec["minReplicas"]).unwrap_or(1);
    Row::new(vec![
        name(obj).into(),
        format!("{}/{}", s(&target["kind"]), s(&target["name"])).into(),
        format_metrics(&specs, &statuses).into(),
        min.to_string().into(),
        int(&spec["maxReplicas"]).into(),
        int(&obj["status"]["currentReplicas"]).into(),
        age(obj, now),
    ])
}

pub static SCALE: &[Column] = &[
    col("Name", "string", describe::META_NAME),
    col("Desired", "integer", describe::SCALE_SPEC_REPLICAS),
    col("Available", "integer", describe::SCALE_STATUS_REPLICAS),
    AGE,
];

pub fn scale(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        int(&obj["spec"]["replicas"]).into(),
        int(&obj["status"]["replicas"]).into(),
        age(obj, now),
    ])
}
