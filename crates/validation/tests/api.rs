//! The public API as the API server uses it: decode errors, unknown kinds, the Status
//! message and causes, scopes, and robustness against arbitrary input.

mod common;

use common::*;
use rkube_validation::{
    Error, ErrorType, Gvk, default_object, format_invalid, format_kubectl_invalid, is_namespaced,
    is_supported, supported_kinds, validate_create, validate_status_update, validate_update,
};
use serde_json::{Value, json};

#[test]
fn every_listed_kind_is_supported() {
    let expected = [
        ("", "v1", "Namespace"),
        ("", "v1", "Pod"),
        ("", "v1", "Service"),
        ("", "v1", "Endpoints"),
        ("", "v1", "ConfigMap"),
        ("", "v1", "Secret"),
        ("", "v1", "ServiceAccount"),
        ("", "v1", "Node"),
        ("", "v1", "Event"),
        ("", "v1", "PersistentVolume"),
        ("", "v1", "PersistentVolumeClaim"),
        ("", "v1", "LimitRange"),
        ("", "v1", "ResourceQuota"),
        ("", "v1", "ReplicationController"),
        ("", "v1", "PodTemplate"),
        ("apps", "v1", "Deployment"),
        ("apps", "v1", "ReplicaSet"),
        ("apps", "v1", "StatefulSet"),
        ("apps", "v1", "DaemonSet"),
        ("apps", "v1", "ControllerRevision"),
        ("batch", "v1", "Job"),
        ("batch", "v1", "CronJob"),
        ("autoscaling", "v1", "HorizontalPodAutoscaler"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("policy", "v1", "PodDisruptionBudget"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("discovery.k8s.io", "v1", "EndpointSlice"),
        ("events.k8s.io", "v1", "Event"),
        ("networking.k8s.io", "v1", "Ingress"),
        ("networking.k8s.io", "v1", "IngressClass"),
        ("networking.k8s.io", "v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "v1", "Role"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
        ("storage.k8s.io", "v1", "StorageClass"),
        ("storage.k8s.io", "v1", "VolumeAttachment"),
        ("storage.k8s.io", "v1", "CSIDriver"),
        ("storage.k8s.io", "v1", "CSINode"),
        ("scheduling.k8s.io", "v1", "PriorityClass"),
        ("node.k8s.io", "v1", "RuntimeClass"),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest"),
        (
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
        ),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ("autoscaling", "v1", "Scale"),
    ];
    for (g, v, k) in expected {
        assert!(is_supported(Gvk::new(g, v, k)), "{g}/{v} {k}");
    }
    assert_eq!(supported_kinds().len(), expected.len());
    assert!(!is_supported(Gvk::new("apps", "v1beta1", "Deployment")));
    assert_eq!(is_namespaced(Gvk::new("", "v1", "Pod")), Some(true));
    assert_eq!(is_namespaced(Gvk::new("", "v1", "Node")), Some(false));
    assert_eq!(
        is_namespaced(Gvk::new("rbac.authorization.k8s.io", "v1", "ClusterRole")),
        Some(false)
    );
    assert_eq!(is_namespaced(Gvk::new("x", "v1", "Y")), None);
}

#[test]
fn unknown_kinds_are_errors() {
    let err = validate_create(Gvk::new("example.com", "v1", "Widget"), &json!({})).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
    assert_eq!(
        err.to_string(),
        "no defaulting or validation is defined for example.com/v1, Kind=Widget"
    );
}

#[test]
fn wrong_json_types_are_decode_errors() {
    let g = Gvk::new("apps", "v1", "Deployment");
    let mut d = json!({"metadata": {"name": "web"}, "spec": {"replicas": "three"}});
    let err = default_object(g, &mut d).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    let err = validate_create(
        Gvk::new("", "v1", "Pod"),
        &json!({"spec": {"containers": "x"}}),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Decode(_)));
    assert!(err.to_string().ends_with("json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"), "{err}");
    let err = validate_create(Gvk::new("", "v1", "Pod"), &json!([1, 2])).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("json: cannot unmarshal array into Go value of type v1.Pod"),
        "{err}"
    );
    // The object is left as it was when decoding fails.
    assert_eq!(d["spec"]["replicas"], "three");
}

#[test]
fn status_message_and_causes() {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}});
    let g = Gvk::new("apps", "v1", "Deployment");
    default_object(g, &mut d).unwrap();
    let errs = validate_create(g, &d).unwrap();
    assert_eq!(errs.len(), 2);
    assert_eq!(
        format_invalid("apps", "Deployment", "web", &errs),
        "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
    );
    assert_eq!(
        format_kubectl_invalid("Deployment", "web", &errs[..1]),
        "The Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    // What the API server puts in details.causes.
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert_eq!(errs[0].error_type, ErrorType::Invalid);
    assert_eq!(errs[0].field, "spec.replicas");
    assert_eq!(
        errs[0].body(),
        "Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(errs[1].reason(), "FieldValueRequired");
    assert_eq!(errs[1].body(), "Required value");
}

#[test]
fn scale_subresource() {
    let g = Gvk::new("autoscaling", "v1", "Scale");
    let sc = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": -2}});
    let errs = validate_create(g, &sc).unwrap();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "spec.replicas: Invalid value: -2: must be greater than or equal to 0"
    );
}

