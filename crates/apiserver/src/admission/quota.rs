//! ResourceQuota admission on creates: for every quota of the namespace that covers the
//! new object (scopes) and tracks something it uses, pods must state the requests and
//! limits the quota tracks (`failed quota: q: must specify requests.cpu for: c`), usage
//! must be known (`status unknown for quota: q, resource: pods`), and used + requested
//! must stay within hard (`exceeded quota: q, requested: pods=1, used: pods=2, limited:
//! pods=2`), all 403 Forbidden. Admitted usage is charged to the quota's `status.used` at
//! once (compare-and-swap on the stored quota, so concurrent creates cannot both take
//! the last unit); the ResourceQuota controller recomputes it from the real objects.

use std::collections::BTreeSet;

use rkube_api::resources::{self, Resource};
use rkube_api::{ApiError, meta};
use rkube_store::{Error as StoreError, WriteOptions};
use rkube_validation::usage::{self, ResourceList};
use serde_json::Value;

use crate::{State, objects};

const MAX_RETRIES: usize = 16;

fn pretty(list: &ResourceList, names: &[String]) -> String {
    names
        .iter()
        .filter_map(|n| list.get(n).map(|q| format!("{n}={}", q.canonical())))
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks one quota against an object's usage; returns the new `status.used` on success,
/// `Ok(None)` when the quota does not concern the object, or the refusal's message.
pub fn evaluate(
    quota: &Value,
    group: &str,
    plural: &str,
    obj: &Value,
    delta: &ResourceList,
) -> Result<Option<ResourceList>, String> {
    let qname = meta::name(quota).unwrap_or("");
    let hard = usage::parse_list(&quota["spec"]["hard"]);
    if hard.is_empty() || !usage::quota_covers(quota, group, plural, obj) {
        return Ok(None);
    }
    let tracked: BTreeSet<String> = hard.keys().cloned().collect();
    if group.is_empty() && plural == "pods" && !usage::pod_terminal(obj) {
        let missing = usage::missing_pod_constraints(obj, &tracked);
        if !missing.is_empty() {
            let parts: Vec<String> = missing
                .iter()
                .map(|(r, cs)| format!("{r} for: {}", cs.join(",")))
                .collect();
            return Err(format!(
                "failed quota: {qname}: must specify {}",
                parts.join("; ")
            ));
        }
    }
    let relevant: Vec<String> = delta
        .keys()
        .filter(|k| hard.contains_key(*k))
        .cloned()
        .collect();
    if relevant.is_empty() {
        return Ok(None);
    }
    let used = usage::parse_list(&quota["status"]["used"]);
    let mut new_used = used.clone();
    let mut exceeded = Vec::new();
    for r in &relevant {
        let Some(u) = used.get(r) else {
            return Err(format!("status unknown for quota: {qname}, resource: {r}"));
        };
        let next = u.add(&delta[r]);
        if next > hard[r] {
            exceeded.push(r.clone());
        }
        new_used.insert(r.clone(), next);
    }
    if !exceeded.is_empty() {
        return Err(format!(
            "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
            pretty(delta, &exceeded),
            pretty(&used, &exceeded),
            pretty(&hard, &exceeded)
        ));
    }
    Ok(Some(new_used))
}

/// ResourceQuota admission for a create of `obj` (storage form) named `name`.
pub async fn resource_quota(
    state: &State,
    r: &Resource,
    namespace: &str,
    name: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    let Some(quotas) = resources::find("", "v1", "resourcequotas") else {
        return Ok(());
    };
    let Some(cache) = state.caches.for_resource(quotas) else {
        return Ok(());
    };
    let listed = cache.list(&quotas.namespace_prefix(Some(namespace)));
    if listed.is_empty() {
        return Ok(());
    }
    let delta = usage::object_usage(r.group, r.plural, obj);
    if delta.is_empty() {
        return Ok(());
    }
    let forbidden = |why: String| ApiError::forbidden(&r.group_resource(), name, &why);
    // Check every quota first (from the cache), then charge each against its stored copy.
    for c in &listed {
        evaluate(&c.value(), r.group, r.plural, obj, &delta).map_err(forbidden)?;
    }
    for c in &listed {
        let mut charged = false;
        for _ in 0..MAX_RETRIES {
            let kv = match state.store.get(&c.key).await {
                Ok(Some(kv)) => kv,
                Ok(None) => {
                    charged = true;
                    break;
                }
                Err(e) => return Err(crate::errors::store(quotas, &c.name, e)),
            };
            let mut quota = objects::from_storage(&kv)?;
            let Some(new_used) =
                evaluate(&quota, r.group, r.plural, obj, &delta).map_err(forbidden)?
            else {
                charged = true;
                break;
            };
            quota["status"]["used"] = usage::to_json(&new_used);
            match state
                .store
                .update(
                    &c.key,
                    objects::to_storage(&mut quota),
                    kv.mod_revision,
                    WriteOptions::default(),
                )
                .await
            {
                Ok(_) => {
                    charged = true;
                    break;
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(crate::errors::store(quotas, &c.name, e)),
            }
        }
        if !charged {
            return Err(ApiError::internal(format!(
                "could not update quota {} after {MAX_RETRIES} attempts",
                c.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn over_quota_and_missing_requests_are_refused_with_upstreams_text() {
        let quota = json!({"metadata": {"name": "q"},
            "spec": {"hard": {"pods": "2", "requests.cpu": "1"}},
            "status": {"used": {"pods": "2", "requests.cpu": "500m"}}});
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}});
        let delta = usage::object_usage("", "pods", &pod);
        assert_eq!(
            evaluate(&quota, "", "pods", &pod, &delta).unwrap_err(),
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        );
        let bare = json!({"spec": {"containers": [{"name": "c"}]}});
        let d = usage::object_usage("", "pods", &bare);
        assert_eq!(
            evaluate(&quota, "", "pods", &bare, &d).unwrap_err(),
            "failed quota: q: must specify requests.cpu for: c"
        );
        let mut room = quota.clone();
        room["status"]["used"]["pods"] = json!("1");
        let used = evaluate(&room, "", "pods", &pod, &delta).unwrap().unwrap();
        assert_eq!(used["pods"].canonical(), "2");
        assert_eq!(used["requests.cpu"].canonical(), "600m");
        let unknown = json!({"metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "1"}}});
        assert_eq!(
            evaluate(
                &unknown,
                "",
                "configmaps",
                &json!({}),
                &usage::object_usage("", "configmaps", &json!({}))
            )
            .unwrap_err(),
            "status unknown for quota: q, resource: configmaps"
        );
    }
}
