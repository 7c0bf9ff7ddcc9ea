//! A full disk: writes fail with an error, nothing acknowledged is lost, reads keep working,
//! and writes succeed again once space is freed. Uses a small tmpfs, so it needs root (as CI
//! runs); without root it says so and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use rkube_store::sqlite::SqliteStore;
use rkube_store::{Error, RangeRequest, Store, WriteOptions};

/// A tmpfs mounted for the test, unmounted when dropped (even if the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("store-diskfull-")
            .tempdir()
            .unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs failed");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_fails_writes_and_corrupts_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root (CI runs as root)");
        return;
    }
    let fs = Tmpfs::mount("6m");
    let db: PathBuf = fs.path().join("state.db");
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![1u8; 1024 * 1024]).unwrap();

    let store = SqliteStore::open(&db).unwrap();
    let value = Bytes::from(vec![b'x'; 4096]);
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..10_000 {
        let key = format!("/full/{i:05}");
        match store
            .create(&key, value.clone(), WriteOptions::default())
            .await
        {
            Ok(_) => acked.push(key),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the disk filled up");
    match &failure {
        Error::Backend(msg) => assert!(msg.contains("full"), "{msg}"),
        other => panic!("unexpected error kind: {other:?}"),
    }
    assert!(acked.len() > 100, "only {} writes fitted", acked.len());
    eprintln!("{} writes fitted before: {failure}", acked.len());

    // Reads still work and see every acknowledged write.
    let all = store.range(RangeRequest::prefix("/full/")).await.unwrap();
    assert_eq!(all.count as usize, acked.len());

    // Still full: writes keep failing cleanly.
    assert!(
        store
            .create("/full/again", value.clone(), WriteOptions::default())
            .await
            .is_err()
    );

    // Free space; the same store recovers by itself.
    std::fs::remove_file(&filler).unwrap();
    store
        .create("/full/after", value.clone(), WriteOptions::default())
        .await
        .expect("writes work again once space is free");
    store.close().await;
    drop(store);

    // Reopens cleanly (integrity checked on open) with everything acknowledged.
    let store = SqliteStore::open(&db).unwrap();
    let all = store.range(RangeRequest::prefix("/full/")).await.unwrap();
    let keys: Vec<String> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
    for key in &acked {
        assert!(keys.contains(key), "{key} lost");
    }
    assert!(keys.contains(&"/full/after".to_string()));
    assert_eq!(keys.len(), acked.len() + 1);
    store.close().await;
}
