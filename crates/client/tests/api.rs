//! rkube-client against the in-process API server: an informer's store and handlers follow
//! creates, updates and deletes with a working index; leader election hands a Lease from
//! one candidate to another with client-go's record semantics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use rkube_apiserver::testing::TestServer;
use rkube_client::{Change, Informer, LeaderElectionConfig, LeaderElector, WorkQueue, key_of};

async fn client(s: &TestServer) -> kube::Client {
    rkube_client::client_from_kubeconfig(&s.kubeconfig)
        .await
        .expect("client")
}

fn cm(name: &str, color: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("color".to_string(), color.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informer_follows_changes_and_indexes() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &cm("before", "red"))
        .await
        .unwrap();

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let queue: WorkQueue<String> = WorkQueue::default();
    let informer = Informer::new(api.clone(), watcher::Config::default())
        .with_index("color", |o: &ConfigMap| {
            o.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("color").cloned())
                .into_iter()
                .collect()
        })
        .on_change({
            let seen = seen.clone();
            let queue = queue.clone();
            move |c| {
                let what = match c {
                    Change::Added(o) => format!("add {}", key_of(o.as_ref())),
                    Change::Updated { new, .. } => format!("update {}", key_of(new.as_ref())),
                    Change::Deleted(o) => format!("delete {}", key_of(o.as_ref())),
                };
                seen.lock().unwrap().push(what);
                queue.add(key_of(c.object().as_ref()));
            }
        });
    let informer = informer.with_transform(rkube_client::strip_managed_fields);
    let store = informer.store();
    let task = tokio::spawn(informer.run());
    tokio::time::timeout(Duration::from_secs(10), store.wait_synced())
        .await
        .expect("synced");
    assert!(store.get("default/before").is_some());
    assert_eq!(store.by_index("color", "red").len(), 1);
    assert!(
        store
            .get("default/before")
            .unwrap()
            .metadata
            .managed_fields
            .is_none(),
        "the transform ran before storing"
    );
    assert!(
        api.get("before")
            .await
            .unwrap()
            .metadata
            .managed_fields
            .is_some()
    );

    api.create(&PostParams::default(), &cm("after", "red"))
        .await
        .unwrap();
    eventually("second red", || store.by_index("color", "red").len() == 2).await;

    let mut changed = api.get("before").await.unwrap();
    changed
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("color".into(), "blue".into());
    api.replace("before", &PostParams::default(), &changed)
        .await
        .unwrap();
    eventually("re-indexed", || {
        store.by_index("color", "blue").len() == 1 && store.by_index("color", "red").len() == 1
    })
    .await;

    api.delete("after", &DeleteParams::default()).await.unwrap();
    eventually("deleted", || store.get("default/after").is_none()).await;
    assert!(store.by_index("color", "red").is_empty());

    // Handlers run right after the store is updated.
    eventually("delete handled", || {
        seen.lock()
            .unwrap()
            .contains(&"delete default/after".to_string())
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.contains(&"add default/before".to_string()), "{seen:?}");
    assert!(seen.contains(&"add default/after".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"update default/before".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"delete default/after".to_string()),
        "{seen:?}"
    );
    // Keys were de-duplicated in the queue: at most one entry per object.
    assert!(queue.len() <= 2);
    task.abort();
}

fn fast(identity: &str) -> LeaderElectionConfig {
    let mut c = LeaderElectionConfig::new("kube-system", "test-leader", identity);
    c.lease_duration = Duration::from_secs(3);
    c.renew_deadline = Duration::from_secs(2);
    c.retry_period = Duration::from_millis(500);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over_the_lease() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-system");

    let a = LeaderElector::new(c.clone(), fast("a")).unwrap();
    let b = LeaderElector::new(c.clone(), fast("b")).unwrap();
    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "a creates the lease"
    );
    let first = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_duration_seconds, Some(3));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(first.acquire_time.is_some() && first.renew_time.is_some());

    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "a holds a live lease"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    let renewed = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert!(renewed.renew_time > first.renew_time);
    assert_eq!(renewed.lease_transitions, Some(0));

    // a stops renewing: b takes over once the record was unchanged for leaseDuration.
    let started = tokio::time::Instant::now();
    b.acquire().await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "b waited for expiry"
    );
    let taken = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(taken.lease_transitions, Some(1));
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a lost it");

    // b releases: a acquires at once.
    b.release().await.unwrap();
    let released = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(released.holder_identity.as_deref(), Some(""));
    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "released lease is free"
    );
    let back = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(back.lease_transitions, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_leads_then_releases_and_one_leader_at_a_time() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let a = LeaderElector::new(c.clone(), fast("a")).unwrap();
    let b = Arc::new(LeaderElector::new(c.clone(), fast("b")).unwrap());
    let leading = Arc::new(Mutex::new(Vec::new()));
    let l = leading.clone();
    let out = a
        .run(async move {
            l.lock().unwrap().push("a");
            tokio::time::sleep(Duration::from_secs(3)).await;
            7
        })
        .await
        .unwrap();
    assert_eq!(out, 7, "a renewed past the lease duration and finished");
    let l = leading.clone();
    let b2 = b.clone();
    let done = tokio::time::timeout(
        Duration::from_secs(5),
        b2.run(async move {
            l.lock().unwrap().push("b");
        }),
    )
    .await
    .expect("b leads promptly after a released");
    done.unwrap();
    assert_eq!(*leading.lock().unwrap(), vec!["a", "b"]);
    assert!(
        LeaderElector::new(c, {
            let mut x = fast("c");
            x.renew_deadline = Duration::from_secs(5);
            x
        })
        .is_err(),
        "renew deadline longer than the lease is rejected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_lost_when_the_lease_cannot_be_renewed() {
    let s = TestServer::start().await;
    let c = client(&s).await;
    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-system");
    let a = LeaderElector::new(c.clone(), fast("a")).unwrap();
    let stolen = async {
        // Once a leads, another party takes the Lease over for a long time.
        loop {
            if let Ok(Some(l)) = leases.get_opt("test-leader").await
                && l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some("a")
            {
                let mut l = l;
                let spec = l.spec.as_mut().unwrap();
                spec.holder_identity = Some("intruder".into());
                spec.lease_duration_seconds = Some(3600);
                leases
                    .replace("test-leader", &PostParams::default(), &l)
                    .await
                    .unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let started = tokio::time::Instant::now();
    let (result, ()) = tokio::join!(a.run(std::future::pending::<()>()), stolen);
    let err = result.expect_err("the work never ends; only losing the lease stops it");
    assert!(
        matches!(err, rkube_client::LeaderError::Lost { .. }),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "after the renew deadline"
    );
    let spec = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("intruder"));
}
