//! Strategic merge patch, with upstream's documented behaviour and the patches kubectl's
//! client-side `apply` sends.

use rkube_patch::{PatchError, strategic};
use rkube_schema::{Gvk, Type, catalog};
use serde_json::{Value, json};

fn ty(group: &str, version: &str, kind: &str) -> Type {
    catalog()
        .type_for_gvk(&Gvk::new(group, version, kind))
        .expect("known kind")
}

fn pod() -> Type {
    ty("", "v1", "Pod")
}

fn smp(orig: Value, patch: Value, t: &Type) -> Value {
    strategic::apply(&orig, &patch, t).unwrap_or_else(|e| panic!("patch {patch} failed: {e}"))
}

#[test]
fn containers_merge_by_name_and_scalars_replace() {
    let orig = json!({"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"}
    ]}});
    let patch = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:2"}
        ]}})
    );
}

#[test]
fn lists_without_strategy_are_replaced() {
    let orig = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "a", "args": ["x", "y"]}]}});
    let patch = json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "a", "args": ["z"]}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "a", "args": ["z"]}]}})
    );
}

#[test]
fn null_deletes_and_maps_merge() {
    let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}, "spec": {"nodeName": "n1"}});
    let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": null}, "spec": {"nodeName": null, "hostname": "h"}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"hostname": "h"}})
    );
}

#[test]
fn patch_directives_on_maps_and_lists() {
    // $patch: replace on a map.
    let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"metadata": {"labels": {"c": "3"}}})
    );
    // $patch: delete on a map.
    let orig = json!({"spec": {"securityContext": {"runAsUser": 1}, "hostname": "h"}});
    let patch = json!({"spec": {"securityContext": {"$patch": "delete"}}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"securityContext": {}, "hostname": "h"}})
    );
    // $patch: delete of a list item by merge key.
    let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
    let patch = json!({"spec": {"containers": [{"$patch": "delete", "name": "b"}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"containers": [{"name": "a"}, {"name": "c"}]}})
    );
    // $patch: replace inside a list replaces the whole list.
    let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch =
        json!({"spec": {"containers": [{"name": "x", "image": "i"}, {"$patch": "replace"}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"containers": [{"name": "x", "image": "i"}]}})
    );
    // Unknown directive.
    let err = strategic::apply(
        &json!({"metadata": {"labels": {}}}),
        &json!({"metadata": {"labels": {"$patch": "bogus"}}}),
        &pod(),
    )
    .expect_err("bogus");
    assert_eq!(err.status_code(), 500);
    assert!(
        err.to_string().starts_with("unknown patch type: bogus"),
        "{err}"
    );
}

#[test]
fn primitive_lists_with_merge_strategy() {
    let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
    // Merge adds new values (deduplicated).
    let patch = json!({"metadata": {"finalizers": ["b", "c"]}});
    let out = smp(orig.clone(), patch, &pod());
    let mut got: Vec<String> = out["metadata"]["finalizers"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
    // $deleteFromPrimitiveList removes values.
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"metadata": {"finalizers": ["b"]}})
    );
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "d"}, {"name": "b"}],
        "containers": [{"name": "d", "image": "d"}]
    }});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"containers": [{"name": "c"}, {"name": "a"}, {"name": "d", "image": "d"}, {"name": "b"}]}})
    );
    // Primitive list order.
    let orig = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch =
        json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"metadata": {"finalizers": ["b", "c", "a"]}})
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let d = ty("apps", "v1", "Deployment");
    let orig = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    assert_eq!(
        smp(orig, patch, &d),
        json!({"spec": {"strategy": {"type": "Recreate"}}})
    );
    // Volumes: merge,retainKeys on list items.
    let orig = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let patch = json!({"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}]}})
    );
}

#[test]
fn replace_strategy_replaces_maps() {
    let pdb = ty("policy", "v1", "PodDisruptionBudget");
    let orig = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}});
    let patch = json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}});
    assert_eq!(
        smp(orig, patch, &pdb),
        json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}})
    );
}

