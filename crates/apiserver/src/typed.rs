//! Decoding built-in objects through their `k8s-openapi` types (DESIGN §3): the round trip
//! rejects values of the wrong JSON type, drops fields the type does not have, and the
//! difference between what came in and what came out names those unknown fields, which
//! `fieldValidation` then reports (Strict: 400; Warn: a `Warning` header; Ignore: silently).

use k8s_openapi::api;
use serde_json::Value;

macro_rules! typed_kinds {
    ($( ($group:literal, $version:literal, $kind:literal, $ty:ty) ),* $(,)?) => {
        /// Decodes `value` as the built-in type of (group, version, kind) and encodes it back.
        /// `None` if the kind has no built-in type.
        pub fn roundtrip(
            group: &str,
            version: &str,
            kind: &str,
            value: Value,
        ) -> Option<Result<Value, serde_json::Error>> {
            match (group, version, kind) {
                $(
                    ($group, $version, $kind) => Some(
                        serde_json::from_value::<$ty>(value).and_then(serde_json::to_value),
                    ),
                )*
                _ => None,
            }
        }

        /// Registers the schema of every built-in kind with `gen`; returns each kind's
        /// (group, version, kind, schema name).
        pub fn register_schemas(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<(&'static str, &'static str, &'static str, String)> {
            let mut out = Vec::new();
            $(
                generator.subschema_for::<$ty>();
                out.push(($group, $version, $kind, <$ty as schemars::JsonSchema>::schema_name().into_owned()));
            )*
            out
        }
    };
}

typed_kinds!(
    ("", "v1", "Binding", api::core::v1::Binding),
    ("", "v1", "ConfigMap", api::core::v1::ConfigMap),
    ("", "v1", "Endpoints", api::core::v1::Endpoints),
    ("", "v1", "Event", api::core::v1::Event),
    ("", "v1", "LimitRange", api::core::v1::LimitRange),
    ("", "v1", "Namespace", api::core::v1::Namespace),
    ("", "v1", "Node", api::core::v1::Node),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        api::core::v1::PersistentVolumeClaim
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        api::core::v1::PersistentVolume
    ),
    ("", "v1", "Pod", api::core::v1::Pod),
    ("", "v1", "PodTemplate", api::core::v1::PodTemplate),
    (
        "",
        "v1",
        "ReplicationController",
        api::core::v1::ReplicationController
    ),
    ("", "v1", "ResourceQuota", api::core::v1::ResourceQuota),
    ("", "v1", "Secret", api::core::v1::Secret),
    ("", "v1", "ServiceAccount", api::core::v1::ServiceAccount),
    ("", "v1", "Service", api::core::v1::Service),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        api::admissionregistration::v1::MutatingWebhookConfiguration
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        api::admissionregistration::v1::ValidatingWebhookConfiguration
    ),
    (
        "apps",
        "v1",
        "ControllerRevision",
        api::apps::v1::ControllerRevision
    ),
    ("apps", "v1", "DaemonSet", api::apps::v1::DaemonSet),
    ("apps", "v1", "Deployment", api::apps::v1::Deployment),
    ("apps", "v1", "ReplicaSet", api::apps::v1::ReplicaSet),
    ("apps", "v1", "StatefulSet", api::apps::v1::StatefulSet),
    (
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        api::authentication::v1::SelfSubjectReview
    ),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        api::autoscaling::v1::HorizontalPodAutoscaler
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        api::autoscaling::v2::HorizontalPodAutoscaler
    ),
    ("autoscaling", "v1", "Scale", api::autoscaling::v1::Scale),
    ("batch", "v1", "CronJob", api::batch::v1::CronJob),
    ("batch", "v1", "Job", api::batch::v1::Job),
    (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        api::certificates::v1::CertificateSigningRequest
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        api::coordination::v1::Lease
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        api::discovery::v1::EndpointSlice
    ),
    ("events.k8s.io", "v1", "Event", api::events::v1::Event),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        api::networking::v1::IngressClass
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        api::networking::v1::Ingress
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        api::networking::v1::NetworkPolicy
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        api::node::v1::RuntimeClass
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        api::policy::v1::PodDisruptionBudget
    ),
    ("policy", "v1", "Eviction", api::policy::v1::Eviction),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        api::rbac::v1::ClusterRoleBinding
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        api::rbac::v1::ClusterRole
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        api::rbac::v1::RoleBinding
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        api::rbac::v1::Role
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        api::scheduling::v1::PriorityClass
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        api::storage::v1::CSIDriver
    ),
    ("storage.k8s.io", "v1", "CSINode", api::storage::v1::CSINode),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        api::storage::v1::StorageClass
    ),
    (
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        api::storage::v1::VolumeAttachment
    ),
);

/// Paths (`spec.foo`, `spec.containers[0].bar`) of fields present (and not null) in
/// `input` but absent from `output`.
pub fn dropped_fields(input: &Value, output: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(input, output, "", &mut out);
    out
}

fn walk(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    Some(ov) => walk(v, ov, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                walk(iv, ov, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Upstream's text for a type error found while decoding.
pub fn decode_error(kind: &str, e: &serde_json::Error) -> String {
    format!("error decoding {kind}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let input = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "creationTimestamp": null, "bogus": 1},
            "data": {"a": "b"},
            "extra": {"deep": true}
        });
        let out = roundtrip("", "v1", "ConfigMap", input.clone())
            .unwrap()
            .unwrap();
        assert_eq!(out["data"]["a"], "b");
        assert!(out.get("extra").is_none());
        assert_eq!(
            dropped_fields(&input, &out),
            vec!["extra".to_string(), "metadata.bogus".to_string()]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "x"}]}});
        let out = roundtrip("", "v1", "Pod", pod.clone()).unwrap().unwrap();
        assert_eq!(
            dropped_fields(&pod, &out),
            vec!["spec.containers[0].imagePullPolcy".to_string()]
        );
        assert!(
            roundtrip("", "v1", "Pod", json!({"spec": {"containers": "no"}}))
                .unwrap()
                .is_err()
        );
        assert!(roundtrip("example.com", "v1", "Thing", json!({})).is_none());
    }
}
