//! Server-side apply and managedFields bookkeeping: two managers, conflicts, force, field
//! removal, list-map merges, creates, and the FieldsV1 form.

use rkube_patch::{
    ApplyOptions, ManagedFields, Operation, PatchError, UpdateOptions, apply, field_set, update,
};
use rkube_schema::{Gvk, Type, catalog, crd};
use serde_json::{Value, json};

fn deployment() -> Type {
    catalog()
        .type_for_gvk(&Gvk::new("apps", "v1", "Deployment"))
        .expect("Deployment")
}

fn configmap() -> Type {
    catalog()
        .type_for_gvk(&Gvk::new("", "v1", "ConfigMap"))
        .expect("ConfigMap")
}

fn upd<'a>(manager: &'a str, now: &'a str) -> UpdateOptions<'a> {
    UpdateOptions {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now,
        ignored: field_set(&[&["status"]]),
    }
}

fn app<'a>(manager: &'a str, force: bool, now: &'a str) -> ApplyOptions<'a> {
    ApplyOptions {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now,
        force,
        ignored: field_set(&[&["status"]]),
    }
}

fn deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}}
        }
    })
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == json!(manager))
}

#[test]
fn create_records_an_update_entry_in_fields_v1() {
    let created = update(
        None,
        &deploy(2, "nginx:1"),
        &deployment(),
        &upd("kubectl-client-side-apply", "2025-01-01T00:00:00Z"),
    )
    .expect("create");
    let e = entry(&created, "kubectl-client-side-apply").expect("entry");
    assert_eq!(e["operation"], json!("Update"));
    assert_eq!(e["apiVersion"], json!("apps/v1"));
    assert_eq!(e["time"], json!("2025-01-01T00:00:00Z"));
    assert_eq!(e["fieldsType"], json!("FieldsV1"));
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {},
                "f:template": {".": {}, "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {".": {}, "f:containers": {".": {}, "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}
            }
        })
    );
    // The object itself is unchanged apart from managedFields.
    let mut stripped = created.clone();
    stripped["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("managedFields");
    assert_eq!(stripped, deploy(2, "nginx:1"));
}

#[test]
fn apply_conflicts_with_client_side_apply_and_force_takes_over() {
    let t = deployment();
    let live = update(
        None,
        &deploy(2, "nginx:1"),
        &t,
        &upd("kubectl-client-side-apply", "2025-01-01T00:00:00Z"),
    )
    .expect("create");

    // Same values: no conflict, shared ownership.
    let same = apply(
        Some(&live),
        &deploy(2, "nginx:1"),
        &t,
        &app("kubectl", false, "2025-01-01T00:01:00Z"),
    )
    .expect("same values apply");
    assert!(entry(&same, "kubectl").is_some());
    assert_eq!(
        entry(&same, "kubectl-client-side-apply").expect("csa")["fieldsV1"]["f:spec"]["f:replicas"],
        json!({})
    );

    // Different replicas: conflict in upstream's words.
    let err = apply(
        Some(&same),
        &deploy(5, "nginx:1"),
        &t,
        &app("kubectl", false, "2025-01-01T00:02:00Z"),
    )
    .expect_err("conflict");
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        err.causes(),
        vec![(
            "FieldManagerConflict".to_string(),
            "conflict with \"kubectl-client-side-apply\" using apps/v1".to_string(),
            ".spec.replicas".to_string()
        )]
    );

    // Two conflicting fields.
    let err = apply(
        Some(&same),
        &deploy(5, "nginx:2"),
        &t,
        &app("kubectl", false, "2025-01-01T00:02:00Z"),
    )
    .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );

    // Force: the applier takes the field over.
    let forced = apply(
        Some(&same),
        &deploy(5, "nginx:1"),
        &t,
        &app("kubectl", true, "2025-01-01T00:03:00Z"),
    )
    .expect("force");
    assert_eq!(forced["spec"]["replicas"], json!(5));
    let csa = entry(&forced, "kubectl-client-side-apply").expect("csa keeps other fields");
    assert!(csa["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(
        entry(&forced, "kubectl").expect("applier")["fieldsV1"]["f:spec"]["f:replicas"],
        json!({})
    );
    assert_eq!(
        entry(&forced, "kubectl").expect("applier")["time"],
        json!("2025-01-01T00:03:00Z")
    );
}

