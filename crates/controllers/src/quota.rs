//! The ResourceQuota controller: `status.hard` mirrors `spec.hard`, and `status.used`
//! holds, for every resource the quota limits, what the namespace's objects use (pods and
//! compute resources from a pod informer; counts of other resources by listing them),
//! recomputed when the quota or a pod in its namespace changes and fully every resync
//! period (which catches deletions of other objects). The API server's admission charges
//! creates to `status.used` in between (see `rkube_apiserver::admission::quota`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, key_of, strip_managed_fields};
use rkube_validation::quantity::Quantity;
use rkube_validation::usage::{self, ResourceList};
use tokio::sync::Mutex;

use crate::base::{self, Error, Tasks, is_conflict, is_not_found};
use crate::shared::Shared;

const BY_NAMESPACE: &str = "namespace";

/// The resource (group, plural) whose objects a quota resource name counts.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    let core = |p: &str| Some((String::new(), p.to_string()));
    match name {
        "pods" | "cpu" | "memory" => core("pods"),
        n if n.starts_with("requests.") && n != "requests.storage" => core("pods"),
        n if n.starts_with("limits.") => core("pods"),
        "services" | "services.loadbalancers" | "services.nodeports" => core("services"),
        "persistentvolumeclaims" | "requests.storage" => core("persistentvolumeclaims"),
        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas" => core(name),
        n => {
            let rest = n.strip_prefix("count/")?;
            match rest.split_once('.') {
                Some((plural, group)) => Some((group.to_string(), plural.to_string())),
                None => core(rest),
            }
        }
    }
}

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>, resync: Duration) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    let quotas_informer = Informer::new(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_transform(strip_managed_fields)
    .with_index(BY_NAMESPACE, |q: &ResourceQuota| vec![base::ns_of(q)]);
    let quotas = quotas_informer.store();
    // As upstream: a quota is recounted when it is new or its spec changed, not when only
    // its usage did — usage changes are mostly the API server charging creates, which a
    // recount from a pod cache that has not seen those pods yet would undo.
    let quotas_informer = quotas_informer.on_change(move |c: &Change<ResourceQuota>| {
        let recount = match c {
            Change::Added(_) => true,
            Change::Deleted(_) => false,
            Change::Updated { old, new } => {
                let hard = |q: &ResourceQuota| q.spec.as_ref().and_then(|s| s.hard.clone());
                hard(old) != hard(new)
                    || new.status.as_ref().and_then(|s| s.hard.clone()) != hard(new)
            }
        };
        if recount {
            q.add(key_of(c.object().as_ref()));
        }
    });
    let (q, qs) = (queue.clone(), quotas.clone());
    shared
        .pods
        .index(BY_NAMESPACE, |p: &Pod| vec![base::ns_of(p)]);
    // Creates are charged by the API server's admission as they happen; the controller
    // recounts when usage is released — a pod deleted or finished — as upstream's
    // replenishment does (and on the periodic resync). Recounting on every pod change would
    // race the charges of creates its cache has not seen yet, and undo them.
    shared.pods.on_change(move |c: &Change<Pod>| {
        let released = match c {
            Change::Added(_) => false,
            Change::Deleted(_) => true,
            Change::Updated { old, new } => {
                (terminal(new) && !terminal(old))
                    || (new.metadata.deletion_timestamp.is_some()
                        && old.metadata.deletion_timestamp.is_none())
            }
        };
        if released {
            for k in qs.index_keys(BY_NAMESPACE, &base::ns_of(c.object().as_ref())) {
                q.add(k);
            }
        }
    });
    let pods = shared.pods.store();
    let mut tasks = Tasks::new();
    tasks.spawn(quotas_informer.run());
    quotas.wait_synced().await;
    shared.pods.start().await;
    let kinds: Arc<Mutex<HashMap<String, ApiResource>>> = Arc::default();
    {
        let (client, quotas, pods) = (client.clone(), quotas.clone(), pods.clone());
        base::spawn_workers(&mut tasks, "resourcequota", &queue, 2, move |key| {
            let (client, quotas, pods, kinds) =
                (client.clone(), quotas.clone(), pods.clone(), kinds.clone());
            async move { reconcile(&client, &quotas, &pods, &kinds, &key).await }
        });
    }
    let (q, qs) = (queue.clone(), quotas.clone());
    tasks.spawn(async move {
        loop {
            tokio::time::sleep(resync).await;
            for k in qs.keys() {
                q.add(k);
            }
        }
    });
    tasks.join().await;
}

