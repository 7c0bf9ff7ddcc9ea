//! The cluster controllers end to end against the in-process API server with hollow
//! nodes, through the `kube` crate and kubectl.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::{cluster, eventually, kubectl, kubectl_stdin};

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

async fn create_ns(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name}})),
    )
    .await
    .expect("namespace");
}

fn pod(name: &str, labels: serde_json::Value) -> Pod {
    obj(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_namespace_gets_default_service_account_and_root_ca() {
    let c = cluster(1).await;
    create_ns(&c.client, "fresh").await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "fresh");
    eventually("default SA", 30, async || {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "fresh");
    let cm = eventually("kube-root-ca.crt", 30, async || {
        cms.get_opt("kube-root-ca.crt").await.ok().flatten()
    })
    .await;
    assert_eq!(cm.data.unwrap()["ca.crt"], c.server.ca_pem);
    // Deleted ones come back; edited ones are put right.
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("default SA again", 30, async || {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    let mut cm = cms.get("kube-root-ca.crt").await.unwrap();
    cm.data = Some(BTreeMap::from([("ca.crt".to_string(), "junk".to_string())]));
    cms.replace("kube-root-ca.crt", &PostParams::default(), &cm)
        .await
        .unwrap();
    eventually("CA restored", 30, async || {
        let cm = cms.get("kube-root-ca.crt").await.ok()?;
        (cm.data?["ca.crt"] == c.server.ca_pem).then_some(())
    })
    .await;
    // Every namespace has them, the system ones included.
    let (ok, out, _) = kubectl(&c, &["get", "serviceaccounts", "-A", "-o", "name"]);
    assert!(ok);
    assert!(out.matches("serviceaccount/default").count() >= 5, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_removes_everything_in_it() {
    let c = cluster(2).await;
    create_ns(&c.client, "doomed").await;
    let doc = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: doomed}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: doomed}
data: {p: eA==}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: doomed}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: doomed}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: doomed, labels: {app: web}}
spec: {containers: [{name: c, image: busybox}]}
"#;
    let (ok, _, err) = kubectl_stdin(&c, &["apply", "-f", "-"], doc);
    assert!(ok, "{err}");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "doomed");
    eventually("pod running", 30, async || {
        pods.get("web-0").await.ok().filter(ready)
    })
    .await;
    let (ok, _, err) = kubectl(&c, &["delete", "namespace", "doomed", "--wait=false"]);
    assert!(ok, "{err}");
    let nss: Api<Namespace> = Api::all(c.client.clone());
    let ns = nss.get("doomed").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    // New content is refused while it terminates.
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "doomed");
    let err = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "late"}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("because it is being terminated"),
        "{err}"
    );
    eventually("namespace gone", 60, async || {
        nss.get_opt("doomed")
            .await
            .ok()
            .filter(|n| n.is_none())
            .map(|_| ())
    })
    .await;
    for kind in [
        "configmaps",
        "secrets",
        "services",
        "deployments",
        "pods",
        "endpoints",
        "serviceaccounts",
    ] {
        let (ok, out, _) = kubectl(&c, &["get", kind, "-n", "doomed", "-o", "name"]);
        assert!(ok && out.trim().is_empty(), "{kind} left: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_conditions_name_what_remains() {
    let c = cluster(1).await;
    create_ns(&c.client, "held").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "held");
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "pinned", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.delete("held", &DeleteParams::default()).await.unwrap();
    let conds = eventually("conditions", 30, async || {
        let ns = nss.get("held").await.ok()?;
        let cs = ns.status?.conditions?;
        cs.iter()
            .any(|c| c.type_ == "NamespaceFinalizersRemaining" && c.status == "True")
            .then_some(cs)
    })
    .await;
    let by = |t: &str| conds.iter().find(|c| c.type_ == t).unwrap().clone();
    assert_eq!(
        by("NamespaceDeletionDiscoveryFailure").reason.as_deref(),
        Some("ResourcesDiscovered")
    );
    assert_eq!(
        by("NamespaceContentRemaining").message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    assert_eq!(
        by("NamespaceFinalizersRemaining").message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    // Releasing the finalizer lets the namespace go.
    let mut cm = cms.get("pinned").await.unwrap();
    cm.metadata.finalizers = None;
    cms.replace("pinned", &PostParams::default(), &cm)
        .await
        .unwrap();
    eventually("namespace gone", 60, async || {
        nss.get_opt("held")
            .await
            .ok()
            .filter(|n| n.is_none())
            .map(|_| ())
    })
    .await;
}

/// An owner ConfigMap with two dependents (one blocking its owner's deletion).
async fn family(c: &support::Cluster, ns: &str, owner: &str) -> String {
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), ns);
    let o = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": owner}})),
        )
        .await
        .unwrap();
    let uid = o.metadata.uid.unwrap();
    for (name, block) in [(format!("{owner}-a"), true), (format!("{owner}-b"), false)] {
        let secrets: Api<Secret> = Api::namespaced(c.client.clone(), ns);
        secrets
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name, "finalizers": if block {json!(["example.com/hold"])} else {json!([])},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner,
                        "uid": uid, "blockOwnerDeletion": block}]}})),
            )
            .await
            .unwrap();
    }
    uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_deletion_background_foreground_and_orphan() {
    let c = cluster(1).await;
    create_ns(&c.client, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "gc");
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "gc");
    // Removes the test's finalizer; read-modify-write again when the garbage collector
    // changed the object in between (as any client must).
    let release = async |name: &str| {
        for _ in 0..10 {
            let mut s = secrets.get(name).await.unwrap();
            s.metadata.finalizers = None;
            match secrets.replace(name, &PostParams::default(), &s).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("releasing {name}: {e}"),
            }
        }
        panic!("releasing {name}: conflicts on every attempt");
    };
    let gone = async |api: &Api<Secret>, name: &str| {
        api.get_opt(name)
            .await
            .ok()
            .filter(|o| o.is_none())
            .map(|_| ())
    };

    // Background: the owner goes at once, its dependents after.
    family(&c, "gc", "bg").await;
    let (ok, _, err) = kubectl(
        &c,
        &[
            "delete",
            "configmap",
            "bg",
            "-n",
            "gc",
            "--cascade=background",
        ],
    );
    assert!(ok, "{err}");
    assert!(cms.get_opt("bg").await.unwrap().is_none());
    eventually("bg-b collected", 30, async || gone(&secrets, "bg-b").await).await;
    // bg-a is being deleted, held by its own finalizer.
    eventually("bg-a deleting", 30, async || {
        secrets
            .get("bg-a")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    release("bg-a").await;
    eventually("bg-a collected", 30, async || gone(&secrets, "bg-a").await).await;

    // Foreground: the owner stays (foregroundDeletion) until its blocking dependent is gone.
    family(&c, "gc", "fg").await;
    let (ok, _, err) = kubectl(
        &c,
        &[
            "delete",
            "configmap",
            "fg",
            "-n",
            "gc",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    assert!(ok, "{err}");
    eventually("fg-a deleting", 30, async || {
        secrets
            .get("fg-a")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    eventually("fg-b collected", 30, async || gone(&secrets, "fg-b").await).await;
    let owner = cms.get("fg").await.expect("owner waits for its dependents");
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    release("fg-a").await;
    eventually("fg collected", 30, async || {
        cms.get_opt("fg")
            .await
            .ok()
            .filter(|o| o.is_none())
            .map(|_| ())
    })
    .await;

    // Orphan: the dependents stay, without the ownerReference.
    family(&c, "gc", "or").await;
    let (ok, _, err) = kubectl(
        &c,
        &["delete", "configmap", "or", "-n", "gc", "--cascade=orphan"],
    );
    assert!(ok, "{err}");
    eventually("or gone", 30, async || {
        cms.get_opt("or")
            .await
            .ok()
            .filter(|o| o.is_none())
            .map(|_| ())
    })
    .await;
    for name in ["or-a", "or-b"] {
        let s = secrets.get(name).await.expect("orphan kept");
        assert!(
            s.metadata.owner_references.unwrap_or_default().is_empty(),
            "{name} still owned"
        );
        assert!(s.metadata.deletion_timestamp.is_none());
    }
    release("or-a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pod_readiness() {
    let c = cluster(2).await;
    create_ns(&c.client, "web").await;
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "web");
    svcs.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        ),
    )
    .await
    .unwrap();
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "web");
    for i in 0..3 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("web-{i}"), json!({"app": "web"})),
        )
        .await
        .unwrap();
    }
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), "web");
    let ep = eventually("3 ready addresses", 60, async || {
        let ep = eps.get("web").await.ok()?;
        let n = ep
            .subsets
            .as_ref()?
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, |a| a.len()))
            .sum::<usize>();
        (n == 3).then_some(ep)
    })
    .await;
    let subset = &ep.subsets.as_ref().unwrap()[0];
    assert_eq!(
        subset.ports.as_ref().unwrap()[0].port,
        8080,
        "named target port resolved"
    );
    assert!(
        ep.metadata
            .annotations
            .unwrap()
            .contains_key("endpoints.kubernetes.io/last-change-trigger-time")
    );
    assert_eq!(ep.metadata.labels.unwrap()["tier"], "front");
    assert!(
        eps.get_opt("manual").await.unwrap().is_none(),
        "selector-less Services are left alone"
    );

    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "web");
    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let slice = eventually("slice with 3 endpoints", 30, async || {
        let l = slices.list(&lp).await.ok()?;
        l.items.into_iter().find(|s| s.endpoints.len() == 3)
    })
    .await;
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
    assert!(
        slice
            .endpoints
            .iter()
            .all(|e| e.node_name.is_some() && e.conditions.as_ref().unwrap().ready == Some(true))
    );
    assert_eq!(slice.metadata.owner_references.unwrap()[0].kind, "Service");

    // The node of one pod dies: the node controller marks its pods not ready, and they
    // move to notReadyAddresses.
    let victim = pods.get("web-0").await.unwrap();
    let node = victim.spec.unwrap().node_name.unwrap();
    let on_node = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(node.as_str()))
        .count();
    assert!(c.kubelet.stop_node(&node));
    eventually("not ready addresses", 60, async || {
        let ep = eps.get("web").await.ok()?;
        let n = ep
            .subsets
            .as_ref()?
            .iter()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, |a| a.len()))
            .sum::<usize>();
        (n == on_node).then_some(())
    })
    .await;
    eventually("slice conditions", 30, async || {
        let l = slices.list(&lp).await.ok()?;
        let not_ready = l
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(false))
            .count();
        (not_ready == on_node).then_some(())
    })
    .await;

    // publishNotReadyAddresses puts them all under addresses.
    let mut svc = svcs.get("web").await.unwrap();
    svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    svcs.replace("web", &PostParams::default(), &svc)
        .await
        .unwrap();
    eventually("all published", 30, async || {
        let ep = eps.get("web").await.ok()?;
        let s = ep.subsets.as_ref()?;
        let n = s
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, |a| a.len()))
            .sum::<usize>();
        (n == 3 && s.iter().all(|s| s.not_ready_addresses.is_none())).then_some(())
    })
    .await;
    // Deleting the Service deletes its Endpoints and slices.
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("endpoints gone", 30, async || {
        eps.get_opt("web")
            .await
            .ok()
            .filter(|e| e.is_none())
            .map(|_| ())
    })
    .await;
    eventually("slices gone", 30, async || {
        slices
            .list(&lp)
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await;
}

fn has_taint(n: &Node, key: &str, effect: &str) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key && t.effect == effect))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_tainted_and_its_pods_evicted() {
    let c = cluster(2).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    // Node IPAM gives each node a /24 of 10.42.0.0/16.
    let cidrs = eventually("pod ranges", 30, async || {
        let l = nodes.list(&ListParams::default()).await.ok()?;
        let mut c: Vec<String> = l
            .items
            .iter()
            .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
            .collect();
        c.sort();
        (c.len() == 2).then_some(c)
    })
    .await;
    assert!(
        cidrs
            .iter()
            .all(|c| c.starts_with("10.42.") && c.ends_with(".0/24")),
        "{cidrs:?}"
    );
    assert_ne!(cidrs[0], cidrs[1]);

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let mut quick = pod("quick", json!({}));
    quick.spec.as_mut().unwrap().node_name = Some("hollow-1".into());
    quick.spec.as_mut().unwrap().tolerations = Some(vec![obj(json!({
        "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}))]);
    pods.create(&PostParams::default(), &quick).await.unwrap();
    let mut patient = pod("patient", json!({}));
    patient.spec.as_mut().unwrap().node_name = Some("hollow-1".into());
    let created = pods.create(&PostParams::default(), &patient).await.unwrap();
    // DefaultTolerationSeconds admission.
    let tols = created.spec.unwrap().tolerations.unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let t = tols
            .iter()
            .find(|t| t.key.as_deref() == Some(key))
            .expect("default toleration");
        assert_eq!(
            (t.effect.as_deref(), t.toleration_seconds),
            (Some("NoExecute"), Some(300))
        );
    }
    let q = pods.get("quick").await.unwrap();
    assert_eq!(
        q.spec.unwrap().tolerations.unwrap().len(),
        2,
        "only not-ready is added"
    );
    eventually("pods ready", 30, async || {
        (ready(&pods.get("quick").await.ok()?) && ready(&pods.get("patient").await.ok()?))
            .then_some(())
    })
    .await;

    assert!(c.kubelet.stop_node("hollow-1"));
    let node = eventually("node unknown", 60, async || {
        let n = nodes.get("hollow-1").await.ok()?;
        let cond = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (cond.status == "Unknown").then_some((n, cond))
    })
    .await;
    assert_eq!(node.1.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        node.1.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let all_unknown = node
        .0
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .all(|c| c.status == "Unknown");
    assert!(all_unknown);
    let n = eventually("taints", 30, async || {
        let n = nodes.get("hollow-1").await.ok()?;
        (has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute")
            && has_taint(&n, "node.kubernetes.io/unreachable", "NoSchedule"))
        .then_some(n)
    })
    .await;
    assert!(!has_taint(&n, "node.kubernetes.io/not-ready", "NoExecute"));
    let evicted = eventually("quick evicted", 60, async || {
        pods.get("quick")
            .await
            .ok()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    let cond = evicted
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("DeletionByTaintManager"));
    let p = pods.get("patient").await.unwrap();
    assert!(
        p.metadata.deletion_timestamp.is_none(),
        "300 s not over yet"
    );
    assert!(!ready(&p), "pods on an unknown node are not ready");
    let (ok, out, _) = kubectl(&c, &["get", "events", "-A"]);
    assert!(
        ok && out.contains("TaintManagerEviction") && out.contains("NodeNotReady"),
        "{out}"
    );

    // The node comes back: taints go.
    c.kubelet.resume_node("hollow-1");
    eventually("taints removed", 60, async || {
        let n = nodes.get("hollow-1").await.ok()?;
        (!has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_respects_a_disruption_budget() {
    let c = cluster(2).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    for i in 0..3 {
        let mut p = pod(&format!("db-{i}"), json!({"app": "db"}));
        p.spec.as_mut().unwrap().node_name = Some("hollow-0".into());
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), "default");
    pdbs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})),
    )
    .await
    .unwrap();
    let status = eventually("budget status", 60, async || {
        let s = pdbs.get("db").await.ok()?.status?;
        (s.current_healthy == 3).then_some(s)
    })
    .await;
    assert_eq!(
        (
            status.desired_healthy,
            status.disruptions_allowed,
            status.expected_pods
        ),
        (2, 1, 3)
    );
    let cond = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "SufficientPods")
    );

    let (ok, out, err) = kubectl(
        &c,
        &[
            "drain",
            "hollow-0",
            "--force",
            "--ignore-daemonsets",
            "--timeout=8s",
            "--grace-period=1",
        ],
    );
    assert!(!ok, "drain must not get past the budget: {out}");
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    let left = pods
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items;
    let alive = left
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    assert_eq!(alive, 2, "exactly one pod was evicted");
    let s = eventually("budget spent", 30, async || {
        let s = pdbs.get("db").await.ok()?.status?;
        (s.current_healthy == 2 && s.disruptions_allowed == 0).then_some(s)
    })
    .await;
    let cond = s
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .unwrap();
    assert_eq!(cond.reason, "InsufficientPods");
    let (ok, out, _) = kubectl(
        &c,
        &[
            "get",
            "node",
            "hollow-0",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ],
    );
    assert!(ok && out == "true", "drain cordons: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_rejects_and_limit_range_defaults() {
    let c = cluster(1).await;
    create_ns(&c.client, "q").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), "q");
    quotas
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2", "configmaps": "3"}}})))
        .await
        .unwrap();
    eventually("quota usage", 30, async || {
        let used = quotas.get("q").await.ok()?.status?.used?;
        // kube-root-ca.crt counts.
        (used.get("pods")?.0 == "0" && used.contains_key("configmaps")).then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "q");
    for i in 0..2 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), json!({})))
            .await
            .unwrap();
    }
    let err = pods
        .create(&PostParams::default(), &pod("p2", json!({})))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert_eq!(
                s.message,
                "pods \"p2\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let (ok, out, _) = kubectl(&c, &["describe", "quota", "q", "-n", "q"]);
    assert!(
        ok && out.contains("pods") && out.contains("2     2"),
        "{out}"
    );
    // Deleting a pod frees its unit.
    pods.delete("p0", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("usage drops", 30, async || {
        (quotas.get("q").await.ok()?.status?.used?.get("pods")?.0 == "1").then_some(())
    })
    .await;
    pods.create(&PostParams::default(), &pod("p3", json!({})))
        .await
        .unwrap();

    // A quota on compute resources requires them; a LimitRange supplies defaults.
    create_ns(&c.client, "compute").await;
    let doc = r#"
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: compute}
spec: {hard: {requests.cpu: "1", limits.memory: 1Gi}}
"#;
    let (ok, _, err) = kubectl_stdin(&c, &["apply", "-f", "-"], doc);
    assert!(ok, "{err}");
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), "compute");
    eventually("compute usage", 30, async || {
        quotas.get("compute").await.ok()?.status?.used.map(|_| ())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "compute");
    let err = pods
        .create(&PostParams::default(), &pod("bare", json!({})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "failed quota: compute: must specify limits.memory for: main; requests.cpu for: main"
        ),
        "{err}"
    );
    let doc = r#"
apiVersion: v1
kind: LimitRange
metadata: {name: defaults, namespace: compute}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 200m, memory: 128Mi}
    max: {cpu: "1"}
