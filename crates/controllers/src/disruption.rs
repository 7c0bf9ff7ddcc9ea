//! The disruption controller: PodDisruptionBudget status. For each budget: the pods of its
//! namespace its selector matches; `expectedPods` (the pod count for an integer
//! minAvailable, otherwise the replicas of the pods' controllers — a ReplicaSet's
//! Deployment, a ReplicaSet, ReplicationController or StatefulSet); `desiredHealthy`
//! (minAvailable, or expectedPods minus maxUnavailable, percentages rounded up);
//! `currentHealthy` (Ready pods not being deleted and not just evicted); the
//! `disruptionsAllowed` that the eviction subresource spends; `disruptedPods` entries
//! (written by evictions) dropped once the pod is gone or after two minutes; the
//! `DisruptionAllowed` condition (SufficientPods / InsufficientPods) and
//! `observedGeneration`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};

use std::sync::Arc;

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};
use crate::endpoints::{pod_ready, terminal};
use crate::shared::Shared;

const BY_NAMESPACE: &str = "namespace";
/// How long an eviction's entry in `disruptedPods` is trusted.
const DISRUPTED_TTL_SECS: i64 = 120;

/// An int-or-percent scaled against `total`, rounded up.
pub fn scaled(v: &IntOrString, total: i32) -> Option<i32> {
    match v {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some(((i64::from(total) * pct + 99) / 100) as i32)
        }
    }
}

/// (expectedPods, desiredHealthy) for a budget, given the pod count and the controllers'
/// replicas (None when some pod has no controller, which only matters when needed).
pub fn expectations(
    pdb: &PodDisruptionBudget,
    pods: i32,
    controllers: Option<i32>,
) -> Result<(i32, i32), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    if let Some(IntOrString::Int(n)) = &spec.min_available {
        return Ok((pods, *n));
    }
    let expected = controllers.ok_or("found no controllers for some pods")?;
    if let Some(min) = &spec.min_available {
        let d = scaled(min, expected).ok_or("invalid minAvailable")?;
        return Ok((expected, d));
    }
    if let Some(max) = &spec.max_unavailable {
        let m = scaled(max, expected).ok_or("invalid maxUnavailable")?;
        return Ok((expected, (expected - m).max(0)));
    }
    Ok((expected, expected))
}

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    let pdbs_informer = Informer::new(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_transform(strip_managed_fields)
    .with_index(BY_NAMESPACE, |p: &PodDisruptionBudget| vec![base::ns_of(p)]);
    let pdbs = pdbs_informer.store();
    let pdbs_informer = pdbs_informer.on_change(move |c: &Change<PodDisruptionBudget>| {
        if !matches!(c, Change::Deleted(_)) {
            q.add(key_of(c.object().as_ref()));
        }
    });
    let (q, ps) = (queue.clone(), pdbs.clone());
    shared
        .pods
        .index(BY_NAMESPACE, |p: &Pod| vec![base::ns_of(p)]);
    shared.pods.on_change(move |c: &Change<Pod>| {
        let pod = c.object();
        for pdb in ps.by_index(BY_NAMESPACE, &base::ns_of(pod.as_ref())) {
            let hit = pdb
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| base::selector_matches(s, pod.metadata.labels.as_ref()));
            if hit {
                q.add(key_of(pdb.as_ref()));
            }
        }
    });
    let pods = shared.pods.store();
    let mut tasks = Tasks::new();
    tasks.spawn(pdbs_informer.run());
    pdbs.wait_synced().await;
    shared.pods.start().await;
    let q = queue.clone();
    base::spawn_workers(&mut tasks, "disruption", &queue, 2, move |key| {
        let (client, pdbs, pods, q) = (client.clone(), pdbs.clone(), pods.clone(), q.clone());
        async move { reconcile(&client, &pdbs, &pods, &q, &key).await }
    });
    tasks.join().await;
}

/// The replicas of a controller (kind, name) in `ns`, following a ReplicaSet to its
/// Deployment.
async fn controller_replicas(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    cache: &mut HashMap<(String, String), Option<(String, i32)>>,
) -> Result<Option<(String, i32)>, Error> {
    let k = (kind.to_string(), name.to_string());
    if let Some(v) = cache.get(&k) {
        return Ok(v.clone());
    }
    let (group, version, plural) = match kind {
        "ReplicaSet" => ("apps", "v1", "replicasets"),
        "StatefulSet" => ("apps", "v1", "statefulsets"),
        "Deployment" => ("apps", "v1", "deployments"),
        "ReplicationController" => ("", "v1", "replicationcontrollers"),
        _ => {
            cache.insert(k, None);
            return Ok(None);
        }
    };
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj = match api.get(name).await {
        Ok(o) => o,
        Err(e) if is_not_found(&e) => {
            cache.insert(k, None);
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let mut result = Some((
        format!("{kind}/{}", obj.metadata.uid.clone().unwrap_or_default()),
        obj.data["spec"]["replicas"].as_i64().unwrap_or(1) as i32,
    ));
    if kind == "ReplicaSet"
        && let Some(owner) = obj
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true) && o.kind == "Deployment")
    {
        result = Box::pin(controller_replicas(
            client,
            ns,
            "Deployment",
            &owner.name,
            cache,
        ))
        .await?;
    }
    cache.insert(k, result.clone());
    Ok(result)
}

