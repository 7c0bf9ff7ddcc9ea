//! ReplicaSet and ReplicationController: scale up and down through the API, events,
//! status counts, orphan adoption and release.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::*;

fn rs(name: &str, replicas: i32) -> ReplicaSet {
    apply(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
            },
        },
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_adopts_and_reports_status() {
    let c = cluster(2).await;
    let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    // An orphan matching the selector is adopted rather than a fifth pod created.
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let orphan: Pod = apply(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }));
    pods_api
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    api.create(&PostParams::default(), &rs("web", 4))
        .await
        .unwrap();

    let status = eventually("4 ready replicas", 60, async || {
        let r = api.get("web").await.ok()?;
        let s = r.status?;
        (s.ready_replicas == Some(4) && s.available_replicas == Some(4)).then_some(s)
    })
    .await;
    assert_eq!(status.replicas, 4);
    assert_eq!(status.fully_labeled_replicas, Some(4));
    assert_eq!(status.observed_generation, Some(1));
    let owned = pods(&c.client, "default", "web").await;
    assert_eq!(owned.len(), 4);
    let uid = api.get("web").await.unwrap().metadata.uid.unwrap();
    for p in &owned {
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("ReplicaSet", uid.as_str(), Some(true))
        );
        let name = p.metadata.name.as_deref().unwrap();
        assert!(
            name == "orphan" || (name.starts_with("web-") && name.len() == "web-".len() + 5),
            "{name}"
        );
    }
    let evs = events(&c.client, "default", "web").await;
    let created: Vec<_> = evs.iter().filter(|e| e.0 == "SuccessfulCreate").collect();
    assert_eq!(created.len(), 3, "{evs:?}");
    assert!(
        created
            .iter()
            .all(|e| e.1.starts_with("Created pod: web-") && e.2 == "replicaset-controller")
    );

    // Scale down to 1; a pod whose labels no longer match is released, and replaced.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("1 replica", 60, async || {
        let s = api.get("web").await.ok()?.status?;
        let live: Vec<_> = pods(&c.client, "default", "web")
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        (s.replicas == 1 && s.observed_generation == Some(2) && live.len() == 1).then_some(())
    })
    .await;
    let evs = events(&c.client, "default", "web").await;
    assert_eq!(
        evs.iter().filter(|e| e.0 == "SuccessfulDelete").count(),
        3,
        "{evs:?}"
    );
    let keep = pods(&c.client, "default", "web")
        .await
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .unwrap();
    let kept = keep.metadata.name.clone().unwrap();
    pods_api
        .patch(
            &kept,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .unwrap();
    eventually("release and replacement", 60, async || {
        let p = pods_api.get(&kept).await.ok()?;
        let released = p
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|r| r.is_empty());
        let live = pods(&c.client, "default", "web")
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count();
        (released && live == 1).then_some(())
    })
    .await;

    // kubectl sees the counts.
    let out = kubectl(&c, &["get", "rs", "web", "--no-headers"]);
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "1", "1", "1"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_replicas() {
    let c = cluster(1).await;
    let api: Api<ReplicationController> = Api::namespaced(c.client.clone(), "default");
    let rc: ReplicationController = apply(json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 3,
            "selector": {"app": "legacy"},
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
            },
        },
    }));
    api.create(&PostParams::default(), &rc).await.unwrap();
    eventually("3 ready", 60, async || {
        let s = api.get("legacy").await.ok()?.status?;
        (s.ready_replicas == Some(3) && s.available_replicas == Some(3)).then_some(())
    })
    .await;
    // A deleted pod is replaced.
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let victim = pods(&c.client, "default", "legacy").await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    pods_api.delete(&victim, &Default::default()).await.unwrap();
    eventually("replacement", 60, async || {
        let live: Vec<_> = pods(&c.client, "default", "legacy")
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && ready(p))
            .collect();
        (live.len() == 3
            && live
                .iter()
                .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())))
        .then_some(())
    })
    .await;
    let evs = events(&c.client, "default", "legacy").await;
    assert_eq!(
        evs.iter()
            .filter(|e| e.0 == "SuccessfulCreate" && e.2 == "replication-controller")
            .count(),
        4,
        "{evs:?}"
    );
}

/// Pod creates that keep failing (a quota of zero pods) are reported as upstream's event
/// correlator does: each attempt's message names its own generated pod, so the first nine
/// are Events of their own, and from the tenth on they fold into ONE
/// `(combined from similar events): …` Event whose count grows — not one object per attempt.
/// The ReplicaSet carries the ReplicaFailure condition with the API server's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_creates_are_aggregated_into_one_counted_event() {
    use k8s_openapi::api::core::v1::Event;
    let c = cluster(1).await;
    pod_quota(&c.client, "nopods", 0).await;
    let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    api.create(&PostParams::default(), &rs("capped", 1))
        .await
        .unwrap();

    let events_api: Api<Event> = Api::namespaced(c.client.clone(), "default");
    let failed = async || -> Vec<Event> {
        events_api
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some("capped")
                    && e.reason.as_deref() == Some("FailedCreate")
            })
            .collect()
    };
    // Each change of the ReplicaSet is a sync, and each sync one more failed create.
    let mut poke = 0;
    let api_ = api.clone();
    let mut nudge = async move || {
        poke += 1;
        let _ = api_
            .patch(
                "capped",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"poke": poke.to_string()}}})),
            )
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let combined = eventually(
        "an aggregated FailedCreate event counted 3 times",
        90,
        async || {
            let evs = failed().await;
            let agg = evs.iter().find(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("(combined from similar events): "))
            });
            if let Some(agg) = agg
                && agg.count >= Some(3)
            {
                return Some((agg.clone(), evs));
            }
            nudge().await;
            None
        },
    )
    .await;
    let (agg, evs) = combined;
    assert_eq!(
        evs.len(),
        10,
        "nine single events and one aggregate: {evs:#?}"
    );
    let attempts: i32 = evs.iter().map(|e| e.count.unwrap_or(1)).sum();
    assert!(
        attempts >= 12,
        "{attempts} attempts in {} objects",
        evs.len()
    );
    let msg = agg.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with("(combined from similar events): Error creating: pods \"capped-")
            && msg.ends_with(
                "is forbidden: exceeded quota: nopods, requested: pods=1, used: pods=0, limited: pods=0"
            ),
        "{msg}"
    );
    assert!(agg.last_timestamp > agg.first_timestamp, "{agg:?}");
    for e in &evs {
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(
            e.source.as_ref().and_then(|s| s.component.as_deref()),
            Some("replicaset-controller")
        );
    }
    // The same Event object is updated, not replaced.
    let agg_name = agg.metadata.name.clone().unwrap();
    let before = agg.count.unwrap_or(0);
    eventually("the aggregate's count to grow", 60, async || {
        let e = events_api.get(&agg_name).await.ok()?;
        if e.count > Some(before) {
            return Some(());
        }
        nudge().await;
        None
    })
    .await;
    assert_eq!(failed().await.len(), 10);

    let cond = api
        .get("capped")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap();
    let rf = cond.iter().find(|c| c.type_ == "ReplicaFailure").unwrap();
    assert_eq!(
        (rf.status.as_str(), rf.reason.as_deref()),
        ("True", Some("FailedCreate"))
    );
    assert!(
        rf.message
            .as_deref()
            .is_some_and(|m| m.contains("is forbidden: exceeded quota: nopods")),
        "{rf:?}"
    );
}
