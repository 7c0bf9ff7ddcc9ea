//! LIST and WATCH semantics through kube-rs: selectors, paging on one snapshot, expired
//! continue tokens, resource-version matching, resumed watches, selector transitions,
//! `410 Gone`, bookmarks, watch-lists (`sendInitialEvents`) and timeouts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, VersionMatch, WatchEvent, WatchParams};
use rkube_store::{Store, WriteOptions};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"v": name}}),
    )
    .unwrap()
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect()
}

async fn next_event<K: Clone + std::fmt::Debug>(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        cms.create(&PostParams::default(), &cm(n, labels))
            .await
            .unwrap();
    }
    for (sel, want) in [
        ("app=web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("app in (web,db)", vec!["a", "b", "c"]),
        ("app notin (web)", vec!["c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app=web,tier=back", vec!["b"]),
    ] {
        let got = cms.list(&ListParams::default().labels(sel)).await.unwrap();
        assert_eq!(names(&got), want, "{sel}");
    }
    let got = cms
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .unwrap();
    assert_eq!(names(&got), ["c"]);
    let got = cms
        .list(&ListParams::default().fields("metadata.name!=c"))
        .await
        .unwrap();
    assert_eq!(names(&got), ["a", "b", "d"]);
    let e = cms
        .list(&ListParams::default().fields("data.v=c"))
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 400);
            assert_eq!(s.message, "field label not supported: data.v");
        }
        other => panic!("{other:?}"),
    }
    // Pods support their extra field selectors.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (n, node) in [("p1", "n1"), ("p2", "n2")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": n},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let on_n2 = pods
        .list(&ListParams::default().fields("spec.nodeName=n2"))
        .await
        .unwrap();
    assert_eq!(on_n2.items.len(), 1);
    assert_eq!(on_n2.items[0].metadata.name.as_deref(), Some("p2"));
    let all = Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 4, "all namespaces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_one_consistent_snapshot() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..10 {
        cms.create(
            &PostParams::default(),
            &cm(&format!("c{i:02}"), json!({"n": i.to_string()})),
        )
        .await
        .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(&first), ["c00", "c01", "c02"]);
    assert_eq!(first.metadata.remaining_item_count, Some(7));
    let token = first.metadata.continue_.clone().unwrap();
    // Changes after the first page do not show in later pages.
    cms.create(&PostParams::default(), &cm("c05a", json!({})))
        .await
        .unwrap();
    cms.delete("c07", &DeleteParams::default()).await.unwrap();
    let mut all = names(&first);
    let mut cont = Some(token);
    while let Some(c) = cont {
        let page = cms
            .list(&ListParams::default().limit(3).continue_token(&c))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        all.extend(names(&page));
        cont = page.metadata.continue_.clone();
    }
    let want: Vec<String> = (0..10).map(|i| format!("c{i:02}")).collect();
    assert_eq!(all, want);

    // With a selector the pages still fill up to the limit.
    let page = cms
        .list(&ListParams::default().labels("n").limit(4))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);
    assert!(page.metadata.continue_.is_some());
    assert_eq!(page.metadata.remaining_item_count, None);

    // Once history is compacted, the token is too old: 410 with upstream's message.
    let rv: i64 = first.metadata.resource_version.unwrap().parse().unwrap();
    let current = s.store.current_revision().await.unwrap();
    assert!(current > rv);
    s.store.compact(current).await.unwrap();
    let e = cms
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(first.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(st) => {
            assert_eq!((st.code, st.reason.as_str()), (410, "Expired"));
            assert!(
                st.message
                    .starts_with("The provided continue parameter is too old"),
                "{}",
                st.message
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_version_semantics() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = cms
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let rv_after_a = a.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();

    // Exact: the state at that version.
    let exact = cms
        .list(
            &ListParams::default()
                .at(&rv_after_a)
                .matching(VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(names(&exact), ["a"]);
    // NotOlderThan / any: at least that state.
    let newer = cms
        .list(
            &ListParams::default()
                .at(&rv_after_a)
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert_eq!(names(&newer), ["a", "b"]);
    let any = cms.list(&ListParams::default().at("0")).await.unwrap();
    assert_eq!(names(&any).len(), 2);
    // A version from the future waits, then times out with 504.
    let future = (s.store.current_revision().await.unwrap() + 1000).to_string();
    match cms
        .list(&ListParams::default().at(&future))
        .await
        .unwrap_err()
    {
        kube::Error::Api(st) => {
            assert_eq!(st.code, 504);
            assert!(
                st.message.starts_with("Too large resource version"),
                "{}",
                st.message
            );
        }
        other => panic!("{other:?}"),
    }
    // A GET at version 0 reads the cache.
    let got = cms.get_metadata_opt("a").await.unwrap();
    assert!(got.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_filters_and_transitions() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut all = cms
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    let mut web = cms
        .watch(&WatchParams::default().labels("app=web"), &start)
        .await
        .unwrap()
        .boxed();
    let created = cms
        .create(&PostParams::default(), &cm("x", json!({"app": "web"})))
        .await
        .unwrap();
    let mut moved = created.clone();
    moved.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
    cms.replace("x", &PostParams::default(), &moved)
        .await
        .unwrap();
    cms.delete("x", &DeleteParams::default()).await.unwrap();

    match next_event(&mut all).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("x")),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        next_event(&mut all).await,
        WatchEvent::Modified(_)
    ));
    match next_event(&mut all).await {
        WatchEvent::Deleted(o) => {
            let rv: i64 = o.metadata.resource_version.unwrap().parse().unwrap();
            assert!(rv > 0);
        }
        e => panic!("{e:?}"),
    }
    // The filtered watch sees the object leave its selector as a deletion.
    assert!(matches!(next_event(&mut web).await, WatchEvent::Added(_)));
    match next_event(&mut web).await {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.labels.unwrap()["app"], "db"),
        e => panic!("{e:?}"),
    }
    // And nothing for the real deletion, which it no longer matches.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), web.next())
            .await
            .is_err()
    );

    // Replay from the start version sees the same three events.
    let replay: Vec<_> = cms
        .watch(&WatchParams::default().timeout(2), &start)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<&str> = replay
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(_) => Some("ADDED"),
            WatchEvent::Modified(_) => Some("MODIFIED"),
            WatchEvent::Deleted(_) => Some("DELETED"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_before_the_cache_history_is_gone() {
    // A store with history from before the server started.
    let store: Arc<dyn Store> = Arc::new(rkube_store::memory::MemoryStore::new());
    for i in 0..5 {
        store
            .create(
                &format!("/registry/configmaps/default/old{i}"),
                Bytes::from(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": format!("old{i}"), "namespace": "default"}}).to_string()),
                WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    let s = TestServer::start_with(store).await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut w = cms
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match next_event(&mut w).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version: 2"),
                "{}",
                e.message
            );
        }
        e => panic!("{e:?}"),
    }
    // A watch without a version starts with the current objects.
    let mut w = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = Vec::new();
    for _ in 0..5 {
        match next_event(&mut w).await {
            WatchEvent::Added(o) => added.push(o.metadata.name.unwrap()),
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(added, ["old0", "old1", "old2", "old3", "old4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_watch_lists_and_timeouts() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("one", json!({})))
        .await
        .unwrap();

    // Watch-list: the current state, then a bookmark marking its end.
    let mut w = cms
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .unwrap()
        .boxed();
    match next_event(&mut w).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("one")),
        e => panic!("{e:?}"),
    }
    match next_event(&mut w).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        e => panic!("{e:?}"),
    }
    // Periodic bookmarks carry the latest version (the test server sends one a second).
    let rv = cms
        .create(&PostParams::default(), &cm("two", json!({})))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Added(_)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no bookmark");
        if let WatchEvent::Bookmark(b) = next_event(&mut w).await {
            let brv: i64 = b.metadata.resource_version.parse().unwrap();
            assert!(brv >= rv.parse::<i64>().unwrap());
            break;
        }
    }
    // timeoutSeconds ends the stream.
    let started = std::time::Instant::now();
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let added = events
        .iter()
        .filter(|e| matches!(e, WatchEvent::Added(_)))
        .count();
    assert_eq!(added, 2, "the two existing objects");
    assert!(started.elapsed() < Duration::from_secs(5));
}