/// A pod whose containers no longer run (it uses no compute quota).
fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

async fn api_resource(
    client: &kube::Client,
    kinds: &Mutex<HashMap<String, ApiResource>>,
    group: &str,
    plural: &str,
) -> Result<Option<ApiResource>, Error> {
    let id = format!("{plural}.{group}");
    if let Some(ar) = kinds.lock().await.get(&id) {
        return Ok(Some(ar.clone()));
    }
    let g = match kube::discovery::group(client, group).await {
        Ok(g) => g,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let found = g
        .recommended_resources()
        .into_iter()
        .find(|(ar, _)| ar.plural == plural)
        .map(|(ar, _)| ar);
    if let Some(ar) = &found {
        kinds.lock().await.insert(id, ar.clone());
    }
    Ok(found)
}

async fn reconcile(
    client: &kube::Client,
    quotas: &Store<ResourceQuota>,
    pods: &Store<Pod>,
    kinds: &Mutex<HashMap<String, ApiResource>>,
    key: &str,
) -> Result<(), Error> {
    let Some(quota) = quotas.get(key) else {
        return Ok(());
    };
    let ns = base::ns_of(quota.as_ref());
    let hard_json = serde_json::to_value(quota.spec.as_ref().and_then(|s| s.hard.clone()))?;
    let hard = usage::parse_list(&hard_json);
    let quota_json = serde_json::to_value(quota.as_ref())?;
    // Which resources to count, and what each object of them uses.
    let mut needed: BTreeMap<(String, String), ()> = BTreeMap::new();
    for name in hard.keys() {
        if let Some(r) = counted_resource(name) {
            needed.insert(r, ());
        }
    }
    let mut used = ResourceList::new();
    for (group, plural) in needed.keys() {
        let objects: Vec<serde_json::Value> = if group.is_empty() && plural == "pods" {
            pods.by_index(BY_NAMESPACE, &ns)
                .iter()
                .filter_map(|p| serde_json::to_value(p.as_ref()).ok())
                .collect()
        } else {
            let Some(ar) = api_resource(client, kinds, group, plural).await? else {
                continue;
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            api.list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect()
        };
        for o in &objects {
            if usage::quota_covers(&quota_json, group, plural, o) {
                usage::add_all(&mut used, &usage::object_usage(group, plural, o));
            }
        }
    }
    let used: BTreeMap<String, K8sQuantity> = hard
        .iter()
        .map(|(name, q)| {
            let u = used
                .get(name)
                .copied()
                .unwrap_or_else(|| Quantity::zero(q.format()));
            (name.clone(), K8sQuantity(u.canonical()))
        })
        .collect();
    let hard_status: BTreeMap<String, K8sQuantity> = hard
        .iter()
        .map(|(k, v)| (k.clone(), K8sQuantity(v.canonical())))
        .collect();
    let status = quota.status.clone().unwrap_or_default();
    // Equal when every amount is the same number, however it is written.
    let same = |a: &Option<BTreeMap<String, K8sQuantity>>, b: &BTreeMap<String, K8sQuantity>| {
        let nanos = |q: &K8sQuantity| Quantity::parse(&q.0).map(|q| q.nanos()).ok();
        let a = a.clone().unwrap_or_default();
        a.len() == b.len()
            && a.iter().all(|(k, v)| {
                b.get(k)
                    .is_some_and(|w| nanos(v).is_some() && nanos(v) == nanos(w))
            })
    };
    if same(&status.hard, &hard_status) && same(&status.used, &used) {
        return Ok(());
    }
    let mut q = (*quota).clone();
    let st = q.status.get_or_insert_with(Default::default);
    st.hard = Some(hard_status);
    st.used = Some(used);
    let api: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    match api
        .replace_status(&base::name_of(&q), &PostParams::default(), &q)
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

    #[test]
    fn quota_names_map_to_resources() {
        let r = |n: &str| counted_resource(n).map(|(g, p)| format!("{p}.{g}"));
        assert_eq!(r("pods").as_deref(), Some("pods."));
        assert_eq!(r("requests.cpu").as_deref(), Some("pods."));
        assert_eq!(
            r("requests.storage").as_deref(),
            Some("persistentvolumeclaims.")
        );
        assert_eq!(
            r("count/deployments.apps").as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(r("count/configmaps").as_deref(), Some("configmaps."));
        assert_eq!(r("services.nodeports").as_deref(), Some("services."));
        assert_eq!(r("nonsense"), None);
    }
}
