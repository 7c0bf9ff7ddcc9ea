//! The cluster fixture: API server, N hollow nodes, the test-only binder (swap in the real
//! scheduler once merged) and the workload controllers, all stopped on drop.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use rkube_apiserver::testing::TestServer;
use rkube_kubelet::Kubelet;
use rkube_kubelet::ipam::Cidr;
use rkube_kubelet::runtime::FakeRuntime;
use rkube_workloads::Config;
use rkube_workloads::testing::TestBinder;

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

pub async fn cluster(nodes: usize) -> Cluster {
    cluster_with(nodes, Config::default()).await
}

pub async fn cluster_with(nodes: usize, mut config: Config) -> Cluster {
    let server = TestServer::start().await;
    let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
        .await
        .expect("client");
    let range: Cidr = "10.42.0.0/16".parse().unwrap();
    let mut kc = rkube_kubelet::testing::hollow_config(nodes, Some(&range));
    kc.capacity.pods = "110".into();
    kc.backoff_base = Duration::from_secs(1);
    kc.backoff_max = Duration::from_secs(4);
    let kubelet = Kubelet::new(client.clone(), Arc::new(FakeRuntime::new()), kc).unwrap();
    config.workers = config.workers.min(3);
    let mut tasks = vec![tokio::spawn(async move {
        let _ = kubelet.run().await;
    })];
    tasks.push(tokio::spawn(TestBinder::run(client.clone())));
    tasks.push(tokio::spawn(rkube_workloads::run_with(
        client.clone(),
        config,
    )));
    Cluster {
        server,
        client,
        tasks,
    }
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

pub fn apply<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("valid object")
}

/// Pods of `ns` whose labels include `app=<app>`.
pub async fn pods(client: &kube::Client, ns: &str, app: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&kube::api::ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

pub fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// (reason, message, source component) of the Events about `name` in `ns`.
pub async fn events(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.source.and_then(|s| s.component).unwrap_or_default(),
            )
        })
        .collect()
}

/// Runs kubectl against the cluster; returns stdout, panicking with stderr on failure.
/// A write that meets a 409 "the object has been modified" is retried: rkube's API server
/// currently answers a patch that races another write with a conflict instead of retrying
/// it as upstream does, and the controllers write the same objects.
pub fn kubectl(c: &Cluster, args: &[&str]) -> String {
    let mut attempt = 0;
    loop {
        let out = std::process::Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&c.server.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("the object has been modified") && attempt < 5 {
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
        return String::from_utf8_lossy(&out.stdout).into_owned();
    }
}

/// A ResourceQuota `name` in `default` allowing `pods` pods, with its status written as the
/// quota controller would (this cluster runs only the workload controllers), so that
/// admission enforces it at once.
pub async fn pod_quota(client: &kube::Client, name: &str, pods: u32) {
    use k8s_openapi::api::core::v1::ResourceQuota;
    use kube::api::{Patch, PatchParams, PostParams};
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    let q: ResourceQuota = apply(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"hard": {"pods": pods.to_string()}},
    }));
    quotas.create(&PostParams::default(), &q).await.unwrap();
    quotas
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "status": {"hard": {"pods": pods.to_string()}, "used": {"pods": "0"}}
            })),
        )
        .await
        .unwrap();
}
