//! The controller manager's leader election: one leader runs the controller sets; a
//! stolen Lease aborts them and they start again once it is re-acquired; a stopped
//! leader releases the Lease and another manager takes over.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use rkube_apiserver::testing::TestServer;
use rkube_controllers::{ControllerSet, Manager};
use support::{eventually, fast_election};

/// Counts starts and currently running instances of a controller set.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    running: AtomicUsize,
}

struct Running(Arc<Probe>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn probe_set(p: &Arc<Probe>) -> ControllerSet {
    let p = p.clone();
    ControllerSet::new("probe", move |_client| {
        let p = p.clone();
        async move {
            p.started.fetch_add(1, Ordering::SeqCst);
            p.running.fetch_add(1, Ordering::SeqCst);
            let _guard = Running(p);
            std::future::pending::<()>().await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_runs_sets_and_leadership_moves() {
    let server = TestServer::start().await;
    let client = rkube_client::client_from_kubeconfig(&server.kubeconfig)
        .await
        .unwrap();
    let (a, b) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let ma = Manager::new(client.clone())
        .with_election(fast_election("manager-a"))
        .with_set(probe_set(&a));
    let task_a = tokio::spawn(async move {
        ma.run(async {
            let _ = stopped_a.await;
        })
        .await
    });
    eventually("a leads", 20, async || {
        (a.running.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let mb = Manager::new(client.clone())
        .with_election(fast_election("manager-b"))
        .with_set(probe_set(&b));
    let task_b = tokio::spawn(async move { mb.run(std::future::pending()).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        b.started.load(Ordering::SeqCst),
        0,
        "only the leader runs controllers"
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get("kube-controller-manager").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("manager-a")
    );

    // A clean stop releases the Lease: b takes over at once.
    stop_a.send(()).unwrap();
    task_a.await.unwrap().unwrap();
    assert_eq!(a.running.load(Ordering::SeqCst), 0, "a's sets are aborted");
    eventually("b leads", 20, async || {
        (b.running.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;

    // Someone else takes the Lease: b loses leadership, aborts its sets, and starts them
    // again once the thief's Lease runs out.
    let mut lease = leases.get("kube-controller-manager").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("thief".into());
    spec.lease_duration_seconds = Some(4);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases
        .replace("kube-controller-manager", &PostParams::default(), &lease)
        .await
        .unwrap();
    eventually("b aborts its sets", 20, async || {
        (b.running.load(Ordering::SeqCst) == 0).then_some(())
    })
    .await;
    eventually("b leads again", 30, async || {
        (b.running.load(Ordering::SeqCst) == 1 && b.started.load(Ordering::SeqCst) == 2)
            .then_some(())
    })
    .await;
    task_b.abort();
}
