//! Mutating admission on creates of pods: LimitRanger (container requests and limits
//! defaulted from the namespace's LimitRanges of type Container, recorded in the
//! `kubernetes.io/limit-ranger` annotation; then min, max and maxLimitRequestRatio of
//! type Container and Pod enforced with upstream's messages) and DefaultTolerationSeconds
//! (tolerations of 300 s for the `not-ready` and `unreachable` NoExecute taints unless
//! the pod tolerates them already).

use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};
use rkube_validation::usage::{self, ResourceList};
use serde_json::{Value, json};

use crate::State;

pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// DefaultTolerationSeconds' default for both taints.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Admission changes and checks for a create of `obj` in `namespace`.
pub fn mutate_create(
    state: &State,
    r: &Resource,
    namespace: &str,
    name: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !(r.group.is_empty() && r.plural == "pods") {
        return Ok(());
    }
    let ranges = limit_ranges(state, namespace);
    if !ranges.is_empty() {
        apply_limit_ranges(&ranges, obj)
            .map_err(|why| ApiError::forbidden(&r.group_resource(), name, &why))?;
    }
    default_tolerations(obj);
    Ok(())
}

fn limit_ranges(state: &State, namespace: &str) -> Vec<Value> {
    let Some(res) = resources::find("", "v1", "limitranges") else {
        return Vec::new();
    };
    let Some(cache) = state.caches.for_resource(res) else {
        return Vec::new();
    };
    cache
        .list(&res.namespace_prefix(Some(namespace)))
        .iter()
        .map(|c| c.value())
        .collect()
}

/// Adds DefaultTolerationSeconds' tolerations.
pub fn default_tolerations(pod: &mut Value) {
    let tolerations = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let e = t["effect"].as_str().unwrap_or("");
            (k == key || (k.is_empty() && t["operator"] == "Exists"))
                && (e.is_empty() || e == "NoExecute")
        })
    };
    let mut added = Vec::new();
    for key in [NOT_READY, UNREACHABLE] {
        if !tolerates(key) {
            added.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
            );
        }
    }
    if added.is_empty() || !pod["spec"].is_object() {
        return;
    }
    let mut all = tolerations;
    all.extend(added);
    pod["spec"]["tolerations"] = Value::Array(all);
}

