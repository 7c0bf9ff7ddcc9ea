//! The Priority admission plugin: a pod's `spec.priority` and `spec.preemptionPolicy` are
//! resolved from its `priorityClassName` (or the cluster's `globalDefault` PriorityClass)
//! when it is created, with upstream's errors when the class does not exist or the pod
//! names a different value.

use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};
use serde_json::Value;

use crate::State;

/// The class used when a pod names none and no class is the global default.
const NO_DEFAULT_PRIORITY: i64 = 0;
const PREEMPT_LOWER: &str = "PreemptLowerPriority";

/// Resolves a new pod's priority (the pod is in its stored form).
pub async fn admit_pod(
    state: &State,
    resource: &Resource,
    pod: &mut Value,
    name: &str,
) -> Result<(), ApiError> {
    let pcs = resources::find("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priorityclasses are built in");
    let Some(cache) = state.caches.for_resource(pcs) else {
        return Ok(());
    };
    let forbidden = |why: String| ApiError::forbidden(&resource.group_resource(), name, &why);
    let class_name = pod["spec"]["priorityClassName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (class_name, value, policy) = if class_name.is_empty() {
        let default = cache
            .list(&pcs.key_prefix())
            .into_iter()
            .map(|c| c.value())
            .filter(|pc| pc["globalDefault"].as_bool() == Some(true))
            // Upstream picks the lowest-valued default when several exist.
            .min_by_key(|pc| pc["value"].as_i64().unwrap_or(0));
        match default {
            Some(pc) => (
                pc["metadata"]["name"].as_str().unwrap_or("").to_string(),
                pc["value"].as_i64().unwrap_or(0),
                pc["preemptionPolicy"]
                    .as_str()
                    .unwrap_or(PREEMPT_LOWER)
                    .to_string(),
            ),
            None => (
                String::new(),
                NO_DEFAULT_PRIORITY,
                PREEMPT_LOWER.to_string(),
            ),
        }
    } else {
        let Some(pc) = cache.get(&pcs.key(None, &class_name)).map(|c| c.value()) else {
            return Err(forbidden(format!(
                "no PriorityClass with name {class_name} was found"
            )));
        };
        (
            class_name,
            pc["value"].as_i64().unwrap_or(0),
            pc["preemptionPolicy"]
                .as_str()
                .unwrap_or(PREEMPT_LOWER)
                .to_string(),
        )
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(forbidden(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; \
             priority admission controller computed {value} from the given PriorityClass name"
        )));
    }
    if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && given != policy
    {
        return Err(forbidden(format!(
            "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; \
             priority admission controller computed {policy} from the given PriorityClass name"
        )));
    }
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), class_name.into());
    }
    spec.insert("priority".into(), value.into());
    spec.insert("preemptionPolicy".into(), policy.into());
    Ok(())
}
