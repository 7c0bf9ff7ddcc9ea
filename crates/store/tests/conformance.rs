//! The storage conformance suite: every test here runs against each backend (memory, SQLite,
//! and a real etcd started for the test), so all three keep the same etcd v3 semantics.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Fixture, next_msg};
use rkube_store::{
    Error, EventKind, KeyRange, RangeRequest, Store, UpdateAction, WatchMessage, WatchOptions,
    WriteOptions, guaranteed_update,
};

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::common::memory().await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::common::sqlite().await).await
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::common::etcd().await).await
                }
            )*
        }
    };
}

conformance!(
    create_get_update_delete,
    revisions_grow_by_one_per_write,
    range_order_limit_count,
    range_at_past_revision,
    past_revisions_match_a_model_under_churn,
    paging_at_one_revision_while_writing,
    guaranteed_update_counts_exactly,
    guaranteed_update_creates_and_deletes,
    watch_from_now_sees_only_later_writes,
    watch_is_ordered_without_gaps_under_concurrent_writers,
    watch_replays_from_old_revision,
    watch_carries_previous_values,
    watch_filters_by_range,
    slow_watcher_loses_nothing,
    compaction,
    ttl_keys_expire,
    progress_notifications,
);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

const NO: WriteOptions = WriteOptions { ttl: None };

async fn create_get_update_delete(fx: Fixture) {
    let s = &fx.store;
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    let a = s.create("/t/a", b("1"), NO).await.unwrap();
    assert_eq!(a.version, 1);
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(s.get("/t/a").await.unwrap(), Some(a.clone()));

    match s.create("/t/a", b("x"), NO).await {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, "/t/a"),
        other => panic!("create of an existing key: {other:?}"),
    }

    let a2 = s.update("/t/a", b("2"), a.mod_revision, NO).await.unwrap();
    assert_eq!(a2.version, 2);
    assert_eq!(a2.create_revision, a.create_revision);
    assert!(a2.mod_revision > a.mod_revision);
    assert_eq!(a2.value, b("2"));

    match s.update("/t/a", b("3"), a.mod_revision, NO).await {
        Err(Error::Conflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, a.mod_revision);
            assert_eq!(*current, a2);
        }
        other => panic!("stale update: {other:?}"),
    }
    match s.update("/t/missing", b("3"), 5, NO).await {
        Err(Error::NotFound { key }) => assert_eq!(key, "/t/missing"),
        other => panic!("update of a missing key: {other:?}"),
    }
    match s.delete("/t/a", Some(a.mod_revision)).await {
        Err(Error::Conflict { current, .. }) => assert_eq!(*current, a2),
        other => panic!("stale delete: {other:?}"),
    }
    assert_eq!(
        s.get("/t/a").await.unwrap(),
        Some(a2.clone()),
        "nothing changed"
    );

    let (prev, rev) = s.delete("/t/a", Some(a2.mod_revision)).await.unwrap();
    assert_eq!(prev, a2);
    assert!(rev > a2.mod_revision);
    assert_eq!(s.get("/t/a").await.unwrap(), None);
    assert!(matches!(
        s.delete("/t/a", None).await,
        Err(Error::NotFound { .. })
    ));

    // A key created again starts over.
    let again = s.create("/t/a", b("new"), NO).await.unwrap();
    assert_eq!(again.version, 1);
    assert!(again.create_revision > rev);
    let (prev, _) = s.delete("/t/a", None).await.unwrap();
    assert_eq!(prev.value, b("new"));
}

async fn revisions_grow_by_one_per_write(fx: Fixture) {
    let s = &fx.store;
    let r0 = s.current_revision().await.unwrap();
    assert!(r0 >= 1);
    let a = s.create("/r/a", b("1"), NO).await.unwrap();
    assert_eq!(a.mod_revision, r0 + 1);
    let a = s.update("/r/a", b("2"), a.mod_revision, NO).await.unwrap();
    assert_eq!(a.mod_revision, r0 + 2);
    let (_, del) = s.delete("/r/a", None).await.unwrap();
    assert_eq!(del, r0 + 3);
    // Failed writes do not use revisions.
    let _ = s.delete("/r/a", None).await;
    let _ = s.update("/r/zz", b("x"), 1, NO).await;
    assert_eq!(s.current_revision().await.unwrap(), r0 + 3);
    let resp = s.range(RangeRequest::prefix("/r/")).await.unwrap();
    assert_eq!(resp.revision, r0 + 3);
}

