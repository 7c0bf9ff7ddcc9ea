//! The root-CA publisher: every namespace that is not terminating has a ConfigMap
//! `kube-root-ca.crt` whose `ca.crt` is the cluster CA (kept equal to it: edits are put
//! back, deletions re-created).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, strip_managed_fields};

use std::sync::Arc;

use crate::base::{self, Error, Tasks, is_conflict};
use crate::shared::Shared;

pub const NAME: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Runs the publisher for `ca_pem` until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>, ca_pem: String) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    shared.namespaces.on_change(move |c: &Change<Namespace>| {
        if !matches!(c, Change::Deleted(_)) {
            q.add(base::name_of(c.object().as_ref()));
        }
    });
    let q = queue.clone();
    let maps = Informer::new(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={NAME}")),
    )
    .with_transform(strip_managed_fields)
    .on_change(move |c: &Change<ConfigMap>| {
        if !matches!(c, Change::Added(_)) {
            q.add(base::ns_of(c.object().as_ref()));
        }
    });
    let (ns_store, cm_store) = (shared.namespaces.store(), maps.store());
    let mut tasks = Tasks::new();
    tasks.spawn(maps.run());
    shared.namespaces.start().await;
    cm_store.wait_synced().await;
    base::spawn_workers(&mut tasks, "root-ca-cert-publisher", &queue, 2, move |ns| {
        let (client, ns_store, cm_store, pem) = (
            client.clone(),
            ns_store.clone(),
            cm_store.clone(),
            ca_pem.clone(),
        );
        async move { reconcile(&client, &ns_store, &cm_store, &pem, &ns).await }
    });
    tasks.join().await;
}

async fn reconcile(
    client: &kube::Client,
    namespaces: &Store<Namespace>,
    maps: &Store<ConfigMap>,
    pem: &str,
    ns: &str,
) -> Result<(), Error> {
    let Some(namespace) = namespaces.get(ns) else {
        return Ok(());
    };
    let terminating = base::deleting(namespace.as_ref())
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(());
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let data = BTreeMap::from([(KEY.to_string(), pem.to_string())]);
    let result = match maps.get(&format!("{ns}/{NAME}")) {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await.map(|_| ())
        }
        Some(cm) if cm.data.as_ref() != Some(&data) || cm.binary_data.is_some() => {
            let mut cm = (*cm).clone();
            cm.data = Some(data);
            cm.binary_data = None;
            api.replace(NAME, &PostParams::default(), &cm)
                .await
                .map(|_| ())
        }
        Some(_) => Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_conflict(&e) => Err(e.into()),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
