//! Backends for the store's integration tests: each fixture owns whatever its store needs
//! (a temporary directory, an etcd process) and cleans it up when dropped.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rkube_store::etcd::{EtcdConfig, EtcdStore};
use rkube_store::etcd_process::EtcdProcess;
use rkube_store::memory::MemoryStore;
use rkube_store::sqlite::SqliteStore;
use rkube_store::{Store, WatchMessage, WatchStream};

pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub dir: Option<tempfile::TempDir>,
    pub etcd: Option<EtcdProcess>,
}

pub async fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        dir: None,
        etcd: None,
    }
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("state.db")).expect("open sqlite");
    Fixture {
        store: Arc::new(store),
        dir: Some(dir),
        etcd: None,
    }
}

pub async fn etcd() -> Fixture {
    let etcd = tokio::task::spawn_blocking(EtcdProcess::start)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{e}"));
    let store = EtcdStore::connect(EtcdConfig::new(vec![etcd.endpoint()]))
        .await
        .expect("connect etcd");
    Fixture {
        store: Arc::new(store),
        dir: None,
        etcd: Some(etcd),
    }
}

/// The next message of a watch, failing the test after `secs` seconds.
pub async fn next_msg(w: &mut WatchStream, secs: u64) -> rkube_store::Result<WatchMessage> {
    tokio::time::timeout(Duration::from_secs(secs), w.next_message())
        .await
        .expect("watch message in time")
        .expect("watch still open")
}
