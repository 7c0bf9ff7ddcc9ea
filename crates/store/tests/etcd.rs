//! etcd-only behaviour: data survives an etcd restart, an unreachable etcd gives errors
//! (not hangs), and the store and its watches recover by themselves when etcd returns.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::next_msg;
use rkube_store::etcd::{EtcdConfig, EtcdStore};
use rkube_store::etcd_process::{EtcdProcess, MemberTls};
use rkube_store::{Error, KeyRange, Store, WatchMessage, WatchOptions, WriteOptions};

const NO: WriteOptions = WriteOptions { ttl: None };

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn connect(endpoint: String) -> EtcdStore {
    let mut config = EtcdConfig::new(vec![endpoint]);
    config.request_timeout = Duration::from_secs(2);
    EtcdStore::connect(config).await.unwrap()
}

/// Retries `f` until it succeeds, failing the test after `secs`.
async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = rkube_store::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_errors_then_everything_recovers() {
    let mut fx = common::etcd().await;
    let etcd = fx.etcd.as_mut().unwrap();
    let s = connect(etcd.endpoint()).await;

    let a = s.create("/o/a", b("1"), NO).await.unwrap();
    let mut w = s
        .watch(
            KeyRange::prefix("/o/"),
            a.mod_revision,
            WatchOptions::default(),
        )
        .await
        .unwrap();
    match next_msg(&mut w, 10).await.unwrap() {
        WatchMessage::Events(evs) => assert_eq!(evs[0].kv, a),
        other => panic!("{other:?}"),
    }

    tokio::task::block_in_place(|| etcd.stop());

    // Operations fail promptly with a retryable error instead of hanging.
    let started = Instant::now();
    match s.create("/o/b", b("2"), NO).await {
        Err(e @ Error::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("write with etcd down: {other:?}"),
    }
    assert!(matches!(s.get("/o/a").await, Err(Error::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(10));

    tokio::task::block_in_place(|| etcd.restart()).unwrap();

    // The same store works again without being recreated, and the data is all there.
    let b2 = eventually(20, || s.create("/o/b", b("2"), NO)).await;
    assert_eq!(s.get("/o/a").await.unwrap(), Some(a.clone()));
    // The watch opened before the outage re-watches from where it stopped: nothing lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline);
        match next_msg(&mut w, 30).await.unwrap() {
            WatchMessage::Events(evs) => {
                assert_eq!(evs[0].kv, b2, "the first event after the outage");
                break;
            }
            WatchMessage::Progress(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_an_etcd_restart() {
    let mut fx = common::etcd().await;
    let etcd = fx.etcd.as_mut().unwrap();
    let s = connect(etcd.endpoint()).await;
    let mut written = Vec::new();
    for i in 0..50 {
        written.push(
            s.create(&format!("/r/{i:02}"), b(&i.to_string()), NO)
                .await
                .unwrap(),
        );
    }
    let rev = s.current_revision().await.unwrap();
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    let s = connect(etcd.endpoint()).await;
    let all = eventually(20, || s.range(rkube_store::RangeRequest::prefix("/r/"))).await;
    assert_eq!(all.kvs, written);
    assert_eq!(s.current_revision().await.unwrap(), rev);
}

/// A CA, a serving certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string()]),
            ("client", vec![]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let pki = Pki::new();
    let etcd = tokio::task::spawn_blocking({
        let tls = MemberTls {
            cert: pki.path("server.pem"),
            key: pki.path("server-key.pem"),
            client_ca: pki.path("ca.pem"),
        };
        move || EtcdProcess::start_tls(tls)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(etcd.endpoint().starts_with("https://"));

    let mut config = EtcdConfig::new(vec![etcd.endpoint()]);
    config.ca_file = Some(pki.path("ca.pem"));
    config.cert_file = Some(pki.path("client.pem"));
    config.key_file = Some(pki.path("client-key.pem"));
    config.request_timeout = Duration::from_secs(3);
    let s = EtcdStore::connect(config.clone()).await.unwrap();
    let kv = s.create("/tls/a", b("secret"), NO).await.unwrap();
    assert_eq!(s.get("/tls/a").await.unwrap(), Some(kv));

    // Without a client certificate the member refuses the connection.
    config.cert_file = None;
    config.key_file = None;
    let anonymous = EtcdStore::connect(config).await.unwrap();
    assert!(anonymous.get("/tls/a").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_list_with_a_dead_member_fails_over() {
    let fx = common::etcd().await;
    let live = fx.etcd.as_ref().unwrap().endpoint();
    // A port nothing listens on, listed first.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut config = EtcdConfig::new(vec![dead, live]);
    config.request_timeout = Duration::from_secs(3);
    let s = EtcdStore::connect(config).await.unwrap();
    // Every request succeeds: the dead member is skipped, not retried at random.
    for i in 0..30 {
        s.create(&format!("/list/{i}"), b("x"), NO).await.unwrap();
        assert!(s.get(&format!("/list/{i}")).await.unwrap().is_some());
    }
    let all = s
        .range(rkube_store::RangeRequest::prefix("/list/"))
        .await
        .unwrap();
    assert_eq!(all.count, 30);
    // Watches open on a live member too.
    let mut w = s
        .watch(KeyRange::prefix("/list/"), 0, WatchOptions::default())
        .await
        .unwrap();
    let kv = s.create("/list/w", b("w"), NO).await.unwrap();
    loop {
        match next_msg(&mut w, 20).await.unwrap() {
            WatchMessage::Events(evs) => {
                assert_eq!(evs[0].kv, kv);
                break;
            }
            WatchMessage::Progress(_) => {}
        }
    }
}
