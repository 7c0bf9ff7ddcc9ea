//! An in-process cluster for the controller tests: the API server, hollow nodes (whose
//! pod ranges come from the node IPAM controller), the controller manager with short
//! timings, and a **test-only binder** standing in for the scheduler until it is merged.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, PostParams};
use rkube_apiserver::testing::TestServer;
use rkube_client::LeaderElectionConfig;
use rkube_controllers::{ControllersConfig, Manager};
use rkube_kubelet::Kubelet;
use rkube_kubelet::runtime::FakeRuntime;

pub struct Cluster {
    pub server: TestServer,
    pub client: kube::Client,
    pub kubelet: Arc<Kubelet>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Controller settings fast enough for tests.
pub fn test_config(ca: &str) -> ControllersConfig {
    ControllersConfig {
        root_ca_pem: Some(ca.to_string()),
        node_monitor_grace_period: Duration::from_secs(4),
        node_monitor_period: Duration::from_millis(500),
        pod_gc_period: Duration::from_secs(1),
        quota_resync_period: Duration::from_secs(10),
        discovery_period: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Leader election timing for tests (lease 3 s, renew deadline 2 s, retry 0.5 s).
pub fn fast_election(identity: &str) -> LeaderElectionConfig {
    let mut e = LeaderElectionConfig::new("kube-system", "kube-controller-manager", identity);
    e.lease_duration = Duration::from_secs(3);
    e.renew_deadline = Duration::from_secs(2);
    e.retry_period = Duration::from_millis(500);
    e
}

pub async fn cluster(nodes: usize) -> Cluster {
    cluster_with(nodes, |_| {}).await
}

pub async fn cluster_with(nodes: usize, adjust: impl FnOnce(&mut ControllersConfig)) -> Cluster {
    let server = TestServer::start().await;
    let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
        .await
        .expect("client");
    let mut tasks = Vec::new();
    let mut config = test_config(&server.ca_pem);
    adjust(&mut config);
    let manager = Manager::new(client.clone())
        .with_election(fast_election("test-manager"))
        .with_sets(rkube_controllers::cluster_sets(config));
    tasks.push(tokio::spawn(async move {
        let _ = manager.run(std::future::pending()).await;
    }));
    let kc = rkube_kubelet::testing::hollow_config(nodes, None);
    let kubelet = Kubelet::new(client.clone(), Arc::new(FakeRuntime::new()), kc).expect("kubelet");
    let k = kubelet.clone();
    tasks.push(tokio::spawn(async move {
        let _ = k.run().await;
    }));
    tasks.push(tokio::spawn(test_binder(client.clone())));
    Cluster {
        server,
        client,
        kubelet,
        tasks,
    }
}

/// TEST-ONLY stand-in for the scheduler: binds Pending pods without a node whose
/// schedulerName is the default to Ready nodes, round-robin, through `pods/binding`.
/// Swap in the real scheduler when it is merged.
pub async fn test_binder(client: kube::Client) {
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let mut next = 0usize;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(list) = pods
            .list(&ListParams::default().fields("spec.nodeName="))
            .await
        else {
            continue;
        };
        let Ok(node_list) = nodes.list(&ListParams::default()).await else {
            continue;
        };
        let ready: Vec<String> = node_list
            .items
            .iter()
            .filter(|n| {
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
                let tainted = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.effect == "NoSchedule"));
                ready && !unschedulable && !tainted
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        if ready.is_empty() {
            continue;
        }
        for p in list.items {
            let sched = p
                .spec
                .as_ref()
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or("default-scheduler");
            if sched != "default-scheduler" || p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let node = ready[next % ready.len()].clone();
            next += 1;
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let binding = Binding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                target: ObjectReference {
                    kind: Some("Node".into()),
                    name: Some(node),
                    api_version: Some("v1".into()),
                    ..Default::default()
                },
            };
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let _ = api
                .create_subresource::<Binding, serde_json::Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs kubectl against the cluster; returns (success, stdout, stderr).
pub fn kubectl(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.server.kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// kubectl with a YAML/JSON document on stdin (`kubectl apply -f -`).
pub fn kubectl_stdin(c: &Cluster, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.server.kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
