//! Hollow nodes end to end against the in-process API server: nodes register Ready with
//! their capacity and podCIDR and renew their Leases; a pod bound to a node becomes Running
//! and Ready with a podIP in the node's range; exit codes end pods Succeeded or restart them
//! with growing restart counts; a graceful delete is confirmed by the kubelet; kubectl
//! shows the nodes Ready.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rkube_apiserver::testing::TestServer;
use rkube_kubelet::Kubelet;
use rkube_kubelet::ipam::Cidr;
use rkube_kubelet::runtime::FakeRuntime;
use serde_json::json;

struct Cluster {
    server: TestServer,
    client: kube::Client,
    runtime: Arc<FakeRuntime>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn cluster(nodes: usize) -> Cluster {
    let server = TestServer::start().await;
    let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
        .await
        .expect("client");
    let range: Cidr = "10.42.0.0/16".parse().unwrap();
    let mut config = rkube_kubelet::testing::hollow_config(nodes, Some(&range));
    config.backoff_base = Duration::from_secs(1);
    config.backoff_max = Duration::from_secs(4);
    let runtime = Arc::new(FakeRuntime::new());
    let kubelet = Kubelet::new(client.clone(), runtime.clone(), config).unwrap();
    let task = tokio::spawn(async move {
        if let Err(e) = kubelet.run().await {
            panic!("kubelet: {e}");
        }
    });
    Cluster {
        server,
        client,
        runtime,
        task,
    }
}

async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
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

fn pod(name: &str, node: &str, policy: &str, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": policy,
            "containers": [{"name": "main", "image": "busybox:1.36"}],
        },
    }))
    .unwrap()
}