async fn range_order_limit_count(fx: Fixture) {
    let s = &fx.store;
    // Created in scrambled order; read back in key order.
    let mut names: Vec<String> = (0..25).map(|i| format!("/p/k{i:02}")).collect();
    names.reverse();
    names.swap(3, 17);
    for n in &names {
        s.create(n, b(n), NO).await.unwrap();
    }
    s.create("/p0", b("outside"), NO).await.unwrap();
    s.create("/o/x", b("outside"), NO).await.unwrap();

    let all = s.range(RangeRequest::prefix("/p/")).await.unwrap();
    assert_eq!(all.count, 25);
    assert!(!all.more);
    let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 25);
    assert!(all.kvs.iter().all(|kv| kv.value == b(&kv.key)));

    let page = s
        .range(RangeRequest::prefix("/p/").limit(10))
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 10);
    assert!(page.more);
    assert_eq!(page.count, 25);

    let count = s
        .range(RangeRequest::prefix("/p/").count_only())
        .await
        .unwrap();
    assert_eq!(count.count, 25);
    assert!(count.kvs.is_empty());

    let one = s
        .range(RangeRequest::new(KeyRange::key("/p/k03")))
        .await
        .unwrap();
    assert_eq!(one.kvs.len(), 1);
    assert_eq!(one.kvs[0].key, "/p/k03");

    let between = s
        .range(RangeRequest::new(KeyRange::between("/p/k05", "/p/k08")))
        .await
        .unwrap();
    let keys: Vec<&str> = between.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/k05", "/p/k06", "/p/k07"]);

    let empty = s.range(RangeRequest::prefix("/nothing/")).await.unwrap();
    assert_eq!(empty.count, 0);
    assert!(empty.kvs.is_empty() && !empty.more);
}

async fn range_at_past_revision(fx: Fixture) {
    let s = &fx.store;
    let a = s.create("/h/a", b("a1"), NO).await.unwrap();
    let bb = s.create("/h/b", b("b1"), NO).await.unwrap();
    let at = s.current_revision().await.unwrap();
    s.update("/h/a", b("a2"), a.mod_revision, NO).await.unwrap();
    s.delete("/h/b", Some(bb.mod_revision)).await.unwrap();
    s.create("/h/c", b("c1"), NO).await.unwrap();

    let old = s
        .range(RangeRequest::prefix("/h/").at_revision(at))
        .await
        .unwrap();
    let got: Vec<(&str, &[u8])> = old
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_ref()))
        .collect();
    assert_eq!(got, [("/h/a", &b"a1"[..]), ("/h/b", &b"b1"[..])]);
    assert_eq!(old.count, 2);
    assert_eq!(old.kvs[0].mod_revision, a.mod_revision);

    let now = s.range(RangeRequest::prefix("/h/")).await.unwrap();
    let got: Vec<(&str, &[u8])> = now
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_ref()))
        .collect();
    assert_eq!(got, [("/h/a", &b"a2"[..]), ("/h/c", &b"c1"[..])]);

    let future = now.revision + 100;
    match s
        .range(RangeRequest::prefix("/h/").at_revision(future))
        .await
    {
        Err(Error::FutureRevision { requested, .. }) => assert_eq!(requested, future),
        other => panic!("read at a future revision: {other:?}"),
    }
}

/// Random creates, updates, deletes and re-creates; the state after every few writes is
/// recorded, and a read at each of those revisions (whole and paged) must match it, before
/// and after compacting part of the history.
/// What a range shows: key → (value, mod revision).
type Snapshot = BTreeMap<String, (Bytes, i64)>;