#[test]
fn update_requires_resource_version() {
    let g = Gvk::new("", "v1", "ConfigMap");
    let old = json!({"metadata": {"name": "c", "namespace": "d", "resourceVersion": "5"}});
    let new = json!({"metadata": {"name": "c", "namespace": "d"}});
    let errs = validate_update(g, &new, &old).unwrap();
    assert_eq!(
        errs[0].to_string(),
        "metadata.resourceVersion: Invalid value: \"\": must be specified for an update"
    );
}

/// Defaulting and validation must never panic, whatever the JSON.
#[test]
fn arbitrary_input_never_panics() {
    let junk = [
        json!(null),
        json!(1),
        json!("x"),
        json!({}),
        json!({"metadata": null}),
        json!({"metadata": {"name": 5}}),
        json!({"spec": null, "status": null}),
        json!({"spec": {"template": {"spec": {"containers": [null, {}]}}}}),
        json!({"spec": {"ports": [{"port": -5, "targetPort": "!"}], "selector": {"matchExpressions": [{}]}}}),
        json!({"metadata": {"name": "x", "annotations": {"": ""}, "ownerReferences": [{}, {"controller": true}, {"controller": true}]}}),
        json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1e100"}, "requests": {"cpu": "99999999999999999999999999999999999999"}}}]}}),
        json!({"spec": {"rules": [{}], "versions": [{}], "hard": {"": "1"}, "limits": [{}]}, "webhooks": [{}], "rules": [{}], "subjects": [{}]}),
    ];
    for g in supported_kinds() {
        for j in &junk {
            let mut v = j.clone();
            let _ = default_object(g, &mut v);
            let _ = validate_create(g, &v);
            let _ = validate_update(g, &v, j);
            let _ = validate_status_update(g, &v, j);
            let mut p = v.clone();
            rkube_validation::prepare_for_create(g, &mut p);
            rkube_validation::prepare_for_update(g, &mut p, j);
            rkube_validation::prepare_for_status_update(g, &mut p, j);
        }
    }
}

/// A minimal valid object of each kind passes create and an unchanged update.
#[test]
fn minimal_objects_are_valid() {
    let objs: Vec<Value> = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": {"a": "eA=="}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "c"}}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": "n1"}, "spec": {"drivers": []}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "default"}, "spec": {}}),
    ];
    for o in objs {
        assert_valid(create_errors(o.clone()));
        assert_valid(update_errors(o.clone(), o));
    }
}

#[test]
fn job_output_shape() {
    let j = prepared(
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
    );
    // Only what upstream stores: no empty lists or maps that were never sent.
    assert!(j["spec"].get("podFailurePolicy").is_none());
    assert!(j["spec"]["template"]["spec"].get("volumes").is_none());
    assert_eq!(j["apiVersion"], "batch/v1");
    assert_eq!(j["kind"], "Job");
    let csr = defaulted(
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "c"},
        "spec": {"request": "", "signerName": "a.b/c", "usages": ["any"]}, "status": {"conditions": [{"type": "Approved"}]}}),
    );
    assert_eq!(csr["status"]["conditions"][0]["status"], "True");
}
