//! StatefulSets: pods appear strictly in order, each only after its predecessors are
//! Ready; stable names, hostnames and PVCs; RollingUpdate with a partition updates from the
//! highest ordinal down; scale down removes the highest ordinals and keeps the claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_pods_claims_partitioned_update_and_scale_down() {
    let c = cluster(2).await;
    // Record, for every pod's first appearance, whether all lower ordinals were Ready.
    let ready_map: Arc<Mutex<HashMap<String, bool>>> = Default::default();
    let violations: Arc<Mutex<Vec<String>>> = Default::default();
    let (rm, vs) = (ready_map.clone(), violations.clone());
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let watch = tokio::spawn(async move {
        let stream = watcher(pods_api, watcher::Config::default().labels("app=db"));
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                let name = p.metadata.name.clone().unwrap();
                let mut rm = rm.lock().unwrap();
                if !rm.contains_key(&name) {
                    let ord: usize = name.trim_start_matches("db-").parse().unwrap();
                    for lower in 0..ord {
                        if rm.get(&format!("db-{lower}")) != Some(&true) {
                            vs.lock()
                                .unwrap()
                                .push(format!("{name} before db-{lower} was ready"));
                        }
                    }
                }
                rm.insert(name, ready(&p) && p.metadata.deletion_timestamp.is_none());
            }
        }
    });
    let api: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let set: StatefulSet = apply(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "db:1"}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }));
    api.create(&PostParams::default(), &set).await.unwrap();
    let st = eventually("3 ready", 60, async || {
        let s = api.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3)
            && s.current_revision == s.update_revision
            && s.current_replicas == Some(3))
        .then_some(s)
    })
    .await;
    assert!(
        violations.lock().unwrap().is_empty(),
        "{:?}",
        violations.lock().unwrap()
    );
    assert_eq!(st.replicas, 3);
    let rev1 = st.update_revision.clone().unwrap();
    assert!(rev1.starts_with("db-"));
    let revs: Api<ControllerRevision> = Api::namespaced(c.client.clone(), "default");
    assert_eq!(revs.get(&rev1).await.unwrap().revision, 1);

    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let p1 = pods_api.get("db-1").await.unwrap();
    let spec = p1.spec.as_ref().unwrap();
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("db-1"), Some("db"))
    );
    let labels = p1.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "db-1");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(labels["controller-revision-hash"], rev1);
    let vol = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-db-1"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    for i in 0..3 {
        let pvc = pvcs.get(&format!("data-db-{i}")).await.unwrap();
        assert_eq!(pvc.metadata.labels.as_ref().unwrap()["app"], "db");
        assert!(
            pvc.metadata.owner_references.is_none(),
            "Retain: claims are not owned"
        );
    }
    let evs = events(&c.client, "default", "db").await;
    assert!(
        evs.iter()
            .any(|e| e.0 == "SuccessfulCreate"
                && e.1 == "create Pod db-0 in StatefulSet db successful"),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| e.1 == "create Claim data-db-0 Pod db-0 in StatefulSet db success"),
        "{evs:?}"
    );

    // Partitioned rolling update: only ordinals >= 1 move to the new revision.
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            "template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}},
        }})),
    )
    .await
    .unwrap();
    let st = eventually("2 updated", 60, async || {
        let s = api.get("db").await.ok()?.status?;
        (s.updated_replicas == Some(2)
            && s.ready_replicas == Some(3)
            && s.observed_generation == Some(2))
        .then_some(s)
    })
    .await;
    let rev2 = st.update_revision.clone().unwrap();
    assert_ne!(rev2, rev1);
    assert_eq!(st.current_revision.as_deref(), Some(rev1.as_str()));
    let image = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(image(&pods_api.get("db-0").await.unwrap()), "db:1");
    assert_eq!(image(&pods_api.get("db-1").await.unwrap()), "db:2");
    assert_eq!(image(&pods_api.get("db-2").await.unwrap()), "db:2");

    // Scale down to 1: the highest ordinals go, the claims stay.
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("1 pod", 60, async || {
        let l = pods_api
            .list(&ListParams::default().labels("app=db"))
            .await
            .ok()?
            .items;
        (l.len() == 1 && l[0].metadata.name.as_deref() == Some("db-0")).then_some(())
    })
    .await;
    assert_eq!(pvcs.list(&Default::default()).await.unwrap().items.len(), 3);
    watch.abort();
}
