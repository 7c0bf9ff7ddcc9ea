//! etcd-only behaviour: data survives an etcd restart, an unreachable etcd gives errors
//! (not hangs), and the store and its watches recover by themselves when etcd returns.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::next_msg;
use rkube_store::etcd::{EtcdConfig, EtcdStore};
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
