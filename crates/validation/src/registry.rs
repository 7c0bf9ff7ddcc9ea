//! The table of supported kinds: (group, version, kind) → the kind's rules.

use crate::Gvk;
use crate::groups;
use crate::kinds::Kind;

type Entry = (&'static str, &'static str, &'static str, &'static dyn Kind);

static TABLE: &[Entry] = &[
    ("", "v1", "Pod", &groups::core::POD),
    ("", "v1", "Service", &groups::core::SERVICE),
    ("", "v1", "Namespace", &groups::core::NAMESPACE),
    ("", "v1", "ConfigMap", &groups::core::CONFIG_MAP),
    ("", "v1", "Secret", &groups::core::SECRET),
    ("", "v1", "ServiceAccount", &groups::core::SERVICE_ACCOUNT),
    ("", "v1", "Node", &groups::core::NODE),
    ("", "v1", "Endpoints", &groups::core::ENDPOINTS),
    ("", "v1", "Event", &groups::core::EVENT),
    ("", "v1", "LimitRange", &groups::core::LIMIT_RANGE),
    ("", "v1", "ResourceQuota", &groups::core::RESOURCE_QUOTA),
    (
        "",
        "v1",
        "PersistentVolume",
        &groups::core::PERSISTENT_VOLUME,
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        &groups::core::PERSISTENT_VOLUME_CLAIM,
    ),
    (
        "",
        "v1",
        "ReplicationController",
        &groups::core::REPLICATION_CONTROLLER,
    ),
    ("", "v1", "PodTemplate", &groups::core::POD_TEMPLATE),
    ("apps", "v1", "Deployment", &groups::apps::DEPLOYMENT),
    ("apps", "v1", "ReplicaSet", &groups::apps::REPLICA_SET),
    ("apps", "v1", "StatefulSet", &groups::apps::STATEFUL_SET),
    ("apps", "v1", "DaemonSet", &groups::apps::DAEMON_SET),
    (
        "apps",
        "v1",
        "ControllerRevision",
        &groups::apps::CONTROLLER_REVISION,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        &groups::storage::STORAGE_CLASS,
    ),
    (
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        &groups::storage::VOLUME_ATTACHMENT,
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        &groups::storage::CSI_DRIVER,
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSINode",
        &groups::storage::CSI_NODE,
    ),
    ("batch", "v1", "Job", &groups::batch::JOB),
    ("batch", "v1", "CronJob", &groups::batch::CRON_JOB),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        &groups::autoscaling::HPA_V1,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        &groups::autoscaling::HPA_V2,
    ),
    ("autoscaling", "v1", "Scale", &groups::autoscaling::SCALE),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        &groups::policy::POD_DISRUPTION_BUDGET,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        &groups::coordination::LEASE,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        &groups::discovery::ENDPOINT_SLICE,
    ),
    ("events.k8s.io", "v1", "Event", &groups::events::EVENT),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        &groups::networking::INGRESS,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        &groups::networking::INGRESS_CLASS,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        &groups::networking::NETWORK_POLICY,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        &groups::rbac::ROLE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        &groups::rbac::ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        &groups::rbac::CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        &groups::rbac::CLUSTER_ROLE_BINDING,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        &groups::scheduling::PRIORITY_CLASS,
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        &groups::node::RUNTIME_CLASS,
    ),
    (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        &groups::certificates::CSR,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        &groups::admissionregistration::VALIDATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        &groups::admissionregistration::MUTATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        &groups::apiextensions::CUSTOM_RESOURCE_DEFINITION,
    ),
];

pub(crate) fn lookup(gvk: Gvk<'_>) -> Option<&'static dyn Kind> {
    TABLE
        .iter()
        .find(|(g, v, k, _)| *g == gvk.group && *v == gvk.version && *k == gvk.kind)
        .map(|e| e.3)
}

pub(crate) fn all() -> Vec<Gvk<'static>> {
    TABLE.iter().map(|(g, v, k, _)| Gvk::new(g, v, k)).collect()
}