/// Defaults from LimitRanges (type Container), then their constraints. The error is the
/// message after `pods "x" is forbidden: `.
pub fn apply_limit_ranges(ranges: &[Value], pod: &mut Value) -> Result<(), String> {
    let mut notes = Vec::new();
    for lr in ranges {
        for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
            if item["type"] != "Container" {
                continue;
            }
            let default_limits = usage::parse_list(&item["default"]);
            let mut default_requests = usage::parse_list(&item["defaultRequest"]);
            // LimitRange defaulting: defaultRequest falls back to default, then max.
            for (k, v) in &default_limits {
                default_requests.entry(k.clone()).or_insert(*v);
            }
            for (list, kind) in [
                ("containers", "container"),
                ("initContainers", "init container"),
            ] {
                let Some(cs) = pod["spec"][list].as_array_mut() else {
                    continue;
                };
                for c in cs {
                    let cname = c["name"].as_str().unwrap_or("").to_string();
                    let mut set_req = Vec::new();
                    let mut set_lim = Vec::new();
                    for (k, v) in &default_limits {
                        if c["resources"]["limits"][k].is_null() {
                            c["resources"]["limits"][k] = json!(v.canonical());
                            set_lim.push(k.clone());
                        }
                    }
                    for (k, v) in &default_requests {
                        if c["resources"]["requests"][k].is_null() {
                            c["resources"]["requests"][k] = json!(v.canonical());
                            set_req.push(k.clone());
                        }
                    }
                    if !set_req.is_empty() {
                        notes.push(format!("{} request for {kind} {cname}", set_req.join(", ")));
                    }
                    if !set_lim.is_empty() {
                        notes.push(format!("{} limit for {kind} {cname}", set_lim.join(", ")));
                    }
                }
            }
        }
    }
    if !notes.is_empty() && pod["metadata"].is_object() {
        pod["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION] =
            json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
    let mut errors = Vec::new();
    for lr in ranges {
        for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
            match item["type"].as_str() {
                Some("Container") => {
                    for list in ["containers", "initContainers"] {
                        for c in pod["spec"][list].as_array().into_iter().flatten() {
                            let req = usage::parse_list(&c["resources"]["requests"]);
                            let lim = usage::parse_list(&c["resources"]["limits"]);
                            check_item(item, "Container", &req, &lim, &mut errors);
                        }
                    }
                }
                Some("Pod") => {
                    let req = usage::pod_resources(pod, "requests");
                    let lim = usage::pod_resources(pod, "limits");
                    check_item(item, "Pod", &req, &lim, &mut errors);
                }
                _ => {}
            }
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

fn check_item(
    item: &Value,
    kind: &str,
    req: &ResourceList,
    lim: &ResourceList,
    errors: &mut Vec<String>,
) {
    let min = usage::parse_list(&item["min"]);
    let max = usage::parse_list(&item["max"]);
    let ratio = usage::parse_list(&item["maxLimitRequestRatio"]);
    for (k, enforced) in &min {
        let e = enforced.canonical();
        match req.get(k) {
            None => errors.push(format!(
                "minimum {k} usage per {kind} is {e}.  No request is specified"
            )),
            Some(r) if r < enforced => errors.push(format!(
                "minimum {k} usage per {kind} is {e}, but request is {}",
                r.canonical()
            )),
            _ => {
                if let Some(l) = lim.get(k)
                    && l < enforced
                {
                    errors.push(format!(
                        "minimum {k} usage per {kind} is {e}, but limit is {}",
                        l.canonical()
                    ));
                }
            }
        }
    }
    for (k, enforced) in &max {
        let e = enforced.canonical();
        match lim.get(k) {
            None => errors.push(format!(
                "maximum {k} usage per {kind} is {e}.  No limit is specified"
            )),
            Some(l) if l > enforced => errors.push(format!(
                "maximum {k} usage per {kind} is {e}, but limit is {}",
                l.canonical()
            )),
            _ => {
                if let Some(r) = req.get(k)
                    && r > enforced
                {
                    errors.push(format!(
                        "maximum {k} usage per {kind} is {e}, but request is {}",
                        r.canonical()
                    ));
                }
            }
        }
    }
    for (k, enforced) in &ratio {
        let e = enforced.canonical();
        let r = req.get(k).map(|q| q.milli_value()).unwrap_or(0);
        let l = lim.get(k).map(|q| q.milli_value()).unwrap_or(0);
        if r == 0 {
            errors.push(format!(
                "{k} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"
            ));
        } else if l == 0 {
            errors.push(format!(
                "{k} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"
            ));
        } else {
            let observed = l as f64 / r as f64;
            let allowed = enforced.milli_value() as f64 / 1000.0;
            if observed > allowed {
                errors.push(format!(
                    "{k} max limit to request ratio per {kind} is {e}, but provided ratio is {observed:.6}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Value {
        json!({"spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"},
            "min": {"cpu": "50m"}, "max": {"cpu": "1"},
            "maxLimitRequestRatio": {"cpu": "10"}}]}})
    }

    #[test]
    fn defaults_are_set_and_recorded() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "x"}]}});
        apply_limit_ranges(&[range()], &mut pod).unwrap();
        let c = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(c["limits"]["cpu"], "500m");
        assert_eq!(c["limits"]["memory"], "256Mi");
        assert_eq!(c["requests"]["cpu"], "100m");
        assert_eq!(c["requests"]["memory"], "256Mi");
        assert_eq!(
            pod["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web"
        );
    }

    #[test]
    fn violations_use_upstreams_messages() {
        let mut big = json!({"metadata": {}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "20m"}, "limits": {"cpu": "2"}}}]}});
        let err = apply_limit_ranges(&[range()], &mut big).unwrap_err();
        assert_eq!(
            err,
            "[minimum cpu usage per Container is 50m, but request is 20m, maximum cpu usage per Container is 1, but limit is 2, cpu max limit to request ratio per Container is 10, but provided ratio is 100.000000]"
        );
        let mut one = json!({"metadata": {}, "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2"}}}]}});
        let err = apply_limit_ranges(&[range()], &mut one).unwrap_err();
        assert_eq!(err, "maximum cpu usage per Container is 1, but limit is 2");
    }

    #[test]
    fn default_tolerations_are_added_once() {
        let mut pod = json!({"spec": {"containers": []}});
        default_tolerations(&mut pod);
        let t = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["key"], NOT_READY);
        assert_eq!(t[1]["tolerationSeconds"], 300);
        default_tolerations(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        let mut tolerant = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_tolerations(&mut tolerant);
        assert_eq!(tolerant["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
