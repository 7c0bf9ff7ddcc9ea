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
    ("", "v1", "PersistentVolume", &groups::core::PERSISTENT_VOLUME),
    ("", "v1", "PersistentVolumeClaim", &groups::core::PERSISTENT_VOLUME_CLAIM),
    ("", "v1", "ReplicationController", &groups::core::REPLICATION_CONTROLLER),
    ("", "v1", "PodTemplate", &groups::core::POD_TEMPLATE),
    ("apps", "v1", "Deployment", &groups::apps::DEPLOYMENT),
    ("apps", "v1", "ReplicaSet", &groups::apps::REPLICA_SET),
    ("apps", "v1", "StatefulSet", &groups::apps::STATEFUL_SET),
    ("apps", "v1", "DaemonSet", &groups::apps::DAEMON_SET),
    ("apps", "v1", "ControllerRevision", &groups::apps::CONTROLLER_REVISION),
    ("storage.k8s.io", "v1", "StorageClass", &groups::storage::STORAGE_CLASS),
    ("storage.k8s.io", "v1", "VolumeAttachment", &groups::storage::VOLUME_ATTACHMENT),
    ("storage.k8s.io", "v1", "CSIDriver", &groups::storage::CSI_DRIVER),
    ("storage.k8s.io", "v1", "CSINode", &groups::storage::CSI_NODE),
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
