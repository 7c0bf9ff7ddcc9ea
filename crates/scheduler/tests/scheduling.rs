//! The scheduler end to end: the in-process API server, hollow nodes running the pods,
//! the scheduler as an API client. Placement rules, upstream's failure messages and
//! events, preemption, requeueing, scheduler names and leader election.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::api::PostParams;
use rkube_scheduler::{LeaderTiming, SchedulerConfig};
use serde_json::json;
use support::{Cluster, cpu, eventually, start_kubelet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_spread_over_nodes_and_run() {
    let c = Cluster::start(3).await;
    for i in 0..6 {
        c.create_pod(&format!("p{i}"), json!({}), json!({"containers": cpu("1")}))
            .await;
    }
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(c.bound_node(&format!("p{i}")).await)
            .or_default() += 1;
    }
    // LeastAllocated: equal pods fill equal nodes evenly.
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per_node:?}"
    );
    let node = c.bound_node("p0").await;
    let ev = c.event("p0", "Scheduled").await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        ev.message.as_deref(),
        Some(format!("Successfully assigned default/p0 to {node}").as_str())
    );
    // The hollow kubelet runs it.
    let pods = c.pods();
    eventually("p0 running", 30, async || {
        let p = pods.get("p0").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let described = c.kubectl(&["describe", "pod", "p0"]);
    assert!(described.contains("default-scheduler"), "{described}");
    assert!(
        described.contains("Successfully assigned default/p0"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_cpu_has_upstreams_message_and_event() {
    let c = Cluster::start(3).await;
    c.create_pod("big", json!({}), json!({"containers": cpu("100")}))
        .await;
    let want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are \
                available: 3 No preemption victims found for incoming pod.";
    assert_eq!(c.unschedulable_message("big").await, want);
    let ev = c.event("big", "FailedScheduling").await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.message.as_deref(), Some(want));
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=big",
    ]);
    assert!(events.contains("FailedScheduling"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_and_tolerations() {
    let c = Cluster::start(3).await;
    for n in ["hollow-0", "hollow-1"] {
        c.patch_node(n, json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}))
            .await;
    }
    // Give the scheduler's node informer a moment to see the taints.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        c.create_pod(&format!("plain{i}"), json!({}), json!({}))
            .await;
        assert_eq!(c.bound_node(&format!("plain{i}")).await, "hollow-2");
    }
    c.create_pod(
        "tolerant",
        json!({}),
        json!({"nodeName": null, "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    )
    .await;
    c.bound_node("tolerant").await;
    c.patch_node(
        "hollow-2",
        json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.create_pod("nowhere", json!({}), json!({})).await;
    assert_eq!(
        c.unschedulable_message("nowhere").await,
        "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_and_node_affinity() {
    let c = Cluster::start(3).await;
    c.patch_node("hollow-1", json!({"metadata": {"labels": {"disk": "ssd"}}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.create_pod("ssd", json!({}), json!({"nodeSelector": {"disk": "ssd"}}))
        .await;
    assert_eq!(c.bound_node("ssd").await, "hollow-1");
    let not_ssd = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}}});
    for i in 0..4 {
        c.create_pod(&format!("hdd{i}"), json!({}), not_ssd.clone())
            .await;
        assert_ne!(c.bound_node(&format!("hdd{i}")).await, "hollow-1");
    }
    c.create_pod("gpu", json!({}), json!({"nodeSelector": {"gpu": "yes"}}))
        .await;
    assert_eq!(
        c.unschedulable_message("gpu").await,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    // Labelling a node makes it schedulable (a node update moves it out of the parked set).
    c.patch_node("hollow-2", json!({"metadata": {"labels": {"gpu": "yes"}}}))
        .await;
    assert_eq!(c.bound_node("gpu").await, "hollow-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_keeps_replicas_apart() {
    let c = Cluster::start(3).await;
    let spec = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    let mut nodes = HashSet::new();
    for i in 0..3 {
        c.create_pod(&format!("db{i}"), json!({"app": "db"}), spec.clone())
            .await;
        nodes.insert(c.bound_node(&format!("db{i}")).await);
    }
    assert_eq!(nodes.len(), 3);
    c.create_pod("db3", json!({"app": "db"}), spec).await;
    assert_eq!(
        c.unschedulable_message("db3").await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    // A pod with affinity to the group joins one of its nodes.
    c.create_pod(
        "friend",
        json!({}),
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
    )
    .await;
    c.bound_node("friend").await;
    // Deleting a replica frees its node for the waiting one.
    c.pods()
        .delete("db0", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    c.bound_node("db3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_balances_zones() {
    let c = Cluster::start(3).await;
    for (n, zone) in [("hollow-0", "a"), ("hollow-1", "a"), ("hollow-2", "b")] {
        c.patch_node(n, json!({"metadata": {"labels": {"zone": zone}}}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spec = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
    let mut zones: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..6 {
        let name = format!("web{i}");
        c.create_pod(&name, json!({"app": "web"}), spec.clone())
            .await;
        let node = c.bound_node(&name).await;
        *zones
            .entry(if node == "hollow-2" { "b" } else { "a" })
            .or_default() += 1;
    }
    assert_eq!(zones, BTreeMap::from([("a", 3), ("b", 3)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_ports_do_not_collide() {
    let c = Cluster::start(3).await;
    let spec = json!({"containers": [{"name": "main", "image": "busybox:1.36",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
    let mut nodes = HashSet::new();
    for i in 0..3 {
        c.create_pod(&format!("hp{i}"), json!({}), spec.clone())
            .await;
        nodes.insert(c.bound_node(&format!("hp{i}")).await);
    }
    assert_eq!(nodes.len(), 3);
    c.create_pod("hp3", json!({}), spec).await;
    assert_eq!(
        c.unschedulable_message("hp3").await,
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_evicts_a_lower_priority_pod() {
    let c = Cluster::start(1).await;
    let classes: Api<PriorityClass> = Api::all(c.client.clone());
    for (name, value, policy) in [
        ("high", 1000, "PreemptLowerPriority"),
        ("polite", 2000, "Never"),
    ] {
        classes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}, "value": value,
                    "preemptionPolicy": policy}))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    c.create_pod("low", json!({}), json!({"containers": cpu("6")}))
        .await;
    c.bound_node("low").await;
    let polite = c
        .create_pod(
            "polite",
            json!({}),
            json!({"priorityClassName": "polite", "containers": cpu("6")}),
        )
        .await;
    // The API server resolved the class.
    let spec = polite.spec.unwrap();
    assert_eq!(spec.priority, Some(2000));
    assert_eq!(spec.preemption_policy.as_deref(), Some("Never"));
    assert_eq!(
        c.unschedulable_message("polite").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    c.pods()
        .delete(
            "polite",
            &kube::api::DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    c.create_pod(
        "high",
        json!({}),
        json!({"priorityClassName": "high", "containers": cpu("6")}),
    )
    .await;
    let ev = c.event("low", "Preempted").await;
    let high = c.pods().get("high").await.unwrap();
    assert_eq!(
        ev.message.as_deref(),
        Some(
            format!(
                "Preempted by pod {} on node hollow-0",
                high.metadata.uid.unwrap()
            )
            .as_str()
        )
    );
    let pods = c.pods();
    eventually("nominatedNodeName", 30, async || {
        let p: Pod = pods.get("high").await.ok()?;
        let s = p.status?;
        (s.nominated_node_name.as_deref() == Some("hollow-0") || p.spec?.node_name.is_some())
            .then_some(())
    })
    .await;
    assert_eq!(c.bound_node("high").await, "hollow-0");
    eventually("low deleted", 30, async || {
        pods.get_opt("low").await.ok()?.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_admission_rejects_unknown_classes() {
    let c = Cluster::without_scheduler(0).await;
    let err = c
        .pods()
        .create(
            &PostParams::default(),
            &support::pod("x", json!({}), json!({"priorityClassName": "nope"})),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(s.code, 403);
    assert_eq!(
        s.message,
        "pods \"x\" is forbidden: no PriorityClass with name nope was found"
    );
    let p = c
        .create_pod(
            "crit",
            json!({}),
            json!({"priorityClassName": "system-cluster-critical"}),
        )
        .await;
    assert_eq!(p.spec.unwrap().priority, Some(2_000_000_000));
    let plain = c.create_pod("plain", json!({}), json!({})).await;
    assert_eq!(plain.spec.unwrap().priority, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_scheduler_names_are_left_alone() {
    let c = Cluster::start(2).await;
    c.create_pod(
        "theirs",
        json!({}),
        json!({"schedulerName": "my-scheduler"}),
    )
    .await;
    c.create_pod("ours", json!({}), json!({})).await;
    c.bound_node("ours").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = c.pods().get("theirs").await.unwrap();
    assert_eq!(p.spec.unwrap().node_name, None);
    assert!(
        p.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .all(|c| c.type_ != "PodScheduled")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_when_a_node_is_added() {
    let mut c = Cluster::start(1).await;
    c.create_pod("needs-16", json!({}), json!({"containers": cpu("16")}))
        .await;
    c.unschedulable_message("needs-16").await;
    let client = c.client.clone();
    let kubelet = start_kubelet(&client, "big", 1, 1, "32");
    c.spawn(async move {
        let _ = kubelet.await;
    });
    assert_eq!(c.bound_node("needs-16").await, "big-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_immediate_claims_make_pods_unschedulable() {
    let c = Cluster::start(2).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    claims
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let vol = json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]});
    c.create_pod("claims", json!({}), vol).await;
    assert_eq!(
        c.unschedulable_message("claims").await,
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let missing =
        json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "gone"}}]});
    c.create_pod("missing", json!({}), missing).await;
    assert_eq!(
        c.unschedulable_message("missing").await,
        "0/2 nodes are available: persistentvolumeclaim \"gone\" not found. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_schedules() {
    let mut c = Cluster::without_scheduler(2).await;
    let timing = LeaderTiming {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    for id in ["sched-a", "sched-b"] {
        let config = SchedulerConfig {
            identity: id.into(),
            ..Default::default()
        };
        let client = c.client.clone();
        let timing = timing.clone();
        c.spawn(async move {
            rkube_scheduler::run_leader_elected(client, config, timing)
                .await
                .expect("leader election config");
        });
    }
    for i in 0..4 {
        c.create_pod(&format!("p{i}"), json!({}), json!({})).await;
    }
    for i in 0..4 {
        c.bound_node(&format!("p{i}")).await;
    }
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-system");
    let holder = leases
        .get("kube-scheduler")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap();
    assert!(holder == "sched-a" || holder == "sched-b", "{holder}");
    for i in 0..4 {
        let ev = c.event(&format!("p{i}"), "Scheduled").await;
        assert_eq!(ev.reporting_instance.as_deref(), Some(holder.as_str()));
    }
}
