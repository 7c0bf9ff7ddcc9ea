//! Durability of the SQLite datastore under SIGKILL.
//!
//! A child process (this test binary re-run as `durability_child`) writes with several
//! concurrent tasks — creates, updates and deletes — and prints an acknowledgement line after
//! each write returns. The parent kills it with SIGKILL at a random moment, reopens the
//! datastore, and checks that it opens cleanly and that every acknowledged write is there.
//! This repeats on the same datastore more than 20 times.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rkube_store::sqlite::SqliteStore;
use rkube_store::{Error, RangeRequest, Store, WriteOptions};

const DB_ENV: &str = "RKUBE_DURABILITY_DB";
const RUN_ENV: &str = "RKUBE_DURABILITY_RUN";
const KILLS: usize = 25;
const TASKS: usize = 8;

/// The writer. Only meaningful as the child of `acknowledged_writes_survive_sigkill`.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill as its child process"]
fn durability_child() {
    let db = std::env::var(DB_ENV).expect("run as the child of the durability test");
    let run: u32 = std::env::var(RUN_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = std::sync::Arc::new(SqliteStore::open(&db).expect("open"));
        let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let ack = move |line: String| {
            let mut out = out.lock().unwrap();
            writeln!(out, "{line}").unwrap();
            out.flush().unwrap();
        };
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            let ack = ack.clone();
            tasks.push(tokio::spawn(async move {
                let counter = format!("/d/counter/{run}/{t}");
                let mut cur = store
                    .create(&counter, Bytes::from_static(b"0"), WriteOptions::default())
                    .await
                    .unwrap();
                for seq in 1u64.. {
                    let key = format!("/d/keys/{run}/{t}/{seq:08}");
                    let value = Bytes::from(format!("{seq}-{}", "v".repeat(100)));
                    store
                        .create(&key, value, WriteOptions::default())
                        .await
                        .unwrap();
                    ack(format!("ack create {key} {seq}"));
                    cur = store
                        .update(
                            &counter,
                            Bytes::from(seq.to_string()),
                            cur.mod_revision,
                            WriteOptions::default(),
                        )
                        .await
                        .unwrap();
                    ack(format!("ack counter {counter} {seq}"));
                    if seq % 5 == 0 {
                        let old = format!("/d/keys/{run}/{t}/{:08}", seq - 3);
                        store.delete(&old, None).await.unwrap();
                        ack(format!("ack delete {old} 0"));
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();

    // What must be found after every kill, accumulated over all runs.
    let mut created: BTreeMap<String, u64> = BTreeMap::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_acks = 0usize;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    for run in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "durability_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DB_ENV, &db)
            .env(RUN_ENV, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("ack "))
                .collect::<Vec<String>>()
        });
        // Mostly mid-stream kills; now and then one during start-up.
        let delay = if run % 6 == 5 {
            rng.random_range(0..30)
        } else {
            rng.random_range(80..600)
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed, not finished");
        let acks = reader.join().unwrap();
        total_acks += acks.len();
        for line in acks {
            let mut parts = line.split_whitespace().skip(1);
            let (kind, key, n) = (
                parts.next().unwrap(),
                parts.next().unwrap().to_string(),
                parts.next().unwrap().parse::<u64>().unwrap(),
            );
            match kind {
                "create" => {
                    created.insert(key, n);
                }
                "delete" => {
                    deleted.insert(key);
                }
                "counter" => {
                    let e = counters.entry(key).or_default();
                    *e = (*e).max(n);
                }
                other => panic!("unknown ack {other}"),
            }
        }

        // The datastore reopens cleanly and holds every acknowledged write.
        rt.block_on(async {
            let store = match SqliteStore::open(&db) {
                Ok(s) => s,
                Err(Error::InUse { .. }) => panic!("the killed child's lock outlived it"),
                Err(e) => panic!("reopen after kill {run} failed: {e}"),
            };
            let keys = store.range(RangeRequest::prefix("/d/keys/")).await.unwrap();
            let present: BTreeMap<String, Bytes> =
                keys.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
            // Counters as stored: at least what was acknowledged, maybe more (a write can
            // commit and the kill come before its acknowledgement is printed).
            let mut stored_counters: BTreeMap<String, u64> = BTreeMap::new();
            for (key, n) in &counters {
                let kv = store.get(key).await.unwrap().expect("counter exists");
                let value: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                assert!(value >= *n, "counter {key} at {value}, acknowledged {n}");
                stored_counters.insert(key.clone(), value);
            }
            for (key, seq) in &created {
                if deleted.contains(key) {
                    assert!(!present.contains_key(key), "deleted key {key} is back");
                    continue;
                }
                if let Some(value) = present.get(key) {
                    assert!(value.starts_with(format!("{seq}-").as_bytes()));
                    continue;
                }
                // Missing is only allowed if the child may have deleted it without getting to
                // acknowledge that: the delete of `seq` follows the counter update to seq + 3.
                let (run_task, _) = key.trim_start_matches("/d/keys/").rsplit_once('/').unwrap();
                let counter = format!("/d/counter/{run_task}");
                let reached = stored_counters.get(&counter).copied().unwrap_or(0);
                assert!(
                    (seq + 3) % 5 == 0 && reached >= seq + 3,
                    "acknowledged key {key} lost (kill {run})"
                );
            }
            store.close().await;
        });
    }
    assert!(
        total_acks > 1000,
        "the children acknowledged only {total_acks} writes"
    );
    eprintln!("{KILLS} kills, {total_acks} acknowledged writes, all present");
}
