//! DaemonSets: one pod per eligible node — five nodes covered, the tainted sixth not —
//! bound through their node affinity; status counts; a rolling update replaces every pod
//! within maxUnavailable.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covers_untainted_nodes_and_rolls() {
    let c = cluster(6).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    eventually("6 nodes", 30, async || {
        (nodes.list(&Default::default()).await.ok()?.items.len() == 6).then_some(())
    })
    .await;
    nodes
        .patch(
            "hollow-5",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})),
        )
        .await
        .unwrap();
    let api: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let ds: DaemonSet = apply(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "agent:1"}]},
            },
        },
    }));
    api.create(&PostParams::default(), &ds).await.unwrap();
    let st = eventually("5 ready", 60, async || {
        let s = api.get("agent").await.ok()?.status?;
        (s.number_ready == 5 && s.number_available == Some(5)).then_some(s)
    })
    .await;
    assert_eq!(st.desired_number_scheduled, 5);
    assert_eq!(st.current_number_scheduled, 5);
    assert_eq!(st.updated_number_scheduled, Some(5));
    assert_eq!(st.number_misscheduled, 0);
    let on: BTreeSet<String> = pods(&c.client, "default", "agent")
        .await
        .iter()
        .map(|p| p.spec.as_ref().unwrap().node_name.clone().unwrap())
        .collect();
    let expected: BTreeSet<String> = (0..5).map(|i| format!("hollow-{i}")).collect();
    assert_eq!(on, expected);
    let p = &pods(&c.client, "default", "agent").await[0];
    let tolerations = p.spec.as_ref().unwrap().tolerations.as_ref().unwrap();
    assert!(tolerations.iter().any(
        |t| t.key.as_deref() == Some("node.kubernetes.io/unreachable")
            && t.effect.as_deref() == Some("NoExecute")
    ));

    // Rolling update to a new image: every node ends with exactly one new pod.
    api.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}})),
    )
    .await
    .unwrap();
    eventually("rolled", 90, async || {
        let s = api.get("agent").await.ok()?.status?;
        let live: Vec<_> = pods(&c.client, "default", "agent")
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let all_new = live
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("agent:2"));
        (s.updated_number_scheduled == Some(5)
            && s.number_available == Some(5)
            && s.observed_generation == Some(2)
            && live.len() == 5
            && all_new)
            .then_some(())
    })
    .await;
    let out = kubectl(
        &c,
        &["rollout", "status", "daemonset/agent", "--timeout=30s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");

    // Untainting the node adds a pod there.
    nodes
        .patch(
            "hollow-5",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    eventually("6 scheduled", 60, async || {
        let s = api.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 6 && s.number_ready == 6).then_some(())
    })
    .await;
}