async fn past_revisions_match_a_model_under_churn(fx: Fixture) {
    use rand::{Rng, SeedableRng};
    let s = &fx.store;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = Snapshot::new();
    let mut snapshots: Vec<(i64, Snapshot)> = Vec::new();
    for step in 0..600 {
        let key = format!("/m/{:02}", rng.random_range(0..40));
        let value = b(&format!("v{step}"));
        match model.get(&key).cloned() {
            None => {
                let kv = s.create(&key, value.clone(), NO).await.unwrap();
                model.insert(key, (value, kv.mod_revision));
            }
            Some((_, rev)) if rng.random_bool(0.3) => {
                s.delete(&key, Some(rev)).await.unwrap();
                model.remove(&key);
            }
            Some((_, rev)) => {
                let kv = s.update(&key, value.clone(), rev, NO).await.unwrap();
                model.insert(key, (value, kv.mod_revision));
            }
        }
        if step % 7 == 0 {
            snapshots.push((s.current_revision().await.unwrap(), model.clone()));
        }
    }
    let check = |at: i64, want: Snapshot| async move {
        let whole = s
            .range(RangeRequest::prefix("/m/").at_revision(at))
            .await
            .unwrap();
        let got: Snapshot = whole
            .kvs
            .iter()
            .map(|kv| (kv.key.clone(), (kv.value.clone(), kv.mod_revision)))
            .collect();
        assert_eq!(got, want, "range at {at}");
        assert_eq!(whole.count as usize, want.len());
        // The same in pages of 7.
        let mut paged = BTreeMap::new();
        let mut req = RangeRequest::prefix("/m/").limit(7).at_revision(at);
        loop {
            let page = s.range(req.clone()).await.unwrap();
            for kv in &page.kvs {
                paged.insert(kv.key.clone(), (kv.value.clone(), kv.mod_revision));
            }
            if !page.more {
                break;
            }
            let mut start = page.kvs.last().unwrap().key.clone().into_bytes();
            start.push(0);
            req = RangeRequest::new(KeyRange::prefix("/m/").starting_at(start))
                .limit(7)
                .at_revision(at);
        }
        assert_eq!(paged, want, "paged range at {at}");
    };
    for (at, want) in snapshots.clone() {
        check(at, want).await;
    }
    let (cut, _) = snapshots[snapshots.len() / 2].clone();
    s.compact(cut).await.unwrap();
    // Give a backend that compacts in the background time to do so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (at, want) in snapshots {
        if at >= cut {
            check(at, want).await;
        } else {
            assert!(matches!(
                s.range(RangeRequest::prefix("/m/").at_revision(at)).await,
                Err(Error::Compacted { .. })
            ));
        }
    }
}

async fn paging_at_one_revision_while_writing(fx: Fixture) {
    let s = fx.store.clone();
    for i in 0..300 {
        s.create(&format!("/pg/{i:04}"), b(&format!("v{i}")), NO)
            .await
            .unwrap();
    }
    let expected: BTreeMap<String, Bytes> = (0..300)
        .map(|i| (format!("/pg/{i:04}"), b(&format!("v{i}"))))
        .collect();
    let first = s
        .range(RangeRequest::prefix("/pg/").limit(40))
        .await
        .unwrap();
    let at = first.revision;

    // Keep changing the range while the rest of the pages are read at `at`.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..150 {
                let key = format!("/pg/{:04}", i * 2);
                let cur = s.get(&key).await.unwrap().unwrap();
                s.update(&key, b("changed"), cur.mod_revision, NO)
                    .await
                    .unwrap();
                s.delete(&format!("/pg/{:04}", i * 2 + 1), None)
                    .await
                    .unwrap();
                s.create(&format!("/pg/{:04}x", i), b("new"), NO)
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut page = first;
    loop {
        assert_eq!(page.count as usize, expected.len() - seen.len());
        for kv in &page.kvs {
            seen.insert(kv.key.clone(), kv.value.clone());
        }
        if !page.more {
            break;
        }
        let last = page.kvs.last().unwrap().key.clone();
        let mut start = last.into_bytes();
        start.push(0);
        page = s
            .range(
                RangeRequest::new(KeyRange::prefix("/pg/").starting_at(start))
                    .limit(40)
                    .at_revision(at),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    assert_eq!(seen, expected, "every page shows the snapshot at {at}");
}

async fn guaranteed_update_counts_exactly(fx: Fixture) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 40;
    let s = fx.store.clone();
    s.create("/cas/counter", b("0"), NO).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0usize;
            for _ in 0..INCREMENTS {
                guaranteed_update::<Error, _>(s.as_ref(), "/cas/counter", None, |cur| {
                    attempts += 1;
                    let n: u64 = std::str::from_utf8(&cur.expect("exists").value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    Ok(UpdateAction::Put(b(&(n + 1).to_string()), NO))
                })
                .await
                .unwrap();
            }
            attempts
        }));
    }
    let mut attempts = 0;
    for t in tasks {
        attempts += t.await.unwrap();
    }
    let kv = s.get("/cas/counter").await.unwrap().unwrap();
    assert_eq!(kv.value, b(&(TASKS * INCREMENTS).to_string()));
    assert_eq!(kv.version as usize, TASKS * INCREMENTS + 1);
    assert!(attempts >= TASKS * INCREMENTS);
}

