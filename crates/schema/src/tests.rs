//! Tests of the built-in table, the CRD builder and the OpenAPI extensions.

use serde_json::json;

use crate::*;

fn field<'a>(def: &'a str, name: &str) -> &'a Field {
    let d = catalog()
        .definition(def)
        .unwrap_or_else(|| panic!("no definition {def}"));
    d.fields()
        .and_then(|f| f.get(name))
        .unwrap_or_else(|| panic!("no field {def}.{name}"))
}

fn list_kind(f: &Field) -> ListKind {
    match f.ty.resolve() {
        Resolved::List(l) => l.kind.clone(),
        other => panic!("{} is not a list: {other:?}", f.name),
    }
}

#[test]
fn every_served_kind_has_a_definition() {
    let kinds = [
        ("", "v1", "Pod", "io.k8s.api.core.v1.Pod"),
        ("", "v1", "Service", "io.k8s.api.core.v1.Service"),
        ("", "v1", "ConfigMap", "io.k8s.api.core.v1.ConfigMap"),
        ("", "v1", "Namespace", "io.k8s.api.core.v1.Namespace"),
        ("", "v1", "Node", "io.k8s.api.core.v1.Node"),
        ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
        (
            "apps",
            "v1",
            "StatefulSet",
            "io.k8s.api.apps.v1.StatefulSet",
        ),
        ("batch", "v1", "CronJob", "io.k8s.api.batch.v1.CronJob"),
        (
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler",
        ),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        ),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "io.k8s.api.policy.v1.PodDisruptionBudget",
        ),
        (
            "coordination.k8s.io",
            "v1",
            "Lease",
            "io.k8s.api.coordination.v1.Lease",
        ),
        (
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "io.k8s.api.discovery.v1.EndpointSlice",
        ),
        ("events.k8s.io", "v1", "Event", "io.k8s.api.events.v1.Event"),
        (
            "networking.k8s.io",
            "v1",
            "Ingress",
            "io.k8s.api.networking.v1.Ingress",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "io.k8s.api.rbac.v1.ClusterRole",
        ),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "io.k8s.api.storage.v1.StorageClass",
        ),
        (
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "io.k8s.api.scheduling.v1.PriorityClass",
        ),
        (
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "io.k8s.api.node.v1.RuntimeClass",
        ),
        (
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "io.k8s.api.certificates.v1.CertificateSigningRequest",
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
    ];
    for (g, v, k, name) in kinds {
        let gvk = Gvk::new(g, v, k);
        let def = catalog()
            .definition_for_gvk(&gvk)
            .unwrap_or_else(|| panic!("no kind {gvk:?}"));
        assert_eq!(def.name, name);
        assert!(def.gvks.contains(&gvk));
        let fields = def.fields().expect("kinds are structs");
        assert!(
            fields.contains_key("apiVersion")
                && fields.contains_key("kind")
                && fields.contains_key("metadata")
        );
    }
    for meta in [
        "ObjectMeta",
        "LabelSelector",
        "ManagedFieldsEntry",
        "OwnerReference",
    ] {
        assert!(
            catalog()
                .definition(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{meta}"))
                .is_some()
        );
    }
}

#[test]
fn every_named_reference_resolves() {
    fn check(ty: &Type, at: &str) {
        match ty {
            Type::Named(n) => assert!(catalog().definition(n).is_some(), "{at}: dangling {n}"),
            Type::List(l) => check(&l.items, at),
            Type::Map(m) => check(&m.values, at),
            _ => {}
        }
    }
    let mut n = 0;
    for def in catalog().definitions() {
        if let Some(fields) = def.fields() {
            for (name, f) in fields {
                check(&f.ty, &format!("{}.{name}", def.name));
                n += 1;
            }
        }
    }
    assert!(n > 2500, "only {n} fields");
}

