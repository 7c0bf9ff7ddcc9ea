//! The ServiceAccount controller: every namespace that is not terminating has a
//! ServiceAccount named `default` (re-created when deleted).

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::watcher;
use rkube_client::{Change, Informer, RateLimiter, Store, WorkQueue, strip_managed_fields};

use std::sync::Arc;

use crate::base::{self, Error, Tasks, is_conflict};
use crate::shared::Shared;

pub const DEFAULT_NAME: &str = "default";

/// Runs the controller until dropped.
pub async fn run(client: kube::Client, shared: Arc<Shared>) {
    let queue: WorkQueue<String> = WorkQueue::new(RateLimiter::default_controller());
    let q = queue.clone();
    shared.namespaces.on_change(move |c: &Change<Namespace>| {
        if !matches!(c, Change::Deleted(_)) {
            q.add(base::name_of(c.object().as_ref()));
        }
    });
    let q = queue.clone();
    let accounts = Informer::new(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_NAME}")),
    )
    .with_transform(strip_managed_fields)
    .on_change(move |c: &Change<ServiceAccount>| {
        if let Change::Deleted(sa) = c {
            q.add(base::ns_of(sa.as_ref()));
        }
    });
    let (ns_store, sa_store) = (shared.namespaces.store(), accounts.store());
    let mut tasks = Tasks::new();
    tasks.spawn(accounts.run());
    shared.namespaces.start().await;
    sa_store.wait_synced().await;
    base::spawn_workers(&mut tasks, "serviceaccount", &queue, 2, move |ns| {
        let (client, ns_store, sa_store) = (client.clone(), ns_store.clone(), sa_store.clone());
        async move { reconcile(&client, &ns_store, &sa_store, &ns).await }
    });
    tasks.join().await;
}

async fn reconcile(
    client: &kube::Client,
    namespaces: &Store<Namespace>,
    accounts: &Store<ServiceAccount>,
    ns: &str,
) -> Result<(), Error> {
    let Some(namespace) = namespaces.get(ns) else {
        return Ok(());
    };
    let terminating = base::deleting(namespace.as_ref())
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating || accounts.get(&format!("{ns}/{DEFAULT_NAME}")).is_some() {
        return Ok(());
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_NAME.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Ok(()),
        // The namespace began terminating meanwhile.
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