#[test]
fn controller_updates_take_ownership_and_then_conflict_with_the_applier() {
    let t = deployment();
    let applied = apply(
        None,
        &deploy(2, "nginx:1"),
        &t,
        &app("kubectl", false, "2025-01-01T00:00:00Z"),
    )
    .expect("apply create");
    let e = entry(&applied, "kubectl").expect("apply entry");
    assert_eq!(e["operation"], json!("Apply"));
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}})
    );

    // An HPA-like controller scales it with an ordinary update.
    let mut scaled = applied.clone();
    scaled["spec"]["replicas"] = json!(7);
    let scaled = update(
        Some(&applied),
        &scaled,
        &t,
        &upd("kube-controller-manager", "2025-01-01T00:05:00Z"),
    )
    .expect("scale");
    assert_eq!(
        entry(&scaled, "kube-controller-manager").expect("kcm")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        entry(&scaled, "kubectl").expect("applier")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // Re-applying the old replicas conflicts with the controller.
    let err = apply(
        Some(&scaled),
        &deploy(2, "nginx:1"),
        &t,
        &app("kubectl", false, "2025-01-01T00:06:00Z"),
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kube-controller-manager\" using apps/v1: .spec.replicas"
    );

    // Leaving replicas out of the configuration keeps the controller's value and does not
    // remove the field (the controller owns it).
    let mut cfg = deploy(2, "nginx:1");
    cfg["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("replicas");
    let ok = apply(
        Some(&scaled),
        &cfg,
        &t,
        &app("kubectl", false, "2025-01-01T00:07:00Z"),
    )
    .expect("no conflict");
    assert_eq!(ok["spec"]["replicas"], json!(7));
}

#[test]
fn fields_an_applier_stops_applying_are_removed_unless_owned_elsewhere() {
    let t = configmap();
    let opts = |m: &'static str| ApplyOptions {
        manager: m,
        api_version: "v1",
        subresource: "",
        now: "2025-01-01T00:00:00Z",
        force: false,
        ignored: Default::default(),
    };
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let v1 = apply(
        None,
        &cm(json!({"a": "1", "b": "2", "shared": "s"})),
        &t,
        &opts("one"),
    )
    .expect("one");
    let v2 = apply(
        Some(&v1),
        &cm(json!({"shared": "s", "c": "3"})),
        &t,
        &opts("two"),
    )
    .expect("two");
    assert_eq!(
        v2["data"],
        json!({"a": "1", "b": "2", "c": "3", "shared": "s"})
    );
    // "one" drops b and shared: b goes, shared stays (owned by "two").
    let v3 = apply(Some(&v2), &cm(json!({"a": "1"})), &t, &opts("one")).expect("one again");
    assert_eq!(v3["data"], json!({"a": "1", "c": "3", "shared": "s"}));
    assert_eq!(
        entry(&v3, "one").expect("one")["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    // "one" drops data entirely: a goes, the map keeps what "two" owns.
    let mut no_data = cm(json!(null));
    no_data.as_object_mut().expect("cm").remove("data");
    let v4 = apply(Some(&v3), &no_data, &t, &opts("one")).expect("one drops data");
    assert!(
        entry(&v4, "one").is_none(),
        "an applier owning nothing has no entry"
    );
    assert_eq!(v4["data"], json!({"c": "3", "shared": "s"}));
    // Fields set by an ordinary update are not removed by an applier that never owned them.
    let mut edited = v4.clone();
    edited["data"]["manual"] = json!("m");
    let v5 = update(
        Some(&v4),
        &edited,
        &t,
        &UpdateOptions {
            manager: "kubectl-edit",
            api_version: "v1",
            subresource: "",
            now: "2025-01-01T00:09:00Z",
            ignored: Default::default(),
        },
    )
    .expect("edit");
    let v6 = apply(
        Some(&v5),
        &cm(json!({"c": "3", "shared": "s"})),
        &t,
        &opts("two"),
    )
    .expect("two again");
    assert_eq!(v6["data"]["manual"], json!("m"));
}

#[test]
fn list_maps_merge_per_item_across_appliers() {
    let t = deployment();
    let with_containers = |cs: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": cs}}}})
    };
    let a = apply(
        None,
        &with_containers(json!([{"name": "nginx", "image": "nginx"}])),
        &t,
        &app("a", false, "t1"),
    )
    .expect("a");
    let b = apply(
        Some(&a),
        &with_containers(json!([{"name": "sidecar", "image": "busybox"}])),
        &t,
        &app("b", false, "t2"),
    )
    .expect("b");
    let names: Vec<&str> = b["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nginx", "sidecar"]);
    // "a" drops its container: it goes, the sidecar stays.
    let c = apply(
        Some(&b),
        &with_containers(json!([])),
        &t,
        &app("a", false, "t3"),
    )
    .expect("a drops nginx");
    assert_eq!(
        c["spec"]["template"]["spec"]["containers"],
        json!([{"name": "sidecar", "image": "busybox"}])
    );
    // Ports are keyed on containerPort and protocol (defaulting to TCP).
    let d = apply(Some(&c), &with_containers(json!([{"name": "sidecar", "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]}])), &t, &app("b", false, "t4")).expect("ports");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // An item without its key is a bad request.
    let err = apply(
        Some(&d),
        &with_containers(json!([{"image": "x"}])),
        &t,
        &app("b", false, "t5"),
    )
    .expect_err("no key");
    assert_eq!(err.status_code(), 400);
    assert!(
        err.to_string()
            .contains("associative list with keys has an element that omits key field \"name\""),
        "{err}"
    );
}

#[test]
fn sets_and_atomic_fields() {
    let t = deployment();
    let base = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["a/x"]}, "spec": {"selector": {"matchLabels": {"app": "web"}}}});
    let one = apply(None, &base, &t, &app("one", false, "t")).expect("one");
    let e = entry(&one, "one").expect("one");
    assert_eq!(
        e["fieldsV1"]["f:metadata"]["f:finalizers"],
        json!({"v:\"a/x\"": {}})
    );
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:selector"],
        json!({}),
        "LabelSelector is atomic"
    );
    let mut other = base.clone();
    other["metadata"]["finalizers"] = json!(["b/y"]);
    other["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    let two = apply(Some(&one), &other, &t, &app("two", false, "t")).expect("two");
    assert_eq!(two["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    // Atomic selector with a different value conflicts as one field.
    let mut changed = base.clone();
    changed["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    let err =
        apply(Some(&two), &changed, &t, &app("three", false, "t")).expect_err("atomic conflict");
    assert!(
        err.to_string()
            .starts_with("Apply failed with 2 conflicts:"),
        "{err}"
    );
    assert!(err.to_string().contains("- .spec.selector"), "{err}");
}

#[test]
fn managed_fields_rules() {
    let t = deployment();
    // An applied configuration must not carry managedFields.
    let mut cfg = deploy(1, "x");
    cfg["metadata"]["managedFields"] = json!([{"manager": "m"}]);
    assert_eq!(
        apply(None, &cfg, &t, &app("kubectl", false, "t"))
            .expect_err("bad")
            .status_code(),
        400
    );
    // Updates of an object without managedFields are not tracked.
    let untracked = deploy(1, "x");
    let mut changed = untracked.clone();
    changed["spec"]["replicas"] = json!(2);
    let out = update(Some(&untracked), &changed, &t, &upd("m", "t")).expect("update");
    assert!(out["metadata"].get("managedFields").is_none());
    // `[{}]` strips managedFields (and the object is then no longer tracked by updates).
    let tracked = update(None, &deploy(1, "x"), &t, &upd("m", "t")).expect("create");
    let mf = ManagedFields::from_object(&tracked).expect("decode");
    assert_eq!(mf.entries.len(), 1);
    assert_eq!(mf.entries[0].manager, "m");
    assert_eq!(mf.entries[0].operation, Operation::Update);
    let mut reset = tracked.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    reset["spec"]["replicas"] = json!(3);
    let out = update(Some(&tracked), &reset, &t, &upd("n", "t2")).expect("reset");
    assert!(out["metadata"].get("managedFields").is_none());
    // Other managedFields sent with an update replace the live ones.
    let mut replaced = tracked.clone();
    replaced["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
    let out = update(Some(&tracked), &replaced, &t, &upd("n", "t2")).expect("replace");
    assert_eq!(
        entry(&out, "x").expect("x")["fieldsV1"],
        json!({"f:spec": {"f:paused": {}}})
    );
    // Status is not owned through the main resource.
    let mut with_status = tracked.clone();
    with_status["status"] = json!({"replicas": 1});
    let out = update(Some(&tracked), &with_status, &t, &upd("m2", "t3")).expect("status ignored");
    assert!(entry(&out, "m2").is_none());
    // Invalid managedFields on the live object are a bad request when decoded directly.
    assert!(matches!(
        ManagedFields::from_object(
            &json!({"metadata": {"managedFields": [{"operation": "Frob"}]}})
        ),
        Err(PatchError::BadRequest(_))
    ));
    // Entries sort Apply first, then by time.
    let a = apply(
        Some(&tracked),
        &deploy(1, "x"),
        &t,
        &app("zz-applier", false, "2030-01-01T00:00:00Z"),
    )
    .expect("apply");
    let ops: Vec<&str> = a["metadata"]["managedFields"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["operation"].as_str())
        .collect();
    assert_eq!(ops, ["Apply", "Update"]);
}

#[test]
fn custom_resources_apply_with_their_schema() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }}}});
    let t = crd::from_openapi_v3(Some(&schema)).expect("schema");
    let obj = |servers: Value, config: Value| json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"servers": servers, "config": config}});
    let one = apply(
        None,
        &obj(json!([{"name": "a", "port": 1}]), json!({"x": {"y": 1}})),
        &t,
        &ApplyOptions {
            manager: "one",
            api_version: "example.com/v1",
            subresource: "",
            now: "t",
            force: false,
            ignored: Default::default(),
        },
    )
    .expect("one");
    let two = apply(
        Some(&one),
        &obj(json!([{"name": "b", "port": 2}]), json!({"x": {"z": 2}})),
        &t,
        &ApplyOptions {
            manager: "two",
            api_version: "example.com/v1",
            subresource: "",
            now: "t",
            force: false,
            ignored: Default::default(),
        },
    )
    .expect("two");
    assert_eq!(
        two["spec"]["servers"],
        json!([{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    );
    assert_eq!(two["spec"]["config"], json!({"x": {"y": 1, "z": 2}}));
}