async fn guaranteed_update_creates_and_deletes(fx: Fixture) {
    let s = fx.store.as_ref();
    let created = guaranteed_update::<Error, _>(s, "/gu/x", None, |cur| {
        assert!(cur.is_none());
        Ok(UpdateAction::Put(b("first"), NO))
    })
    .await
    .unwrap();
    let rkube_store_outcome = format!("{created:?}");
    assert!(
        rkube_store_outcome.contains("Written"),
        "{rkube_store_outcome}"
    );

    // A stale hint is corrected by the conflict it causes.
    let stale = s.get("/gu/x").await.unwrap();
    let cur = stale.clone().unwrap();
    s.update("/gu/x", b("second"), cur.mod_revision, NO)
        .await
        .unwrap();
    let mut seen = Vec::new();
    guaranteed_update::<Error, _>(s, "/gu/x", Some(stale), |cur| {
        seen.push(cur.unwrap().value.clone());
        Ok(UpdateAction::Put(b("third"), NO))
    })
    .await
    .unwrap();
    assert_eq!(seen, [b("first"), b("second")]);
    assert_eq!(s.get("/gu/x").await.unwrap().unwrap().value, b("third"));

    // Keep leaves the key alone; Delete removes it; errors from the closure come back as is.
    let before = s.current_revision().await.unwrap();
    guaranteed_update::<Error, _>(s, "/gu/x", None, |_| Ok(UpdateAction::Keep))
        .await
        .unwrap();
    assert_eq!(s.current_revision().await.unwrap(), before);
    let err = guaranteed_update::<Error, _>(s, "/gu/x", None, |_| {
        Err(Error::InvalidArgument("refused".into()))
    })
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(m) if m == "refused"));
    guaranteed_update::<Error, _>(s, "/gu/x", None, |_| Ok(UpdateAction::Delete))
        .await
        .unwrap();
    assert_eq!(s.get("/gu/x").await.unwrap(), None);
}

async fn watch_from_now_sees_only_later_writes(fx: Fixture) {
    let s = &fx.store;
    s.create("/wn/before", b("1"), NO).await.unwrap();
    let mut w = s
        .watch(KeyRange::prefix("/wn/"), 0, WatchOptions::default())
        .await
        .unwrap();
    let after = s.create("/wn/after", b("2"), NO).await.unwrap();
    match next_msg(&mut w, 10).await.unwrap() {
        WatchMessage::Events(evs) => {
            assert_eq!(evs.len(), 1);
            assert_eq!(evs[0].kind, EventKind::Put);
            assert_eq!(evs[0].kv, after);
        }
        other => panic!("{other:?}"),
    }
}

/// Collects events from a watch until `n` have arrived.
async fn collect(w: &mut rkube_store::WatchStream, n: usize) -> Vec<rkube_store::Event> {
    let mut out = Vec::new();
    while out.len() < n {
        match next_msg(w, 30).await.unwrap() {
            WatchMessage::Events(evs) => out.extend(evs),
            WatchMessage::Progress(_) => {}
        }
    }
    assert_eq!(out.len(), n, "no more events than written");
    out
}

