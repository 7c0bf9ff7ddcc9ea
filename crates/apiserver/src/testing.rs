//! An API server for tests: a fresh CA and admin client certificate in a temporary
//! directory, an in-memory (or given) store, a random loopback port, and a kubeconfig that
//! kubectl and client libraries can use as they would with any cluster.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rkube_pki::{CertAuthority, CertSpec};
use rkube_store::Store;

use crate::allocate::Cidr;
use crate::authn::{Authenticator, UserInfo};
use crate::{ApiServer, Config};

/// A bearer token the test server accepts, for user `tester` in group `testers`.
pub const TEST_TOKEN: &str = "test-token-0123456789";

/// A running server and where its client files are.
pub struct TestServer {
    pub server: ApiServer,
    pub dir: tempfile::TempDir,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    pub ca_pem: String,
    pub store: Arc<dyn Store>,
}

impl TestServer {
    /// Starts a server on an in-memory store.
    pub async fn start() -> TestServer {
        Self::start_with(Arc::new(rkube_store::memory::MemoryStore::new())).await
    }

    /// Starts a server on `store` and waits until it is ready.
    pub async fn start_with(store: Arc<dyn Store>) -> TestServer {
        Self::start_configured(store, |_| {}).await
    }

    /// Starts a server on `store` with `adjust` applied to its configuration.
    pub async fn start_configured(
        store: Arc<dyn Store>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertAuthority::load_or_create(dir.path(), "ca", "rkube-test-ca").expect("CA");
        let serving = ca
            .issue(&CertSpec {
                common_name: "kube-apiserver".into(),
                dns_names: vec!["localhost".into(), "kubernetes".into()],
                ips: vec![Ipv4Addr::LOCALHOST.into()],
                server: true,
                ..Default::default()
            })
            .expect("serving certificate");
        let admin = ca
            .issue(&CertSpec {
                common_name: "system:admin".into(),
                organizations: vec!["system:masters".into()],
                client: true,
                ..Default::default()
            })
            .expect("admin certificate");
        let mut authenticator = Authenticator::new();
        authenticator.add_token(
            TEST_TOKEN,
            UserInfo {
                username: "tester".into(),
                uid: "tester-uid".into(),
                groups: vec!["testers".into()],
            },
        );
        let mut config = Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            serving_cert_pem: serving.cert_pem,
            serving_key_pem: serving.key_pem,
            client_ca_pem: ca.cert_pem.clone(),
            authenticator,
            service_cidr: Cidr::parse("10.43.0.0/16").expect("cidr"),
            node_ports: (30000, 32767),
            advertise_address: Ipv4Addr::LOCALHOST,
            advertise_port: 0,
            event_ttl: Duration::from_secs(3600),
            bookmark_interval: Duration::from_secs(1),
        };
        adjust(&mut config);
        let server = ApiServer::start(store.clone(), config)
            .await
            .expect("API server starts");
        assert!(
            server.wait_ready(Duration::from_secs(10)).await,
            "API server ready"
        );
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        rkube_pki::write_kubeconfig(
            &kubeconfig,
            &format!("https://{}", server.local_addr()),
            &ca.cert_pem,
            &admin,
        )
        .expect("kubeconfig");
        TestServer {
            server,
            dir,
            kubeconfig,
            ca_pem: ca.cert_pem,
            store,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.server.local_addr())
    }
}