"#;
    let (ok, _, err) = kubectl_stdin(&c, &["apply", "-f", "-"], doc);
    assert!(ok, "{err}");
    // The admission reads LimitRanges from the watch cache: allow it a moment.
    let p = eventually("defaults applied", 30, async || {
        pods.create(&PostParams::default(), &pod("defaulted", json!({})))
            .await
            .ok()
    })
    .await;
    let res = p.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(res.requests.unwrap()["cpu"].0, "200m");
    assert_eq!(res.limits.unwrap()["memory"].0, "256Mi");
    assert_eq!(
        p.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main"
    );
    let mut big = pod("big", json!({}));
    big.spec.as_mut().unwrap().containers[0].resources =
        Some(obj(json!({"limits": {"cpu": "2", "memory": "128Mi"}})));
    let err = pods.create(&PostParams::default(), &big).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{err}"
    );
    eventually("compute usage counted", 30, async || {
        let used = quotas.get("compute").await.ok()?.status?.used?;
        (used.get("requests.cpu")?.0 == "200m" && used.get("limits.memory")?.0 == "256Mi")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_and_ttl_after_finished() {
    let c = support::cluster_with(1, |cfg| cfg.terminated_pod_gc_threshold = 1).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    // A pod bound to a node that does not exist is collected.
    let mut ghost = pod("ghost", json!({}));
    ghost.spec.as_mut().unwrap().node_name = Some("no-such-node".into());
    pods.create(&PostParams::default(), &ghost).await.unwrap();
    eventually("orphan collected", 30, async || {
        pods.get_opt("ghost")
            .await
            .ok()
            .filter(|p| p.is_none())
            .map(|_| ())
    })
    .await;
    // Terminated pods beyond the threshold (1) go, oldest first.
    for name in ["done-0", "done-1"] {
        let mut p = pod(name, json!({}));
        p.metadata.annotations = Some(BTreeMap::from([(
            "fake.rkube.io/run-seconds".to_string(),
            "0".to_string(),
        )]));
        p.spec.as_mut().unwrap().restart_policy = Some("Never".into());
        pods.create(&PostParams::default(), &p).await.unwrap();
        eventually("succeeded", 30, async || {
            let p = pods.get(name).await.ok()?;
            (p.status?.phase.as_deref() == Some("Succeeded")).then_some(())
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    eventually("oldest terminated pod collected", 30, async || {
        pods.get_opt("done-0")
            .await
            .ok()
            .filter(|p| p.is_none())
            .map(|_| ())
    })
    .await;
    assert!(pods.get_opt("done-1").await.unwrap().is_some());

    // TTL after finished: a finished Job goes after its TTL.
    let doc = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: default}
spec:
  ttlSecondsAfterFinished: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;
    let (ok, _, err) = kubectl_stdin(&c, &["apply", "-f", "-"], doc);
    assert!(ok, "{err}");
    // No Job controller in this slice: mark it finished by hand.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now}]}});
    let (ok, _, err) = kubectl(
        &c,
        &[
            "patch",
            "job",
            "once",
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ],
    );
    assert!(ok, "{err}");
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(c.client.clone(), "default");
    eventually("job deleted after its TTL", 30, async || {
        jobs.get_opt("once")
            .await
            .ok()
            .filter(|j| j.is_none())
            .map(|_| ())
    })
    .await;
}
