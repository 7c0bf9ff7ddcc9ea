//! The control plane repairing and moving workloads with every component real: a node that
//! stops renewing its Lease is tainted, its Deployment's pods are evicted and replaced on
//! the other nodes; `kubectl drain` moves a Deployment off a node without ever taking it
//! below its PodDisruptionBudget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, PostParams};
use rkube_e2e::{Cluster, eventually};
use serde_json::json;

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

fn deployment(name: &str, replicas: i32, tolerate_seconds: Option<i64>) -> Deployment {
    let tolerations = match tolerate_seconds {
        Some(s) => json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": s},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": s}]),
        None => json!([]),
    };
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "main", "image": "registry.local/app:1",
                                    "resources": {"requests": {"cpu": "100m"}}}],
                    "tolerations": tolerations,
                    "terminationGracePeriodSeconds": 1,
                }
            }
        }
    }))
    .expect("deployment")
}

async fn ready_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items.into_iter().filter(ready).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_silent_node_are_replaced_on_the_others() {
    let c = Cluster::start(3).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    deploys
        .create(&PostParams::default(), &deployment("web", 6, Some(2)))
        .await
        .expect("create deployment");
    let running = eventually("6 ready pods", 60, async || {
        let r = ready_pods(&pods, "web").await;
        (r.len() == 6).then_some(r)
    })
    .await;
    // The scheduler spread them; pick a node that runs some.
    let victim = node_of(&running[0]);
    let on_victim = running.iter().filter(|p| node_of(p) == victim).count();
    assert!(on_victim > 0);

    assert!(c.kubelet.stop_node(&victim));
    let nodes: Api<Node> = Api::all(c.client.clone());
    eventually("the silent node tainted unreachable", 60, async || {
        let n = nodes.get(&victim).await.ok()?;
        let taints = n.spec?.taints?;
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            .then_some(())
    })
    .await;
    // After the pods' 2 s toleration they are evicted; the ReplicaSet replaces them and
    // the scheduler places the replacements on the two live nodes.
    let healed = eventually(
        "6 ready pods again, none on the silent node",
        90,
        async || {
            let r = ready_pods(&pods, "web").await;
            (r.len() == 6 && r.iter().all(|p| node_of(p) != victim)).then_some(r)
        },
    )
    .await;
    let nodes_used: std::collections::BTreeSet<String> = healed.iter().map(node_of).collect();
    assert!(!nodes_used.contains(&victim), "{nodes_used:?}");
    eventually(
        "the Deployment reporting 6 ready replicas",
        30,
        async || {
            let st = deploys.get("web").await.ok()?.status?;
            (st.ready_replicas == Some(6) && st.available_replicas == Some(6)).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_a_deployment_without_breaking_its_budget() {
    let c = Cluster::start(2).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), "default");
    deploys
        .create(&PostParams::default(), &deployment("api", 4, None))
        .await
        .expect("create deployment");
    let running = eventually("4 ready pods", 60, async || {
        let r = ready_pods(&pods, "api").await;
        (r.len() == 4).then_some(r)
    })
    .await;
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "api"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "api"}}},
    }))
    .expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    eventually("the budget allows one disruption", 30, async || {
        let p = pdbs.get("api").await.ok()?;
        (p.status?.disruptions_allowed == 1).then_some(())
    })
    .await;

    // The node with the most pods is drained.
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    for p in &running {
        *per_node.entry(node_of(p)).or_default() += 1;
    }
    let (drained, _) = per_node
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(n, c)| (n.clone(), *c))
        .expect("a node");

    // Watch the number of ready pods while the drain runs: never below minAvailable.
    let lowest = Arc::new(AtomicUsize::new(usize::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (pods, lowest, done) = (pods.clone(), lowest.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let n = ready_pods(&pods, "api").await.len();
                lowest.fetch_min(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let kubeconfig = c.server.kubeconfig.clone();
    let node = drained.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .args([
                "drain",
                &node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=120s",
            ])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl runs")
    })
    .await
    .expect("drain task");
    done.store(true, Ordering::Relaxed);
    monitor.await.expect("monitor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubectl drain failed: {text}");
    assert!(text.contains(&format!("node/{drained} drained")), "{text}");
    assert!(text.contains("cordoned"), "{text}");
    let lowest = lowest.load(Ordering::Relaxed);
    assert!(lowest >= 3, "ready pods fell to {lowest} during the drain");

    let nodes: Api<Node> = Api::all(c.client.clone());
    let n = nodes.get(&drained).await.expect("node");
    assert_eq!(n.spec.and_then(|s| s.unschedulable), Some(true));
    let after = eventually("4 ready pods off the drained node", 60, async || {
        let r = ready_pods(&pods, "api").await;
        (r.len() == 4 && r.iter().all(|p| node_of(p) != drained)).then_some(r)
    })
    .await;
    assert_eq!(after.len(), 4);
}