fn condition(p: &Pod, kind: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_ready_and_renew_leases() {
    let c = cluster(3).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let listed = eventually("3 nodes", 20, async || {
        let l = nodes.list(&Default::default()).await.ok()?;
        (l.items.len() == 3).then_some(l.items)
    })
    .await;
    let n0 = listed
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("hollow-0"))
        .unwrap();
    let status = n0.status.as_ref().unwrap();
    assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, "8");
    assert_eq!(status.allocatable.as_ref().unwrap()["memory"].0, "32Gi");
    assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "50");
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("True", Some("KubeletReady"))
    );
    assert_eq!(
        n0.spec.as_ref().unwrap().pod_cidr.as_deref(),
        Some("10.42.0.0/24")
    );
    let addresses = status.addresses.as_ref().unwrap();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "172.16.0.1")
    );
    assert_eq!(
        n0.metadata.labels.as_ref().unwrap()["kubernetes.io/hostname"],
        "hollow-0"
    );

    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let first = eventually("lease", 20, async || {
        leases.get_opt("hollow-1").await.ok()?
    })
    .await;
    let spec = first.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("hollow-1"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "hollow-1")
    );
    eventually("lease renewed", 20, async || {
        let l = leases.get("hollow-1").await.ok()?;
        (l.spec?.renew_time > spec.renew_time).then_some(())
    })
    .await;

    // Status reports refresh heartbeats and keep transition times.
    let ready_of = |n: &Node| {
        n.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned()
    };
    let before = ready_of(n0).unwrap();
    let after = eventually("node status reported again", 20, async || {
        let c = ready_of(&nodes.get("hollow-0").await.ok()?)?;
        (c.last_heartbeat_time > before.last_heartbeat_time).then_some(c)
    })
    .await;
    assert_eq!(after.last_transition_time, before.last_transition_time);
    assert_eq!(after.status, "True");

    // kubectl sees them Ready.
    let out = std::process::Command::new("/usr/bin/kubectl")
        .args(["get", "nodes", "--no-headers"])
        .env("KUBECONFIG", &c.server.kubeconfig)
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ready_lines = text
        .lines()
        .filter(|l| l.starts_with("hollow-") && l.split_whitespace().nth(1) == Some("Ready"))
        .count();
    assert_eq!(ready_lines, 3, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_pod_runs_ready_with_an_ip_from_the_node_range() {
    let c = cluster(2).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("web", "hollow-1", "Always", json!({})),
    )
    .await
    .unwrap();
    let p = eventually("web Ready", 20, async || {
        let p = pods.get("web").await.ok()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let st = p.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let ip: std::net::Ipv4Addr = st.pod_ip.as_deref().unwrap().parse().unwrap();
    assert!("10.42.1.0/24".parse::<Cidr>().unwrap().contains(ip), "{ip}");
    assert_eq!(st.host_ip.as_deref(), Some("172.16.0.2"));
    assert!(st.start_time.is_some());
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(condition(&p, kind).as_deref(), Some("True"), "{kind}");
    }
    let cs = &st.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready);
    assert_eq!(cs.restart_count, 0);
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert!(cs.container_id.as_deref().unwrap().starts_with("fake://"));
    assert!(cs.image_id.starts_with("busybox@sha256:"));

    // kubectl shows it as upstream's would.
    let out = std::process::Command::new("/usr/bin/kubectl")
        .args(["get", "pod", "web", "-o", "wide", "--no-headers"])
        .env("KUBECONFIG", &c.server.kubeconfig)
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let cols: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "1/1", "Running", "0"], "{text}");
    assert_eq!(cols[5], ip.to_string(), "{text}");
    assert_eq!(cols[6], "hollow-1", "{text}");

    // A graceful delete: the kubelet stops the containers and removes the pod.
    let deleted = pods.delete("web", &DeleteParams::default()).await.unwrap();
    let pending = deleted.left().expect("a running pod is deleted gracefully");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(30));
    eventually("web gone", 20, async || {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_end_pods_or_restart_them() {
    let c = cluster(1).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let quick = json!({"fake.rkube.io/run-seconds": "0.2"});
    pods.create(
        &PostParams::default(),
        &pod("ok", "hollow-0", "Never", quick.clone()),
    )
    .await
    .unwrap();
    let failing = json!({"fake.rkube.io/run-seconds": "0.2", "fake.rkube.io/exit-code": "1"});
    pods.create(
        &PostParams::default(),
        &pod("bad", "hollow-0", "Never", failing.clone()),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("flaky", "hollow-0", "OnFailure", failing),
    )
    .await
    .unwrap();

    let ok = eventually("ok Succeeded", 20, async || {
        let p = pods.get("ok").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Succeeded")).then_some(p)
    })
    .await;
    let t = ok
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(condition(&ok, "Ready").as_deref(), Some("False"));

    eventually("bad Failed", 20, async || {
        let p = pods.get("bad").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(())
    })
    .await;

    // OnFailure: restarted (the first at once, then after 1 s, 2 s back-off).
    let flaky = eventually("flaky restarted twice", 30, async || {
        let p = pods.get("flaky").await.ok()?;
        let cs = p.status.as_ref()?.container_statuses.as_ref()?[0].clone();
        (cs.restart_count >= 2).then_some(p)
    })
    .await;
    let st = flaky.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let cs = &st.container_statuses.as_ref().unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.reason.as_deref(), Some("Error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_first_and_force_deletes_free_the_runtime() {
    let c = cluster(1).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "with-init"},
        "spec": {
            "nodeName": "hollow-0",
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [{"name": "main", "image": "busybox"}],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let running = eventually("with-init Ready", 20, async || {
        let p = pods.get("with-init").await.ok()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let st = running.status.unwrap();
    let init = &st.init_container_statuses.as_ref().unwrap()[0];
    let done = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert!(init.ready);
    assert_eq!(c.runtime.counts(), (1, 2), "one sandbox, two containers");

    // Deleted outright (grace 0): the kubelet removes what the runtime held.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete("with-init", &force).await.unwrap();
    eventually("runtime emptied", 20, async || {
        (c.runtime.counts() == (0, 0)).then_some(())
    })
    .await;

    // A new pod of the same name starts afresh.
    pods.create(
        &PostParams::default(),
        &pod("with-init", "hollow-0", "Always", json!({})),
    )
    .await
    .unwrap();
    let again = eventually("re-created pod Ready", 20, async || {
        let p = pods.get("with-init").await.ok()?;
        (condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await;
    let st = again.status.unwrap();
    assert!(st.init_container_statuses.is_none());
    assert_eq!(st.container_statuses.unwrap()[0].restart_count, 0);
}