async fn watch_is_ordered_without_gaps_under_concurrent_writers(fx: Fixture) {
    const WRITERS: usize = 6;
    const WRITES: usize = 60;
    let s = fx.store.clone();
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s
        .watch(KeyRange::prefix("/wo/"), start, WatchOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/wo/{t}");
            let mut kv = s.create(&key, b("0"), NO).await.unwrap();
            for i in 1..WRITES {
                kv = s
                    .update(&key, b(&i.to_string()), kv.mod_revision, NO)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = collect(&mut w, WRITERS * WRITES).await;
    let revs: Vec<i64> = events.iter().map(|e| e.revision()).collect();
    assert!(revs.windows(2).all(|p| p[0] < p[1]), "strictly increasing");
    assert_eq!(
        revs.iter().collect::<HashSet<_>>().len(),
        revs.len(),
        "no duplicates"
    );
    // No gaps: nothing else writes here, so the revisions are consecutive.
    assert_eq!(*revs.last().unwrap() - revs[0] + 1, revs.len() as i64);
    // Each key's values arrive in the order they were written.
    let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
    for e in &events {
        per_key
            .entry(e.kv.key.clone())
            .or_default()
            .push(String::from_utf8(e.kv.value.to_vec()).unwrap());
    }
    for values in per_key.values() {
        let want: Vec<String> = (0..WRITES).map(|i| i.to_string()).collect();
        assert_eq!(values, &want);
    }
    // A second watch replaying the same span sees exactly the same sequence.
    let mut replay = s
        .watch(KeyRange::prefix("/wo/"), start, WatchOptions::default())
        .await
        .unwrap();
    let again = collect(&mut replay, WRITERS * WRITES).await;
    assert_eq!(again, events);
}

async fn watch_replays_from_old_revision(fx: Fixture) {
    let s = &fx.store;
    let mut revs = Vec::new();
    for i in 0..50 {
        revs.push(
            s.create(&format!("/wr/{i:02}"), b("x"), NO)
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let mut w = s
        .watch(KeyRange::prefix("/wr/"), revs[10], WatchOptions::default())
        .await
        .unwrap();
    let events = collect(&mut w, 40).await;
    let got: Vec<i64> = events.iter().map(|e| e.revision()).collect();
    assert_eq!(got, revs[10..]);
    // ...and then continues live.
    let live = s.create("/wr/live", b("y"), NO).await.unwrap();
    let more = collect(&mut w, 1).await;
    assert_eq!(more[0].kv, live);
}

async fn watch_carries_previous_values(fx: Fixture) {
    let s = &fx.store;
    let opts = WatchOptions {
        prev_kv: true,
        ..Default::default()
    };
    let mut w = s.watch(KeyRange::prefix("/wp/"), 0, opts).await.unwrap();
    let v1 = s.create("/wp/k", b("1"), NO).await.unwrap();
    let v2 = s
        .update("/wp/k", b("2"), v1.mod_revision, NO)
        .await
        .unwrap();
    let (_, del) = s.delete("/wp/k", None).await.unwrap();
    let events = collect(&mut w, 3).await;
    assert_eq!(events[0].kind, EventKind::Put);
    assert_eq!(events[0].prev_kv, None);
    assert_eq!(events[1].kv, v2);
    assert_eq!(events[1].prev_kv.as_ref(), Some(&v1));
    assert_eq!(events[2].kind, EventKind::Delete);
    assert_eq!(events[2].kv.key, "/wp/k");
    assert_eq!(events[2].kv.mod_revision, del);
    assert!(events[2].kv.value.is_empty());
    assert_eq!(events[2].prev_kv.as_ref(), Some(&v2));

    // The same history replayed from the log carries the same previous values.
    let mut replay = s
        .watch(KeyRange::prefix("/wp/"), v1.mod_revision, opts)
        .await
        .unwrap();
    assert_eq!(collect(&mut replay, 3).await, events);

    // Without prev_kv, none is attached.
    let mut bare = s
        .watch(
            KeyRange::prefix("/wp/"),
            v1.mod_revision,
            WatchOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        collect(&mut bare, 3)
            .await
            .iter()
            .all(|e| e.prev_kv.is_none())
    );
}

async fn watch_filters_by_range(fx: Fixture) {
    let s = &fx.store;
    let mut w = s
        .watch(KeyRange::prefix("/wf/a/"), 0, WatchOptions::default())
        .await
        .unwrap();
    s.create("/wf/b/1", b("no"), NO).await.unwrap();
    s.create("/wf/a", b("no"), NO).await.unwrap();
    s.create("/wf/a0", b("no"), NO).await.unwrap();
    let yes = s.create("/wf/a/1", b("yes"), NO).await.unwrap();
    let events = collect(&mut w, 1).await;
    assert_eq!(events[0].kv, yes);
    // Nothing else is pending.
    let more = tokio::time::timeout(Duration::from_millis(300), w.next_message()).await;
    assert!(more.is_err(), "unexpected message: {more:?}");
}

async fn slow_watcher_loses_nothing(fx: Fixture) {
    // More single-write commits than the live fan-out buffers, while the watcher reads none.
    const TASKS: usize = 16;
    const PER_TASK: usize = 400;
    let s = fx.store.clone();
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s
        .watch(KeyRange::prefix("/slow/"), start, WatchOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                s.create(&format!("/slow/{t:02}/{i:04}"), b("v"), NO)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = collect(&mut w, TASKS * PER_TASK).await;
    let revs: Vec<i64> = events.iter().map(|e| e.revision()).collect();
    assert!(revs.windows(2).all(|p| p[1] == p[0] + 1), "consecutive");
    assert_eq!(revs[0], start);
}

async fn compaction(fx: Fixture) {
    let s = &fx.store;
    let mut kv = s.create("/c/k", b("0"), NO).await.unwrap();
    let first = kv.mod_revision;
    for i in 1..10 {
        kv = s
            .update("/c/k", b(&i.to_string()), kv.mod_revision, NO)
            .await
            .unwrap();
    }
    s.create("/c/other", b("o"), NO).await.unwrap();
    let (_, at) = s.delete("/c/other", None).await.unwrap(); // "/c/k" holds "9" here
    s.update("/c/k", b("10"), kv.mod_revision, NO)
        .await
        .unwrap();

    s.compact(at).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), at);

    match s
        .range(RangeRequest::prefix("/c/").at_revision(at - 1))
        .await
    {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, at - 1);
            assert_eq!(compacted, at);
        }
        other => panic!("read below the compacted revision: {other:?}"),
    }
    // The compacted revision itself is still readable.
    let snap = s
        .range(RangeRequest::prefix("/c/").at_revision(at))
        .await
        .unwrap();
    assert_eq!(snap.kvs.len(), 1);
    assert_eq!(snap.kvs[0].value, b("9"));

    let mut w = s
        .watch(KeyRange::prefix("/c/"), first, WatchOptions::default())
        .await
        .unwrap();
    match next_msg(&mut w, 10).await {
        Err(Error::Compacted { requested, .. }) => assert_eq!(requested, first),
        other => panic!("watch from a compacted revision: {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(10), w.next_message())
            .await
            .unwrap()
            .is_none(),
        "the watch ends after the error"
    );
    // A watch from the compacted revision on still works.
    let mut w = s
        .watch(KeyRange::prefix("/c/"), at + 1, WatchOptions::default())
        .await
        .unwrap();
    let events = collect(&mut w, 1).await;
    assert_eq!(events[0].kv.value, b("10"));

    // Compacting again at or below is a no-op; beyond the current revision is an error.
    s.compact(at - 2).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), at);
    let cur = s.current_revision().await.unwrap();
    assert!(matches!(
        s.compact(cur + 10).await,
        Err(Error::FutureRevision { .. })
    ));
    // Current data is untouched.
    assert_eq!(s.get("/c/k").await.unwrap().unwrap().value, b("10"));
}