#[test]
fn pod_spec_lists_carry_ssa_and_smp_metadata() {
    let containers = field("io.k8s.api.core.v1.PodSpec", "containers");
    assert_eq!(list_kind(containers), ListKind::map_keys(["name"]));
    assert!(containers.patch.merge && !containers.patch.retain_keys);
    assert_eq!(containers.patch.merge_key.as_deref(), Some("name"));

    let volumes = field("io.k8s.api.core.v1.PodSpec", "volumes");
    assert_eq!(
        volumes.patch.strategy_string().as_deref(),
        Some("merge,retainKeys")
    );
    assert_eq!(volumes.patch.merge_key.as_deref(), Some("name"));

    // Tolerations: atomic and replaced by strategic merge patch.
    let tolerations = field("io.k8s.api.core.v1.PodSpec", "tolerations");
    assert_eq!(list_kind(tolerations), ListKind::Atomic);
    assert!(tolerations.patch.is_empty());

    let ports = field("io.k8s.api.core.v1.Container", "ports");
    match list_kind(ports) {
        ListKind::Map { keys, key_defaults } => {
            assert_eq!(keys, ["containerPort", "protocol"]);
            assert_eq!(key_defaults.get("protocol"), Some(&json!("TCP")));
        }
        other => panic!("ports: {other:?}"),
    }
    assert_eq!(ports.patch.merge_key.as_deref(), Some("containerPort"));
    assert_eq!(
        field("io.k8s.api.core.v1.Container", "env")
            .patch
            .merge_key
            .as_deref(),
        Some("name")
    );
    assert_eq!(
        field("io.k8s.api.core.v1.Container", "volumeMounts")
            .patch
            .merge_key
            .as_deref(),
        Some("mountPath")
    );
    assert_eq!(
        list_kind(field("io.k8s.api.core.v1.Container", "args")),
        ListKind::Atomic
    );
}

