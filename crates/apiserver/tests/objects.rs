//! Object semantics through a real client library (kube-rs): create/read/update/delete,
//! optimistic concurrency, generation and status isolation, finalizers and graceful
//! deletion, every patch type including server-side apply, field validation, dry runs and
//! namespace lifecycle — each checked against what upstream answers.

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use serde_json::json;

fn api_error(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name}, "data": data}))
    .unwrap()
}

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": image}]}},
        },
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_optimistic_concurrency() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &cm("a", json!({"k": "v"})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some());
    assert!(meta.creation_timestamp.is_some());
    let rv1: i64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(
        meta.generation.is_none(),
        "configmaps do not track generation"
    );
    let mf = meta
        .managed_fields
        .as_ref()
        .expect("managedFields recorded");
    assert_eq!(mf[0].operation.as_deref(), Some("Update"));

    let e = api_error(
        cms.create(&PostParams::default(), &cm("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"a\" already exists");

    let mut got = cms.get("a").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "v");
    got.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &got)
        .await
        .unwrap();
    let rv2: i64 = updated
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    assert_eq!(
        updated.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );

    // The stale copy now conflicts, with upstream's message.
    let e = api_error(
        cms.replace("a", &PostParams::default(), &got)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // An update that changes nothing writes nothing.
    let same = cms
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    let e = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "configmaps \"missing\" not found");

    // generateName.
    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = g.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(cms.get("a").await.unwrap_err()).code, 404);
    assert_eq!(
        api_error(cms.delete("a", &DeleteParams::default()).await.unwrap_err()).code,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_are_reapplied_unless_they_name_a_version() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = cms
        .create(&PostParams::default(), &cm("race", json!({})))
        .await
        .unwrap();
    // Concurrent patches without a version all land: each one that loses the race to
    // the store is applied again to the newer object, as upstream does.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            cms.patch(
                "race",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {format!("k{i}"): "v"}})),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every patch applies");
    }
    let data = cms.get("race").await.unwrap().data.unwrap();
    assert_eq!(data.len(), 16, "{data:?}");
    // A patch that names the version it was made against is conditional on it.
    let stale = created.metadata.resource_version.clone().unwrap();
    let e = api_error(
        cms.patch(
            "race",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale}, "data": {"x": "y"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let current = cms.get("race").await.unwrap();
    let rv = current.metadata.resource_version.clone().unwrap();
    cms.patch(
        "race",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"x": "y"}})),
    )
    .await
    .expect("a patch naming the current version applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_and_status_isolation() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deps
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));

    // A status write changes only status and not the generation.
    let mut with_status = d.clone();
    with_status.status =
        Some(serde_json::from_value(json!({"replicas": 3, "observedGeneration": 1})).unwrap());
    with_status.spec.as_mut().unwrap().replicas = Some(7);
    let st = deps
        .replace_status("web", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(st.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        st.spec.as_ref().unwrap().replicas,
        Some(1),
        "spec ignored on status writes"
    );
    assert_eq!(st.metadata.generation, Some(1));

    // A spec write keeps status and bumps the generation.
    let mut spec = st.clone();
    spec.spec.as_mut().unwrap().replicas = Some(5);
    spec.status = Some(serde_json::from_value(json!({"replicas": 99})).unwrap());
    let up = deps
        .replace("web", &PostParams::default(), &spec)
        .await
        .unwrap();
    assert_eq!(up.metadata.generation, Some(2));
    assert_eq!(
        up.status.as_ref().unwrap().replicas,
        Some(3),
        "status ignored on spec writes"
    );

    // A label change alone does not bump the generation.
    let mut labels = up.clone();
    labels
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    let up2 = deps
        .replace("web", &PostParams::default(), &labels)
        .await
        .unwrap();
    assert_eq!(up2.metadata.generation, Some(2));

    // Scale subresource.
    let scale = deps.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(5));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    deps.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_and_graceful_pod_deletion() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = cms.get("held").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some(), "only marked");
    // No new finalizers once deleting.
    let mut more = pending.clone();
    more.metadata
        .finalizers
        .as_mut()
        .unwrap()
        .push("example.com/another".into());
    let e = api_error(
        cms.replace("held", &PostParams::default(), &more)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    // Removing the last finalizer deletes it.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("held").await.unwrap_err()).code, 404);

    // A pod on a node gets its grace period; unscheduled pods go at once.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |name: &str, node: Option<&str>| -> Pod {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        if let Some(n) = node {
            p["spec"]["nodeName"] = n.into();
        }
        serde_json::from_value(p).unwrap()
    };
    let created = pods
        .create(&PostParams::default(), &pod("bound", Some("node-1")))
        .await
        .unwrap();
    assert_eq!(
        created.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(
        created.status.as_ref().unwrap().qos_class.as_deref(),
        Some("BestEffort")
    );
    let deleted = pods
        .delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let obj = deleted.left().expect("a graceful delete returns the pod");
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert!(
        pods.get("bound").await.is_ok(),
        "still there during its grace period"
    );
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(api_error(pods.get("bound").await.unwrap_err()).code, 404);
    pods.create(&PostParams::default(), &pod("free", None))
        .await
        .unwrap();
    pods.delete("free", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(pods.get("free").await.unwrap_err()).code, 404);

    // Preconditions.
    cms.create(&PostParams::default(), &cm("pre", json!({})))
        .await
        .unwrap();
    let e = api_error(
        cms.delete(
            "pre",
            &DeleteParams::default().preconditions(kube::api::Preconditions {
                uid: Some("not-the-uid".into()),
                resource_version: None,
            }),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert!(
        e.message
            .contains("Precondition failed: UID in precondition: not-the-uid"),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_type() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("p", 1, "nginx:1"))
        .await
        .unwrap();

    // Strategic merge: containers merge by name.
    let smp = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox"}]}}}});
    let d = deps
        .patch("p", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let names: Vec<String> = d
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["side", "main"]);

    // Merge patch replaces lists.
    let mp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}});
    let d = deps
        .patch("p", &PatchParams::default(), &Patch::Merge(mp))
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().template.spec.unwrap().containers.len(), 1);

    // JSON patch, including a failing test operation.
    let jp: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 4}]))
    .unwrap();
    let d = deps
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(4));
    let bad: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 99}]))
    .unwrap();
    let e = api_error(
        deps.patch("p", &PatchParams::default(), &Patch::<()>::Json(bad))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422, "{}", e.message);

    // Server-side apply: create, conflict with another manager, force.
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ssa"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ssa"}},
                 "template": {"metadata": {"labels": {"app": "ssa"}},
                              "spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}});
    let d = deps
        .patch(
            "ssa",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied.clone()),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["alice"]);
    let mut other = applied.clone();
    other["spec"]["replicas"] = 5.into();
    let e = api_error(
        deps.patch(
            "ssa",
            &PatchParams::apply("bob"),
            &Patch::Apply(other.clone()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message
            .starts_with("Apply failed with 1 conflict: conflict with \"alice\""),
        "{}",
        e.message
    );
    assert!(e.message.ends_with(".spec.replicas"), "{}", e.message);
    let d = deps
        .patch(
            "ssa",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(other),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5));

    // Apply without a field manager is invalid.
    let e = api_error(
        deps.patch("ssa", &PatchParams::default(), &Patch::Apply(applied))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422, "{}", e.message);
    // Patching a missing object (not apply) is 404.
    let e = api_error(
        deps.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_and_dry_run() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv"},
                      "data": {"a": "b"}, "bogus": 1});
    let raw = |q: &str| {
        http::Request::post(format!("/api/v1/namespaces/default/configmaps{q}"))
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap()
    };
    let e = api_error(
        client
            .request::<ConfigMap>(raw("?fieldValidation=Strict"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    assert_eq!(e.message, "strict decoding error: unknown field \"bogus\"");
    let created: ConfigMap = client
        .request(raw("?fieldValidation=Ignore"))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["a"], "b");

    // Duplicate fields: Strict lists them with unknown ones; Warn keeps the last value and
    // warns; Ignore keeps the last value.
    let dup = |q: &str, name: &str| {
        http::Request::post(format!("/api/v1/namespaces/default/configmaps{q}"))
            .header("Content-Type", "application/json")
            .body(
                format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","name":"{name}"}},"data":{{"k":"1","k":"2"}},"bogus":1}}"#
                )
                .into_bytes(),
            )
            .unwrap()
    };
    let e = api_error(
        client
            .request::<ConfigMap>(dup("?fieldValidation=Strict", "dup0"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            400,
            "strict decoding error: unknown field \"bogus\", duplicate field \"metadata.name\", duplicate field \"data.k\""
        )
    );
    let resp = client
        .send(dup("?fieldValidation=Warn", "dup1").map(kube::client::Body::from))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"bogus\\\"\"",
            "299 - \"duplicate field \\\"metadata.name\\\"\"",
            "299 - \"duplicate field \\\"data.k\\\"\""
        ]
    );
    assert_eq!(cms.get("dup1").await.unwrap().data.unwrap()["k"], "2");
    let ignored: ConfigMap = client
        .request(dup("?fieldValidation=Ignore", "dup2"))
        .await
        .unwrap();
    assert_eq!(ignored.data.unwrap()["k"], "2");

    // Dry run changes nothing.
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &cm("dry", json!({})),
        )
        .await
        .unwrap();
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert_eq!(api_error(cms.get("dry").await.unwrap_err()).code, 404);
    cms.delete(
        "fv",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(cms.get("fv").await.is_ok());

    // Invalid names are 422 with the field path.
    let e = api_error(
        cms.create(&PostParams::default(), &cm("Bad_Name", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_lifecycle() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = nss.get(n).await.unwrap();
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
        assert_eq!(
            ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
            n
        );
    }
    let e = api_error(
        nss.delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );

    // Creating in a namespace that does not exist.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let e = api_error(
        cms.create(&PostParams::default(), &cm("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    assert_eq!(e.message, "namespaces \"nowhere\" not found");

    // A terminating namespace takes no new content.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let doomed = nss.get("doomed").await.unwrap();
    assert_eq!(doomed.status.unwrap().phase.as_deref(), Some("Terminating"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let e = api_error(
        cms.create(&PostParams::default(), &cm("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert!(
        e.message.contains("because it is being terminated"),
        "{}",
        e.message
    );
    // Finalizing removes it.
    let mut fin = nss.get("doomed").await.unwrap();
    fin.spec.as_mut().unwrap().finalizers = Some(vec![]);
    nss.replace_with_finalize_subresource(&fin).await;
    assert_eq!(api_error(nss.get("doomed").await.unwrap_err()).code, 404);
}

trait Finalize {
    async fn replace_with_finalize_subresource(&self, ns: &Namespace);
}

impl Finalize for Api<Namespace> {
    async fn replace_with_finalize_subresource(&self, ns: &Namespace) {
        let name = ns.metadata.name.clone().unwrap();
        self.replace_subresource::<Namespace>("finalize", &name, &PostParams::default(), ns)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_addresses_are_allocated_once() {
    let s = TestServer::start().await;
    let client = client(&s).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let kubernetes = svcs.get("kubernetes").await.unwrap();
    assert_eq!(
        kubernetes.spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("10.43.0.1")
    );
    let svc = |name: &str, ty: &str, ip: Option<&str>| -> Service {
        let mut v = json!({"metadata": {"name": name},
                           "spec": {"type": ty, "ports": [{"port": 80}], "selector": {"app": name}}});
        if let Some(ip) = ip {
            v["spec"]["clusterIP"] = ip.into();
        }
        serde_json::from_value(v).unwrap()
    };
    let mut seen = std::collections::HashSet::new();
    for i in 0..20 {
        let created = svcs
            .create(
                &PostParams::default(),
                &svc(&format!("s{i}"), "NodePort", None),
            )
            .await
            .unwrap();
        let spec = created.spec.unwrap();
        let ip = spec.cluster_ip.unwrap();
        assert!(ip.starts_with("10.43."), "{ip}");
        assert!(seen.insert(ip));
        let np = spec.ports.unwrap()[0].node_port.unwrap();
        assert!((30000..=32767).contains(&np));
        assert!(seen.insert(np.to_string()));
    }
    let e = api_error(
        svcs.create(
            &PostParams::default(),
            &svc("dup", "ClusterIP", Some("10.43.0.1")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("provided IP is already allocated"),
        "{}",
        e.message
    );
    // A deleted service's address can be asked for again.
    let ip = svcs
        .get("s0")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    svcs.delete("s0", &DeleteParams::default()).await.unwrap();
    let again = svcs
        .create(
            &PostParams::default(),
            &svc("again", "ClusterIP", Some(&ip)),
        )
        .await
        .unwrap();
    assert_eq!(again.spec.unwrap().cluster_ip.unwrap(), ip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_shared_between_apis_and_expire() {
    let store: std::sync::Arc<dyn rkube_store::Store> =
        std::sync::Arc::new(rkube_store::memory::MemoryStore::new());
    let s =
        TestServer::start_configured(store, |c| c.event_ttl = std::time::Duration::from_secs(1))
            .await;
    let client = client(&s).await;
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let new: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let ev: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "started the container", "type": "Normal", "count": 2,
    }))
    .unwrap();
    core.create(&PostParams::default(), &ev).await.unwrap();
    // The same event through events.k8s.io/v1, in that API's field names.
    let seen = new.get("e1").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("started the container"));
    assert_eq!(seen.regarding.as_ref().unwrap().name.as_deref(), Some("p"));
    assert_eq!(seen.deprecated_count, Some(2));
    // Gone after the TTL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match core.get("e1").await {
            Err(kube::Error::Api(st)) if st.code == 404 => break,
            _ => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the event outlived its TTL"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