async fn reconcile(
    client: &kube::Client,
    pdbs: &Store<PodDisruptionBudget>,
    pods: &Store<Pod>,
    queue: &WorkQueue<String>,
    key: &str,
) -> Result<(), Error> {
    let Some(pdb) = pdbs.get(key) else {
        return Ok(());
    };
    let ns = base::ns_of(pdb.as_ref());
    let selector = pdb.spec.as_ref().and_then(|s| s.selector.clone());
    let matching: Vec<_> = match &selector {
        Some(sel) => pods
            .by_index(BY_NAMESPACE, &ns)
            .into_iter()
            .filter(|p| base::selector_matches(sel, p.metadata.labels.as_ref()) && !terminal(p))
            .collect(),
        None => Vec::new(),
    };
    let needs_controllers = !matches!(
        pdb.spec.as_ref().and_then(|s| s.min_available.as_ref()),
        Some(IntOrString::Int(_))
    );
    let controllers = if needs_controllers {
        let mut cache = HashMap::new();
        let mut seen: BTreeMap<String, i32> = BTreeMap::new();
        let mut missing = false;
        for p in &matching {
            let Some(owner) = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
            else {
                missing = true;
                break;
            };
            match controller_replicas(client, &ns, &owner.kind, &owner.name, &mut cache).await? {
                Some((id, n)) => {
                    seen.insert(id, n);
                }
                None => {
                    missing = true;
                    break;
                }
            }
        }
        (!missing).then(|| seen.values().sum())
    } else {
        None
    };
    let now = base::now_secs();
    let old = pdb.status.clone().unwrap_or_default();
    let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
    for (name, t) in old.disrupted_pods.clone().unwrap_or_default() {
        let still_there = pods
            .get(&format!("{ns}/{name}"))
            .is_some_and(|p| !base::deleting(p.as_ref()));
        if still_there && now - base::secs(&t) < DISRUPTED_TTL_SECS {
            disrupted.insert(name, t);
        }
    }
    let healthy = matching
        .iter()
        .filter(|p| {
            pod_ready(p)
                && !base::deleting(p.as_ref())
                && !disrupted.contains_key(&base::name_of(p.as_ref()))
        })
        .count() as i32;
    let generation = pdb.metadata.generation;
    let (expected, desired, allowed, reason, message) =
        match expectations(&pdb, matching.len() as i32, controllers) {
            Ok((expected, desired)) => {
                let allowed = if expected <= 0 {
                    0
                } else {
                    (healthy - desired).max(0)
                };
                let reason = if allowed > 0 {
                    "SufficientPods"
                } else {
                    "InsufficientPods"
                };
                (expected, desired, allowed, reason, String::new())
            }
            Err(e) => (0, 0, 0, "SyncFailed", e),
        };
    let status_word = if allowed > 0 { "True" } else { "False" };
    let old_cond = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")
        .cloned();
    let condition = Condition {
        type_: "DisruptionAllowed".into(),
        status: status_word.into(),
        reason: reason.into(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time: match &old_cond {
            Some(c) if c.status == status_word => c.last_transition_time.clone(),
            _ => base::now(),
        },
    };
    let new = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: allowed,
        expected_pods: expected,
        observed_generation: generation,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted.clone()),
        conditions: Some(vec![condition]),
    };
    if !disrupted.is_empty() {
        queue.add_after(
            key.to_string(),
            Duration::from_secs(DISRUPTED_TTL_SECS as u64),
        );
    }
    let unchanged = old.current_healthy == new.current_healthy
        && old.desired_healthy == new.desired_healthy
        && old.disruptions_allowed == new.disruptions_allowed
        && old.expected_pods == new.expected_pods
        && old.observed_generation == new.observed_generation
        && old.disrupted_pods.clone().unwrap_or_default() == disrupted
        && old_cond
            .is_some_and(|c| c.status == status_word && c.reason == reason && c.message == message);
    if unchanged {
        return Ok(());
    }
    let mut p = (*pdb).clone();
    p.status = Some(new);
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    match api
        .replace_status(&base::name_of(&p), &PostParams::default(), &p)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": spec})).unwrap()
    }

    #[test]
    fn desired_healthy_from_min_available_or_max_unavailable() {
        assert_eq!(
            expectations(&pdb(json!({"minAvailable": 2})), 3, None),
            Ok((3, 2))
        );
        assert_eq!(
            expectations(&pdb(json!({"minAvailable": "50%"})), 3, Some(5)),
            Ok((5, 3))
        );
        assert_eq!(
            expectations(&pdb(json!({"maxUnavailable": 1})), 3, Some(4)),
            Ok((4, 3))
        );
        assert_eq!(
            expectations(&pdb(json!({"maxUnavailable": "30%"})), 3, Some(10)),
            Ok((10, 7))
        );
        assert!(expectations(&pdb(json!({"maxUnavailable": 1})), 3, None).is_err());
    }
}