#[test]
fn metadata_and_strategy_fields() {
    let finalizers = field(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    );
    assert_eq!(list_kind(finalizers), ListKind::Set);
    assert!(finalizers.patch.merge && finalizers.patch.merge_key.is_none());
    let owners = field(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
    );
    assert_eq!(list_kind(owners), ListKind::map_keys(["uid"]));
    assert_eq!(owners.patch.merge_key.as_deref(), Some("uid"));
    let labels = field("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels");
    assert_eq!(labels.ty.map_kind_in(Some(labels)), Some(MapKind::Granular));
    let node_selector = field("io.k8s.api.core.v1.PodSpec", "nodeSelector");
    assert_eq!(
        node_selector.ty.map_kind_in(Some(node_selector)),
        Some(MapKind::Atomic)
    );

    let strategy = field("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
    assert!(strategy.patch.retain_keys && !strategy.patch.merge);
    let pdb_selector = field("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector");
    assert!(pdb_selector.patch.replace);
}

#[test]
fn atomic_structs_and_field_overrides() {
    let selector = field("io.k8s.api.apps.v1.DeploymentSpec", "selector");
    assert_eq!(
        selector.ty.map_kind_in(Some(selector)),
        Some(MapKind::Atomic)
    );
    let claim_ref = field("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef");
    assert_eq!(
        claim_ref.ty.map_kind_in(Some(claim_ref)),
        Some(MapKind::Granular)
    );
    let involved = field("io.k8s.api.core.v1.Event", "involvedObject");
    assert_eq!(
        involved.ty.map_kind_in(Some(involved)),
        Some(MapKind::Atomic)
    );
    let template = field("io.k8s.api.apps.v1.DeploymentSpec", "template");
    assert_eq!(
        template.ty.map_kind_in(Some(template)),
        Some(MapKind::Granular)
    );
}

#[test]
fn child_walks_structs_maps_and_unknown_fields() {
    let deploy = catalog()
        .type_for_gvk(&Gvk::new("apps", "v1", "Deployment"))
        .expect("deployment");
    let spec = deploy.child("spec").expect("spec");
    assert!(spec.field.is_some());
    let template = spec.ty.child("template").expect("template");
    let pod_spec = template.ty.child("spec").expect("pod spec");
    assert!(pod_spec.ty.child("containers").is_some());
    assert!(pod_spec.ty.child("noSuchField").is_none());
    let labels = deploy
        .child("metadata")
        .and_then(|m| m.ty.child("labels"))
        .expect("labels");
    let app = labels.ty.child("app").expect("map value");
    assert!(matches!(app.ty.resolve(), Resolved::Scalar(Scalar::String)));
    // Quantity and IntOrString are untyped scalars.
    let max_surge = catalog()
        .definition("io.k8s.api.apps.v1.RollingUpdateDeployment")
        .and_then(|d| d.fields())
        .and_then(|f| f.get("maxSurge"))
        .expect("maxSurge");
    assert!(matches!(
        max_surge.ty.resolve(),
        Resolved::Scalar(Scalar::Untyped)
    ));
}

#[test]
fn property_extensions_match_upstream_openapi() {
    let ext = catalog()
        .property_extensions("io.k8s.api.core.v1.PodSpec")
        .expect("PodSpec");
    assert_eq!(
        serde_json::Value::Object(ext["containers"].clone()),
        json!({
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "name",
        })
    );
    assert_eq!(
        ext["volumes"]["x-kubernetes-patch-strategy"],
        json!("merge,retainKeys")
    );
    assert_eq!(
        ext["nodeSelector"]["x-kubernetes-map-type"],
        json!("atomic")
    );
    assert!(!ext.contains_key("hostname"));
    let defext = catalog()
        .definition_extensions("io.k8s.api.apps.v1.Deployment")
        .expect("def");
    assert_eq!(
        defext["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let sel = catalog()
        .definition_extensions("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
        .expect("sel");
    assert_eq!(sel["x-kubernetes-map-type"], json!("atomic"));
}

#[test]
fn augment_openapi_documents() {
    let mut v2 = json!({"definitions": {
        "io.k8s.api.core.v1.Container": {"type": "object", "properties": {
            "env": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.EnvVar"}},
            "name": {"type": "string"}
        }},
        "io.example.Unknown": {"type": "object", "properties": {"a": {"type": "string"}}}
    }});
    catalog().augment_openapi_v2(&mut v2);
    let env = &v2["definitions"]["io.k8s.api.core.v1.Container"]["properties"]["env"];
    assert_eq!(env["x-kubernetes-patch-merge-key"], json!("name"));
    assert_eq!(env["x-kubernetes-patch-strategy"], json!("merge"));
    assert_eq!(env["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        v2["definitions"]["io.example.Unknown"],
        json!({"type": "object", "properties": {"a": {"type": "string"}}})
    );

    let mut v3 = json!({"components": {"schemas": {
        "io.k8s.api.apps.v1.Deployment": {"type": "object", "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]}}}
    }}});
    catalog().augment_openapi_v3(&mut v3);
    assert_eq!(
        v3["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]
            [0]["kind"],
        json!("Deployment")
    );
}

#[test]
fn crd_schema_builds_the_same_model() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "servers": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "protocol"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"}
                        }}
                    },
                    "selector": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "ref": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {"name": {"type": "string"}}}
                }
            }
        }
    });
    let ty = crd::from_openapi_v3(Some(&schema)).expect("valid");
    assert!(
        ty.child("metadata").is_some_and(
            |m| *m.ty == Type::named("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        )
    );
    assert!(ty.child("apiVersion").is_some() && ty.child("kind").is_some());
    let spec = ty.child("spec").expect("spec").ty;
    let kind_of = |name: &str| match spec.child(name).expect(name).ty.resolve() {
        Resolved::List(l) => l.kind.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(kind_of("tags"), ListKind::Set);
    assert_eq!(kind_of("args"), ListKind::Atomic);
    match kind_of("servers") {
        ListKind::Map { keys, key_defaults } => {
            assert_eq!(keys, ["name", "protocol"]);
            assert_eq!(key_defaults["protocol"], json!("TCP"));
        }
        other => panic!("servers: {other:?}"),
    }
    let selector = spec.child("selector").expect("selector");
    assert_eq!(
        selector.ty.map_kind_in(selector.field),
        Some(MapKind::Atomic)
    );
    let reference = spec.child("ref").expect("ref");
    assert_eq!(
        reference.ty.map_kind_in(reference.field),
        Some(MapKind::Atomic)
    );
    assert!(matches!(spec.child("raw").expect("raw").ty, Type::Deduced));
    assert!(matches!(
        spec.child("port").expect("port").ty.resolve(),
        Resolved::Scalar(Scalar::Untyped)
    ));
    assert!(spec.child("unknown").is_none());
    // No schema at all keeps everything.
    let open = crd::from_openapi_v3(None).expect("open");
    assert!(open.child("anything").is_some());
}

#[test]
fn crd_schema_errors_are_reported_with_their_path() {
    let bad = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map"}
    }}}});
    let err = crd::from_openapi_v3(Some(&bad)).expect_err("list-map without keys");
    assert_eq!(err.path, ".spec.items");
    assert!(
        err.to_string().contains("x-kubernetes-list-map-keys"),
        "{err}"
    );
    let err = crd::from_openapi_v3(Some(&json!({"type": "string"}))).expect_err("root");
    assert!(err.to_string().contains("<root>"), "{err}");
    assert!(
        crd::from_openapi_v3(Some(
            &json!({"type": "object", "properties": {"a": {"type": "bogus"}}})
        ))
        .is_err()
    );
}
