//! A whole control plane in one test process, for the tests that need every component at
//! once (a node failure that the node lifecycle controller, the ReplicaSet controller and
//! the scheduler must together repair; a drain that the eviction API, the disruption
//! controller, the Deployment and the scheduler must together honour):
//!
//! - the API server (`rkube_apiserver::testing::TestServer`);
//! - the scheduler (`rkube_scheduler::run`);
//! - the controller manager with the cluster and workload controller sets, leader-elected,
//!   with node-monitor timings short enough for tests;
//! - N hollow nodes (`rkube_kubelet` with its fake runtime) named `hollow-0…N-1`, whose pod
//!   ranges come from the node IPAM controller.
//!
//! Every component talks to the others only through the API, as in `rkube server`.

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::ListParams;
use rkube_apiserver::testing::TestServer;
use rkube_client::LeaderElectionConfig;
use rkube_controllers::{ControllerSet, ControllersConfig, Manager};
use rkube_kubelet::Kubelet;
use rkube_kubelet::runtime::FakeRuntime;

/// The running control plane and nodes; everything stops when it is dropped.
pub struct Cluster {
    pub server: TestServer,
    pub client: kube::Client,
    /// The hollow nodes' kubelet (`stop_node` silences one).
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

impl Cluster {
    /// Starts the API server, the scheduler, the controller manager and `nodes` hollow
    /// nodes (8 CPUs, 32 GiB, 50 pods each), and waits until every node is Ready.
    pub async fn start(nodes: usize) -> Cluster {
        let server = TestServer::start().await;
        let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
            .await
            .expect("client");
        let mut tasks = Vec::new();

        let config = ControllersConfig {
            root_ca_pem: Some(server.ca_pem.clone()),
            node_monitor_grace_period: Duration::from_secs(4),
            node_monitor_period: Duration::from_millis(500),
            pod_gc_period: Duration::from_secs(1),
            quota_resync_period: Duration::from_secs(1),
            discovery_period: Duration::from_secs(5),
            ..Default::default()
        };
        let mut election = LeaderElectionConfig::new(
            rkube_controllers::manager::LEASE_NAMESPACE,
            rkube_controllers::manager::LEASE_NAME,
            "e2e-controller-manager",
        );
        election.lease_duration = Duration::from_secs(3);
        election.renew_deadline = Duration::from_secs(2);
        election.retry_period = Duration::from_millis(500);
        let manager = Manager::new(client.clone())
            .with_election(election)
            .with_sets(rkube_controllers::cluster_sets(config))
            .with_sets([ControllerSet::new("workloads", rkube_workloads::run)]);
        tasks.push(tokio::spawn(async move {
            let _ = manager.run(std::future::pending()).await;
        }));

        tasks.push(tokio::spawn(rkube_scheduler::run(
            client.clone(),
            rkube_scheduler::SchedulerConfig::default(),
        )));

        let kc = rkube_kubelet::testing::hollow_config(nodes, None);
        let kubelet =
            Kubelet::new(client.clone(), Arc::new(FakeRuntime::new()), kc).expect("kubelet");
        let k = kubelet.clone();
        tasks.push(tokio::spawn(async move {
            let _ = k.run().await;
        }));

        let cluster = Cluster {
            server,
            client,
            kubelet,
            tasks,
        };
        let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client.clone());
        eventually("every node Ready", 60, async || {
            let l = api.list(&ListParams::default()).await.ok()?;
            let ready = l
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                })
                .count();
            (ready == nodes).then_some(())
        })
        .await;
        cluster
    }

    /// Runs kubectl against the cluster; panics with its output if it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
