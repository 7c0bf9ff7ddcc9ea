//! Deployments: a RollingUpdate observed by a watch never exceeds maxSurge or
//! maxUnavailable; rollback (`kubectl rollout undo`) restores the old template and
//! revisions; pause/resume; Recreate; progress deadline; history limit; `kubectl rollout
//! status|history|restart`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::*;

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }))
}

async fn complete(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually("rollout complete", 90, async || {
        let d = api.get(name).await.ok()?;
        let s = d.status.clone()?;
        let progressed = s.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        });
        (s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
            && progressed)
            .then_some(d)
    })
    .await
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Live (not terminating, not finished) and live-and-ready pod counts as a watch sees them.
#[derive(Default)]
struct Bounds {
    pods: HashMap<String, (bool, bool)>,
    max_live: usize,
    min_ready: usize,
}

fn track(client: kube::Client, app: &str) -> (Arc<Mutex<Bounds>>, tokio::task::JoinHandle<()>) {
    let bounds = Arc::new(Mutex::new(Bounds {
        min_ready: usize::MAX,
        ..Default::default()
    }));
    let b = bounds.clone();
    let api: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    let task = tokio::spawn(async move {
        let stream = watcher(api, cfg);
        futures::pin_mut!(stream);
        let mut listed = false;
        while let Some(Ok(ev)) = stream.next().await {
            let mut b = b.lock().unwrap();
            let mut seen = |p: Pod, gone: bool| {
                let live = !gone
                    && p.metadata.deletion_timestamp.is_none()
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    );
                b.pods
                    .insert(p.metadata.name.clone().unwrap(), (live, live && ready(&p)));
            };
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => seen(p, false),
                watcher::Event::Delete(p) => seen(p, true),
                watcher::Event::InitDone => listed = true,
                watcher::Event::Init => {}
            }
            if !listed {
                continue;
            }
            let live = b.pods.values().filter(|v| v.0).count();
            let ready = b.pods.values().filter(|v| v.1).count();
            b.max_live = b.max_live.max(live);
            b.min_ready = b.min_ready.min(ready);
        }
    });
    (bounds, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_bounds_rollback_and_history() {
    let c = cluster(3).await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}});
    let mut d = deployment("web", 6, "nginx:1", strategy);
    d.metadata.annotations = Some(
        [(
            "kubernetes.io/change-cause".to_string(),
            "first".to_string(),
        )]
        .into(),
    );
    api.create(&PostParams::default(), &d).await.unwrap();
    let d1 = complete(&api, "web", 6).await;
    assert_eq!(
        d1.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );
    let avail = d1
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Available")
        .unwrap()
        .clone();
    assert_eq!(
        (avail.status.as_str(), avail.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );

    // Watch every pod change during the rollout to the new image.
    let (bounds, watch) = track(c.client.clone(), "web");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    kubectl(&c, &["set", "image", "deployment/web", "c=nginx:2"]);
    kubectl(
        &c,
        &[
            "annotate",
            "deployment/web",
            "kubernetes.io/change-cause=second",
            "--overwrite",
        ],
    );
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let d2 = complete(&api, "web", 6).await;
    watch.abort();
    {
        let b = bounds.lock().unwrap();
        assert!(
            b.max_live <= 6 + 2,
            "more than replicas+maxSurge pods: {}",
            b.max_live
        );
        assert!(
            b.min_ready >= 6 - 1,
            "fewer than replicas-maxUnavailable ready: {}",
            b.min_ready
        );
    }
    assert_eq!(image_of(&d2), "nginx:2");
    assert_eq!(
        d2.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let rses: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let list = rses
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 2);
    for rs in &list {
        let hash = &rs.metadata.labels.as_ref().unwrap()["pod-template-hash"];
        assert_eq!(rs.metadata.name.as_deref().unwrap(), format!("web-{hash}"));
        assert_eq!(
            rs.spec
                .as_ref()
                .unwrap()
                .selector
                .match_labels
                .as_ref()
                .unwrap()["pod-template-hash"],
            *hash
        );
    }
    let evs = events(&c.client, "default", "web").await;
    let scaling: Vec<_> = evs
        .iter()
        .filter(|e| e.0 == "ScalingReplicaSet")
        .map(|e| e.1.clone())
        .collect();
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with("Scaled up replica set web-") && m.ends_with("to 6 from 0")),
        "{scaling:?}"
    );
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with("Scaled down replica set web-")),
        "{scaling:?}"
    );
    assert!(evs.iter().all(|e| e.2 == "deployment-controller"));

    // History lists both revisions with their change causes; undo restores revision 1's
    // template as revision 3.
    let hist = kubectl(&c, &["rollout", "history", "deployment/web"]);
    assert!(
        hist.contains("1         first") && hist.contains("2         second"),
        "{hist}"
    );
    kubectl(&c, &["rollout", "undo", "deployment/web"]);
    let d3 = eventually("undo applied", 30, async || {
        let d = api.get("web").await.ok()?;
        (image_of(&d) == "nginx:1").then_some(d)
    })
    .await;
    assert_eq!(image_of(&d3), "nginx:1");
    let d3 = complete(&api, "web", 6).await;
    assert_eq!(
        d3.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    let list = rses
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 2, "the old ReplicaSet was reused");
    let back = list
        .iter()
        .find(|r| {
            r.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"] == "3"
        })
        .unwrap();
    assert_eq!(
        back.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(6));
    let live: Vec<Pod> = pods(&c.client, "default", "web")
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(live.len(), 6);
    assert!(
        live.iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1"))
    );

    // Scaling mid-state: replicas follow, the revision does not change.
    kubectl(&c, &["scale", "deployment/web", "--replicas=2"]);
    let d4 = complete(&api, "web", 2).await;
    assert_eq!(
        d4.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_restart_and_history_limit() {
    let c = cluster(2).await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let mut d = deployment("app", 2, "nginx:1", json!({"type": "RollingUpdate"}));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    api.create(&PostParams::default(), &d).await.unwrap();
    complete(&api, "app", 2).await;

    kubectl(&c, &["rollout", "pause", "deployment/app"]);
    kubectl(&c, &["set", "image", "deployment/app", "c=nginx:2"]);
    let paused = eventually("paused condition", 30, async || {
        let d = api.get("app").await.ok()?;
        let cond = d
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Progressing")?
            .clone();
        (cond.reason.as_deref() == Some("DeploymentPaused")).then_some(cond)
    })
    .await;
    assert_eq!(
        (paused.status.as_str(), paused.message.as_deref()),
        ("Unknown", Some("Deployment is paused"))
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let rses: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    assert_eq!(
        rses.list(&ListParams::default().labels("app=app"))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "no rollout while paused"
    );

    kubectl(&c, &["rollout", "resume", "deployment/app"]);
    let d2 = complete(&api, "app", 2).await;
    assert_eq!(image_of(&d2), "nginx:2");
    kubectl(&c, &["rollout", "restart", "deployment/app"]);
    let out = kubectl(
        &c,
        &["rollout", "status", "deployment/app", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let d3 = complete(&api, "app", 2).await;
    assert_eq!(
        d3.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    // revisionHistoryLimit 1: the new ReplicaSet and one old one.
    eventually("old ReplicaSets cleaned up", 30, async || {
        let n = rses
            .list(&ListParams::default().labels("app=app"))
            .await
            .ok()?
            .items
            .len();
        (n == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_and_progress_deadline() {
    let c = cluster(2).await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("rec", 3, "nginx:1", json!({"type": "Recreate"})),
    )
    .await
    .unwrap();
    complete(&api, "rec", 3).await;
    // Recreate: no new pod exists while an old one is live.
    let (bounds, watch) = track(c.client.clone(), "rec");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    kubectl(&c, &["set", "image", "deployment/rec", "c=nginx:2"]);
    complete(&api, "rec", 3).await;
    watch.abort();
    assert!(bounds.lock().unwrap().max_live <= 3);

    // Pods that can never run: the rollout times out after progressDeadlineSeconds.
    let mut d = deployment("stuck", 1, "nginx:1", json!({"type": "RollingUpdate"}));
    let spec = d.spec.as_mut().unwrap();
    spec.progress_deadline_seconds = Some(2);
    spec.template.spec.as_mut().unwrap().node_selector =
        Some([("nowhere".to_string(), "true".to_string())].into());
    api.create(&PostParams::default(), &d).await.unwrap();
    let cond = eventually("deadline exceeded", 60, async || {
        let d = api.get("stuck").await.ok()?;
        let c = d
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Progressing")?
            .clone();
        (c.reason.as_deref() == Some("ProgressDeadlineExceeded")).then_some(c)
    })
    .await;
    assert_eq!(cond.status, "False");
    assert!(
        cond.message
            .as_deref()
            .unwrap()
            .ends_with("has timed out progressing."),
        "{cond:?}"
    );
    let out = std::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&c.server.kubeconfig)
        .args(["rollout", "status", "deployment/stuck", "--timeout=20s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeded its progress deadline"));
    let _ = api
        .patch("stuck", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
}

/// A ReplicaSet whose pod creates a quota refuses carries ReplicaFailure (FailedCreate);
/// the Deployment shows the same condition, reason and message, and drops it once the
/// ReplicaSet's clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_failure_follows_the_replica_set() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let c = cluster(1).await;
    pod_quota(&c.client, "two", 2).await;
    let api: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("capped", 3, "web:1", json!({"type": "RollingUpdate"})),
    )
    .await
    .unwrap();
    let failure = |d: &Deployment| {
        d.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
            .cloned()
    };
    let cond = eventually("the Deployment's ReplicaFailure", 60, async || {
        failure(&api.get("capped").await.ok()?)
    })
    .await;
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("True", Some("FailedCreate"))
    );
    let msg = cond.message.clone().unwrap_or_default();
    assert!(
        msg.starts_with("pods \"capped-")
            && msg.ends_with(
                "is forbidden: exceeded quota: two, requested: pods=1, used: pods=2, limited: pods=2"
            ),
        "{msg}"
    );
    // The ReplicaSet's (whose message names the pod of its latest attempt).
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let rs = rss
        .list(&ListParams::default().labels("app=capped"))
        .await
        .unwrap()
        .items
        .remove(0);
    let rs_cond = rs
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "ReplicaFailure")
        .unwrap();
    assert_eq!(
        (rs_cond.status, rs_cond.reason),
        (cond.status.clone(), cond.reason.clone())
    );
    let quota_part = |m: &str| {
        m.split_once(" is forbidden: ")
            .map(|(_, rest)| rest.to_string())
    };
    assert_eq!(
        quota_part(rs_cond.message.as_deref().unwrap_or_default()),
        quota_part(&msg)
    );

    // Room for the third pod: the ReplicaSet's failure clears, and so does the Deployment's.
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), "default");
    quotas
        .patch(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "5"}}})),
        )
        .await
        .unwrap();
    let d = complete(&api, "capped", 3).await;
    let d = if failure(&d).is_some() {
        eventually("ReplicaFailure removed", 30, async || {
            let d = api.get("capped").await.ok()?;
            failure(&d).is_none().then_some(d)
        })
        .await
    } else {
        d
    };
    assert!(failure(&d).is_none());
}
