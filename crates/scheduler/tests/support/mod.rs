//! An in-process cluster for scheduler tests: the API server, hollow nodes from
//! rkube-kubelet, and the scheduler as a task.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rkube_apiserver::testing::TestServer;
use rkube_kubelet::ipam::Cidr;
use rkube_kubelet::runtime::FakeRuntime;
use rkube_kubelet::{Capacity, Kubelet, KubeletConfig, NodeIdentity};
use rkube_scheduler::SchedulerConfig;
use serde_json::{Value, json};

pub struct Cluster {
    pub server: TestServer,
    pub client: kube::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Hollow nodes `<prefix>-0..n` with `cpu` CPUs each, run by one kubelet.
pub fn start_kubelet(
    client: &kube::Client,
    prefix: &str,
    first_subnet: u64,
    n: usize,
    cpu: &str,
) -> tokio::task::JoinHandle<()> {
    let range: Cidr = "10.42.0.0/16".parse().unwrap();
    let ids = (0..n)
        .map(|i| NodeIdentity {
            name: format!("{prefix}-{i}"),
            internal_ip: format!("172.16.{}.{}", first_subnet, i + 1)
                .parse()
                .unwrap(),
            pod_cidr: range.subnet(24, first_subnet * 16 + i as u64),
        })
        .collect();
    let mut config = KubeletConfig::new(ids);
    config.capacity = Capacity {
        cpu: cpu.into(),
        memory: "32Gi".into(),
        pods: "50".into(),
        ..Default::default()
    };
    config.lease_renew_interval = Duration::from_secs(2);
    config.status_report_interval = Duration::from_secs(30);
    let kubelet = Kubelet::new(client.clone(), Arc::new(FakeRuntime::new()), config).unwrap();
    tokio::spawn(async move {
        if let Err(e) = kubelet.run().await {
            panic!("kubelet: {e}");
        }
    })
}

impl Cluster {
    /// A server with `nodes` hollow nodes (`hollow-N`, 8 CPUs) and no scheduler yet.
    pub async fn without_scheduler(nodes: usize) -> Cluster {
        let server = TestServer::start().await;
        let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
            .await
            .expect("client");
        let mut tasks = Vec::new();
        if nodes > 0 {
            tasks.push(start_kubelet(&client, "hollow", 0, nodes, "8"));
        }
        let c = Cluster {
            server,
            client,
            tasks,
        };
        c.wait_nodes(nodes).await;
        c
    }

    /// A server, `nodes` hollow nodes and the scheduler.
    pub async fn start(nodes: usize) -> Cluster {
        let mut c = Cluster::without_scheduler(nodes).await;
        c.start_scheduler(SchedulerConfig::default());
        c
    }

    pub fn start_scheduler(&mut self, config: SchedulerConfig) {
        let client = self.client.clone();
        self.tasks
            .push(tokio::spawn(rkube_scheduler::run(client, config)));
    }

    pub fn spawn(&mut self, f: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(f));
    }

    pub async fn wait_nodes(&self, n: usize) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        eventually(&format!("{n} nodes"), 30, async || {
            let l = nodes.list(&ListParams::default()).await.ok()?;
            (l.items.len() >= n).then_some(())
        })
        .await;
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create_pod(&self, name: &str, labels: Value, spec: Value) -> Pod {
        self.pods()
            .create(&PostParams::default(), &pod(name, labels, spec))
            .await
            .unwrap_or_else(|e| panic!("creating pod {name}: {e}"))
    }

    /// Waits until the pod is bound; its node.
    pub async fn bound_node(&self, name: &str) -> String {
        let pods = self.pods();
        eventually(&format!("pod {name} bound"), 30, async || {
            pods.get(name).await.ok()?.spec?.node_name
        })
        .await
    }

    /// Waits for the pod's PodScheduled=False condition message.
    pub async fn unschedulable_message(&self, name: &str) -> String {
        let pods = self.pods();
        eventually(&format!("pod {name} unschedulable"), 30, async || {
            let p = pods.get(name).await.ok()?;
            let c = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
            assert_eq!(c.reason.as_deref(), Some("Unschedulable"));
            c.message
        })
        .await
    }

    /// Waits for a core/v1 event about the pod with `reason`; its message.
    pub async fn event(&self, pod: &str, reason: &str) -> Event {
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        eventually(&format!("{reason} event for {pod}"), 30, async || {
            events
                .list(&lp)
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
        })
        .await
    }

    pub async fn patch_node(&self, name: &str, patch: Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patching node");
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("/usr/bin/kubectl")
            .args(args)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

pub fn pod(name: &str, labels: Value, mut spec: Value) -> Pod {
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "main", "image": "busybox:1.36"}]);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap()
}

/// A container requesting `cpu`.
pub fn cpu(cpu: &str) -> Value {
    json!([{"name": "main", "image": "busybox:1.36", "resources": {"requests": {"cpu": cpu}}}])
}

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
