//! A StatefulSet's `persistentVolumeClaimRetentionPolicy` carried out by the StatefulSet
//! controller and the real garbage collector together: with `Delete`, claims of pods scaled
//! away are owned by those pods and collected with them, and the remaining claims are owned
//! by the set and collected when it is deleted; with the default `Retain`, claims outlive
//! both.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rkube_e2e::{Cluster, eventually};
use serde_json::json;

fn set(name: &str, replicas: i32, policy: serde_json::Value) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "persistentVolumeClaimRetentionPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "main", "image": "registry.local/db:1"}],
                    "terminationGracePeriodSeconds": 1,
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "later",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }],
        },
    }))
    .expect("statefulset")
}

/// (kind, uid) of each ownerReference of the claim, or None if it is gone.
async fn owners(claims: &Api<PersistentVolumeClaim>, name: &str) -> Option<Vec<(String, String)>> {
    let c = claims.get_opt(name).await.ok()??;
    Some(
        c.metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.kind, r.uid))
            .collect(),
    )
}

async fn running(pods: &Api<Pod>, app: &str) -> usize {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_retention_policy_with_the_garbage_collector() {
    let c = Cluster::start(2).await;
    // Claims of a WaitForFirstConsumer class do not hold up scheduling (no provisioner here).
    let classes: Api<StorageClass> = Api::all(c.client.clone());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "later"},
        "provisioner": "example.com/none",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .expect("class");
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");

    sets.create(
        &PostParams::default(),
        &set(
            "db",
            3,
            json!({"whenDeleted": "Delete", "whenScaled": "Delete"}),
        ),
    )
    .await
    .unwrap();
    sets.create(&PostParams::default(), &set("keep", 2, json!({})))
        .await
        .unwrap();
    eventually("5 pods running", 90, async || {
        (running(&pods, "db").await == 3 && running(&pods, "keep").await == 2).then_some(())
    })
    .await;
    let db_uid = sets.get("db").await.unwrap().metadata.uid.unwrap();
    // whenDeleted: Delete → every claim is owned by the set (not as its controller).
    for i in 0..3 {
        let claim = claims.get(&format!("data-db-{i}")).await.unwrap();
        let refs = claim.metadata.owner_references.unwrap_or_default();
        assert_eq!(refs.len(), 1, "data-db-{i}: {refs:?}");
        assert_eq!(
            (
                refs[0].kind.as_str(),
                refs[0].uid.as_str(),
                refs[0].controller
            ),
            ("StatefulSet", db_uid.as_str(), None)
        );
    }
    // Retain: not owned.
    for i in 0..2 {
        assert_eq!(
            owners(&claims, &format!("data-keep-{i}")).await,
            Some(vec![])
        );
    }

    // Scale both down to 1: db's claims for ordinals 1 and 2 go with their pods.
    for name in ["db", "keep"] {
        sets.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    }
    eventually("scaled-down claims collected", 90, async || {
        (owners(&claims, "data-db-1").await.is_none()
            && owners(&claims, "data-db-2").await.is_none())
        .then_some(())
    })
    .await;
    eventually("keep scaled down", 60, async || {
        (running(&pods, "keep").await == 1 && pods.get_opt("keep-1").await.ok()?.is_none())
            .then_some(())
    })
    .await;
    assert_eq!(
        owners(&claims, "data-db-0").await,
        Some(vec![("StatefulSet".to_string(), db_uid.clone())])
    );
    assert_eq!(
        owners(&claims, "data-keep-1").await,
        Some(vec![]),
        "Retain keeps the claim"
    );

    // Scale db back up: ordinal 1 gets a fresh claim owned by the set again.
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    eventually("db-1 back with a new claim", 90, async || {
        (running(&pods, "db").await == 2
            && owners(&claims, "data-db-1").await?
                == vec![("StatefulSet".to_string(), db_uid.clone())])
        .then_some(())
    })
    .await;

    // Deleting the sets: db's claims are collected with it, keep's stay.
    for name in ["db", "keep"] {
        sets.delete(name, &DeleteParams::background())
            .await
            .unwrap();
    }
    eventually("db's pods and claims collected", 90, async || {
        let pods_left = pods
            .list(&ListParams::default().labels("app=db"))
            .await
            .ok()?
            .items
            .len();
        (pods_left == 0
            && owners(&claims, "data-db-0").await.is_none()
            && owners(&claims, "data-db-1").await.is_none())
        .then_some(())
    })
    .await;
    eventually("keep's pods collected", 90, async || {
        let l = pods
            .list(&ListParams::default().labels("app=keep"))
            .await
            .ok()?;
        l.items.is_empty().then_some(())
    })
    .await;
    for i in 0..2 {
        assert!(
            owners(&claims, &format!("data-keep-{i}")).await.is_some(),
            "data-keep-{i}"
        );
    }
}