#[test]
fn new_items_go_before_server_only_items_like_upstream() {
    let orig = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch = json!({"spec": {"containers": [{"name": "c"}]}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}})
    );
}

#[test]
fn errors_match_upstream() {
    let err = strategic::apply(
        &json!({"spec": {"containers": [{"name": "a"}]}}),
        &json!({"spec": {"containers": [{"image": "x"}]}}),
        &pod(),
    )
    .expect_err("no key");
    assert_eq!(
        err,
        PatchError::Internal("map: map[image:x] does not contain declared merge key: name".into())
    );
    assert_eq!(
        strategic::apply_bytes(&json!({}), b"nope", &pod())
            .expect_err("bad json")
            .status_code(),
        400
    );
    assert_eq!(
        strategic::apply(&json!({}), &json!([1]), &pod())
            .expect_err("not an object")
            .status_code(),
        400
    );
    let err = strategic::apply(
        &json!({"metadata": {"finalizers": ["a"]}}),
        &json!({"metadata": {"$setElementOrder/finalizers": ["x"], "finalizers": ["b"]}}),
        &pod(),
    )
    .expect_err("order");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn unknown_fields_are_taken_or_merged_as_plain_json() {
    let orig = json!({"spec": {"hostname": "h"}, "extra": {"a": 1}});
    let patch = json!({"spec": {"notAField": [1]}, "extra": {"b": 2}});
    assert_eq!(
        smp(orig, patch, &pod()),
        json!({"spec": {"hostname": "h", "notAField": [1]}, "extra": {"a": 1, "b": 2}})
    );
}

/// The live Deployment as a real cluster stores it after `kubectl apply -f v1.yaml`
/// (server defaults filled in).
fn live_v1() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v1}"}},
        "spec": {
            "replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "minReadySeconds": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.24",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "resources": {}
                    }],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30
                }
            }
        }
    })
}

/// kubectl 1.32's three-way patches (last-applied vs new config vs live) for a change and
/// for a re-apply that removes fields, replayed through the strategic merge patch; the
/// results are what a real cluster stores (server defaults kept, removed items gone, list
/// order per $setElementOrder).
#[test]
fn kubectl_client_side_apply_replay() {
    let d = ty("apps", "v1", "Deployment");
    // v2: new image, replicas 3, an added env var, an added port, an added sidecar.
    let patch_v2 = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v2}"}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                 "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                 "env": [{"name": "B", "value": "2"}], "image": "nginx:1.25", "name": "nginx",
                 "ports": [{"containerPort": 443}]},
                {"image": "busybox", "name": "sidecar"}
            ]
        }}}
    });
    let live_v2 = smp(live_v1(), patch_v2, &d);
    let c = &live_v2["spec"]["template"]["spec"]["containers"];
    assert_eq!(live_v2["spec"]["replicas"], json!(3));
    assert_eq!(c[0]["image"], json!("nginx:1.25"));
    assert_eq!(
        c[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(
        c[0]["imagePullPolicy"],
        json!("IfNotPresent"),
        "server defaults stay"
    );
    assert_eq!(c[1], json!({"name": "sidecar", "image": "busybox"}));
    assert_eq!(
        live_v2["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        json!("{v2}")
    );

    // v3: drops env B, port 443, the sidecar, minReadySeconds, and switches to Recreate.
    let patch_v3 = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{v3}"}},
        "spec": {"minReadySeconds": null,
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"},
            "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}],
                 "$setElementOrder/ports": [{"containerPort": 80}],
                 "env": [{"$patch": "delete", "name": "B"}], "name": "nginx",
                 "ports": [{"$patch": "delete", "containerPort": 443}]},
                {"$patch": "delete", "name": "sidecar"}
            ]
        }}}
    });
    let live_v3 = smp(live_v2, patch_v3, &d);
    let mut want = live_v1();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!("{v3}");
    want["spec"]["replicas"] = json!(3);
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.25");
    want["spec"]["strategy"] = json!({"type": "Recreate"});
    want["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("minReadySeconds");
    assert_eq!(live_v3, want);
}
