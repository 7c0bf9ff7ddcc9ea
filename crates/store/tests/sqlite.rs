//! SQLite-only behaviour: what survives a close and reopen, the datastore lock, physical
//! compaction, snapshots, and how damaged files are refused.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::next_msg;
use rkube_store::sqlite::{SqliteStore, snapshot};
use rkube_store::{Error, KeyRange, RangeRequest, Store, WatchMessage, WatchOptions, WriteOptions};

const NO: WriteOptions = WriteOptions { ttl: None };

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Rows physically present in the log (history included).
fn log_rows(db: &Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_history_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db/state.db");
    let (first, last, kept) = {
        let s = SqliteStore::open(&db).unwrap();
        let first = s.create("/k/a", b("1"), NO).await.unwrap();
        let a2 = s
            .update("/k/a", b("2"), first.mod_revision, NO)
            .await
            .unwrap();
        s.create("/k/b", b("b"), NO).await.unwrap();
        let (_, last) = s.delete("/k/b", None).await.unwrap();
        s.create(
            "/k/ttl",
            b("t"),
            WriteOptions::with_ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        s.close().await;
        (first, last, a2)
    };
    // The TTL keeps running while the store is closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = SqliteStore::open(&db).unwrap();
    assert_eq!(s.get("/k/a").await.unwrap(), Some(kept.clone()));
    assert_eq!(s.get("/k/b").await.unwrap(), None);
    assert!(s.current_revision().await.unwrap() > last);
    // History is still there to replay.
    let mut w = s
        .watch(
            KeyRange::prefix("/k/"),
            first.mod_revision,
            WatchOptions::default(),
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    while events.len() < 4 {
        if let WatchMessage::Events(evs) = next_msg(&mut w, 10).await.unwrap() {
            events.extend(evs);
        }
    }
    assert_eq!(events[0].kv, first);
    assert_eq!(events[1].kv, kept);
    assert_eq!(events[3].kv.mod_revision, last);
    // The expired key is gone within a tick of reopening.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.get("/k/ttl").await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "expired key still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Revisions continue after the reopen.
    let next = s.create("/k/c", b("c"), NO).await.unwrap();
    assert!(next.mod_revision > last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_the_datastore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let s = SqliteStore::open(&db).unwrap();
    // flock locks belong to open file descriptions, so a second open in the same process is
    // refused just as another process would be.
    match SqliteStore::open(&db) {
        Err(Error::InUse { path }) => assert_eq!(path, db),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened twice"),
    }
    s.close().await;
    drop(s);
    SqliteStore::open(&db).expect("free again once closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_history_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let s = SqliteStore::open(&db).unwrap();
    for k in 0..20 {
        let mut kv = s.create(&format!("/c/{k}"), b("0"), NO).await.unwrap();
        for i in 1..50 {
            kv = s
                .update(&format!("/c/{k}"), b(&i.to_string()), kv.mod_revision, NO)
                .await
                .unwrap();
        }
    }
    for k in 0..5 {
        s.delete(&format!("/c/{k}"), None).await.unwrap();
    }
    assert_eq!(log_rows(&db), 20 * 50 + 5);
    let rev = s.current_revision().await.unwrap();
    s.compact(rev).await.unwrap();
    // Physical deletion runs in the background, chunk by chunk.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = log_rows(&db);
        // 15 live keys, and the deletion at `rev` itself stays (with the row it replaced).
        if rows <= 17 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows} rows left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = s.range(RangeRequest::prefix("/c/")).await.unwrap();
    assert_eq!(all.count, 15);
    assert!(all.kvs.iter().all(|kv| kv.value == b("49")));
    let at = s
        .range(RangeRequest::prefix("/c/").at_revision(rev))
        .await
        .unwrap();
    assert_eq!(at.count, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_while_writing_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let snap = dir.path().join("backup.db");
    let s = SqliteStore::open(&db).unwrap();
    for i in 0..200 {
        s.create(&format!("/s/{i:03}"), b(&i.to_string()), NO)
            .await
            .unwrap();
    }
    // Writes continue while the snapshot is taken.
    let writer = {
        let s = std::sync::Arc::new(s);
        let w = s.clone();
        let task = tokio::spawn(async move {
            for i in 200..600 {
                w.create(&format!("/s/{i:03}"), b(&i.to_string()), NO)
                    .await
                    .unwrap();
            }
        });
        let db2 = db.clone();
        let snap2 = snap.clone();
        let info = tokio::task::spawn_blocking(move || snapshot::save(&db2, &snap2))
            .await
            .unwrap()
            .unwrap();
        task.await.unwrap();
        (s, info)
    };
    let (s, info) = writer;
    assert!(info.keys >= 200 && info.keys <= 600, "{info:?}");
    // The snapshot holds exactly the keys of its revision: a prefix of the creation order.
    assert_eq!(
        snapshot::inspect(&snap).unwrap().keys,
        info.keys,
        "inspect agrees"
    );
    let final_rev = s.current_revision().await.unwrap();

    // Restoring while the server runs is refused, and changes nothing.
    match snapshot::restore(&snap, &db) {
        Err(Error::InUse { .. }) => {}
        other => panic!("restore under a running store: {other:?}"),
    }
    s.close().await;
    drop(s);

    let restored = snapshot::restore(&snap, &db).unwrap();
    assert_eq!(restored.snapshot.keys, info.keys);
    assert!(
        restored.revision > final_rev,
        "revisions never go backwards"
    );
    let previous = restored.previous.expect("the replaced datastore is kept");
    assert_eq!(snapshot::inspect(&previous).unwrap().keys, 600);

    let s = SqliteStore::open(&db).unwrap();
    let all = s.range(RangeRequest::prefix("/s/")).await.unwrap();
    assert_eq!(all.count, info.keys);
    for (i, kv) in all.kvs.iter().enumerate() {
        assert_eq!(kv.key, format!("/s/{i:03}"));
        assert_eq!(kv.value, b(&i.to_string()));
    }
    assert_eq!(s.current_revision().await.unwrap(), restored.revision);
    // Watchers from before the restore are told to re-list.
    let mut w = s
        .watch(KeyRange::prefix("/s/"), final_rev, WatchOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut w, 10).await,
        Err(Error::Compacted { .. })
    ));
    let next = s.create("/s/new", b("n"), NO).await.unwrap();
    assert_eq!(next.mod_revision, restored.revision + 1);
}

#[tokio::test]
async fn restore_refuses_a_bad_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, b"definitely not a database, just some bytes").unwrap();
    {
        let s = SqliteStore::open(&db).unwrap();
        s.create("/x", b("keep"), NO).await.unwrap();
        s.close().await;
    }
    let before = std::fs::read(&db).unwrap();
    match snapshot::restore(&bad, &db) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, bad),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "datastore untouched");
    let missing = dir.path().join("missing.db");
    assert!(snapshot::restore(&missing, &db).is_err());
}

