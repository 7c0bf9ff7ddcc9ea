//! Objects every cluster has from the start: the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`; the `kubernetes` Service in `default` (the first
//! address of the service range, port 443) with its Endpoints and EndpointSlice pointing at
//! this API server; and the system PriorityClasses. Made if missing, on every start.

use std::time::Duration;

use rkube_api::meta;
use rkube_api::resources::{self, Resource};
use rkube_store::{Error, WriteOptions};
use serde_json::{Value, json};

use crate::{State, objects};

async fn ensure(
    state: &State,
    resource: &Resource,
    namespace: Option<&str>,
    mut obj: Value,
) -> Result<(), Error> {
    let name = meta::name(&obj).unwrap_or("").to_string();
    let key = resource.key(namespace, &name);
    if state.store.get(&key).await?.is_some() {
        return Ok(());
    }
    let m = meta::meta_mut(&mut obj);
    m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
    m.insert("creationTimestamp".into(), meta::now_rfc3339().into());
    let _ = crate::validation::default(resource, &mut obj);
    crate::validation::prepare_for_create(resource, &mut obj);
    match state
        .store
        .create(&key, objects::to_storage(&mut obj), WriteOptions::default())
        .await
    {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn builtin(group: &str, plural: &str) -> &'static Resource {
    // Every bootstrap object's group is served at v1.
    resources::find(group, "v1", plural).expect("built-in resource")
}

async fn run_once(state: &State) -> Result<(), Error> {
    let namespaces = builtin("", "namespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            state,
            namespaces,
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {}}),
        )
        .await?;
    }
    let (ip, port) = (state.config.advertise_address, state.config.advertise_port);
    let services = builtin("", "services");
    let key = services.key(Some("default"), "kubernetes");
    if state.store.get(&key).await?.is_none() {
        let cluster_ip = state.allocators.service_cidr.nth(1);
        // Claim the address (a restart finds it claimed already).
        let _ = state
            .allocators
            .allocate_ip(Some(cluster_ip), "default/kubernetes")
            .await;
        ensure(
            state,
            services,
            Some("default"),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {
                    "type": "ClusterIP", "clusterIP": cluster_ip.to_string(),
                    "clusterIPs": [cluster_ip.to_string()], "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                },
            }),
        )
        .await?;
    }
    ensure(
        state,
        builtin("", "endpoints"),
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip.to_string()}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    ensure(
        state,
        builtin("discovery.k8s.io", "endpointslices"),
        Some("default"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
    )
    .await?;
    let pcs = builtin("scheduling.k8s.io", "priorityclasses");
    for (name, value, desc) in [
        (
            "system-node-critical",
            2_000_001_000i64,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000i64,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        ensure(
            state,
            pcs,
            None,
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                   "metadata": {"name": name}, "value": value, "description": desc,
                   "preemptionPolicy": "PreemptLowerPriority"}),
        )
        .await?;
    }
    Ok(())
}

/// Makes the bootstrap objects, retrying until the store accepts them.
pub async fn run(state: &State) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match run_once(state).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "bootstrap failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
