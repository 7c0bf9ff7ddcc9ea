//! `rkube controller-manager` on its own against an in-process API server: it leads
//! through the `kube-system/kube-controller-manager` Lease, runs the controllers (a new
//! namespace gets its `default` ServiceAccount and the kubeconfig's CA as
//! `kube-root-ca.crt`), and on SIGTERM stops and releases the Lease.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use rkube_apiserver::testing::TestServer;

const RKUBE: &str = env!("CARGO_BIN_EXE_rkube");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_manager_runs_the_controllers_and_releases_its_lease() {
    let s = TestServer::start().await;
    let client = rkube_client::client_from_kubeconfig(&s.kubeconfig)
        .await
        .unwrap();
    let mut child = Command::new(RKUBE)
        .args(["controller-manager", "--kubeconfig"])
        .arg(&s.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "team"}})).unwrap(),
    )
    .await
    .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let start = Instant::now();
    loop {
        let sa = sas.get_opt("default").await.unwrap();
        let cm = cms.get_opt("kube-root-ca.crt").await.unwrap();
        if let (Some(_), Some(cm)) = (sa, cm) {
            assert_eq!(cm.data.unwrap()["ca.crt"], s.ca_pem);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "controllers did not run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let held = leases.get("kube-controller-manager").await.unwrap();
    assert!(
        !held
            .spec
            .unwrap()
            .holder_identity
            .unwrap_or_default()
            .is_empty()
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let released = leases.get("kube-controller-manager").await.unwrap();
    assert_eq!(released.spec.unwrap().holder_identity.as_deref(), Some(""));
}