#[tokio::test]
async fn garbage_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let garbage = vec![0x5au8; 64 * 1024];
    std::fs::write(&db, &garbage).unwrap();
    match SqliteStore::open(&db) {
        Err(Error::Corrupt { path, message }) => {
            assert_eq!(path, db);
            assert!(message.contains("not an SQLite database"), "{message}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a garbage file"),
    }
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "never replaced");
}

#[tokio::test]
async fn damaged_pages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&db).unwrap();
        for i in 0..2000 {
            s.create(&format!("/d/{i:05}"), b(&"x".repeat(200)), NO)
                .await
                .unwrap();
        }
        s.close().await;
    }
    // Scribble over pages in the middle of the file (past the header and schema).
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 64 * 1024, "file is {} bytes", bytes.len());
    for (i, byte) in bytes[16 * 1024..48 * 1024].iter_mut().enumerate() {
        *byte = (i * 7 + 13) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    match SqliteStore::open(&db) {
        Err(Error::Corrupt { path, message }) => {
            assert_eq!(path, db);
            assert!(
                message.contains("corrupt") || message.contains("malformed"),
                "{message}"
            );
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a damaged datastore"),
    }
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "never replaced");
}

#[tokio::test]
async fn unreadable_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the datastore file should be cannot be read as one.
    let db = dir.path().join("state.db");
    std::fs::create_dir(&db).unwrap();
    match SqliteStore::open(&db) {
        Err(Error::Corrupt { path, message }) => {
            assert_eq!(path, db);
            assert!(message.contains("cannot"), "{message}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a directory"),
    }
    assert!(db.is_dir());
}

#[tokio::test]
async fn a_foreign_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, data BLOB)")
            .unwrap();
    }
    match SqliteStore::open(&db) {
        Err(Error::Corrupt { message, .. }) => {
            assert!(message.contains("not an rkube datastore"), "{message}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a foreign database"),
    }
}

#[tokio::test]
async fn an_empty_file_is_initialised() {
    // What an interrupted very first start can leave behind.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    std::fs::write(&db, b"").unwrap();
    let s = SqliteStore::open(&db).unwrap();
    s.create("/e", b("1"), NO).await.unwrap();
    assert_eq!(s.get("/e").await.unwrap().unwrap().value, b("1"));
}