async fn ttl_keys_expire(fx: Fixture) {
    let s = &fx.store;
    let mut w = s
        .watch(KeyRange::prefix("/ttl/"), 0, WatchOptions::default())
        .await
        .unwrap();
    let short = s
        .create(
            "/ttl/short",
            b("x"),
            WriteOptions::with_ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    s.create(
        "/ttl/long",
        b("x"),
        WriteOptions::with_ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    s.create("/ttl/none", b("x"), NO).await.unwrap();
    assert!(s.get("/ttl/short").await.unwrap().is_some());
    let started = Instant::now();
    loop {
        if s.get("/ttl/short").await.unwrap().is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the key outlived its TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    let events = collect(&mut w, 4).await;
    assert_eq!(events[3].kind, EventKind::Delete);
    assert_eq!(events[3].kv.key, short.key);
    assert!(s.get("/ttl/long").await.unwrap().is_some());
    assert!(s.get("/ttl/none").await.unwrap().is_some());
}

async fn progress_notifications(fx: Fixture) {
    let s = &fx.store;
    let opts = WatchOptions {
        prev_kv: false,
        progress_interval: Some(Duration::from_millis(200)),
    };
    let mut w = s.watch(KeyRange::prefix("/pn/"), 0, opts).await.unwrap();
    // Writes elsewhere move the revision; progress must report it without events.
    let mut last = 0;
    for i in 0..5 {
        last = s
            .create(&format!("/elsewhere/{i}"), b("x"), NO)
            .await
            .unwrap()
            .mod_revision;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "no progress reached {last}");
        match next_msg(&mut w, 15).await.unwrap() {
            WatchMessage::Progress(rev) if rev >= last => break,
            WatchMessage::Progress(_) => {}
            WatchMessage::Events(evs) => panic!("unexpected events {evs:?}"),
        }
    }
    // A progress notification never runs ahead of an undelivered event.
    let kv = s.create("/pn/x", b("1"), NO).await.unwrap();
    loop {
        match next_msg(&mut w, 15).await.unwrap() {
            WatchMessage::Progress(rev) => assert!(rev < kv.mod_revision),
            WatchMessage::Events(evs) => {
                assert_eq!(evs[0].kv, kv);
                break;
            }
        }
    }
}

#[allow(dead_code)]
fn _assert_object_safe(_: Arc<dyn Store>) {}
