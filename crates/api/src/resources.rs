//! The built-in resources rkube serves: one table that discovery, routing, storage,
//! authorization and the OpenAPI documents all read (DESIGN §5: "the registry is
//! data-driven").
//!
//! Names, short names, categories, scopes and verbs are upstream's (Kubernetes 1.33), so
//! `kubectl api-resources` looks the same as on any cluster.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Whether objects of a resource live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// A subresource (`pods/status`, `deployments/scale`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind it is read and written as, with its group and version when they differ from
    /// the parent's (`Scale` is `autoscaling/v1`).
    pub kind: &'static str,
    pub group: Option<&'static str>,
    pub version: Option<&'static str>,
    pub verbs: &'static [&'static str],
}

/// One resource in one group/version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural, lower-case resource name used in URLs.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub scope: Scope,
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The resource whose storage this one shares, keyed `/registry/<storage>/…`
    /// (`events.k8s.io/v1` events are stored with core `v1` events).
    pub storage: &'static str,
    /// The group/version objects are stored as (the other versions are converted).
    pub storage_version: (&'static str, &'static str),
    /// Whether this is the version discovery prefers for the group.
    pub preferred: bool,
}

impl Resource {
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        api_version(self.group, self.version)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::new(self.group, self.version, self.kind)
    }

    pub fn gvr(&self) -> GroupVersionResource {
        GroupVersionResource::new(self.group, self.version, self.plural)
    }

    /// `pods`, or `deployments.apps`: how upstream names a resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The storage key prefix for all objects of this resource (`/registry/pods/`).
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The storage key prefix of one namespace (`/registry/pods/default/`); for cluster
    /// scoped resources the whole prefix.
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => format!("/registry/{}/{ns}/", self.storage),
            _ => self.key_prefix(),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => format!("/registry/{}/{ns}/{name}", self.storage),
            _ => format!("/registry/{}/{name}", self.storage),
        }
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GroupVersionKind {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        GroupVersionKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }
}

impl fmt::Display for GroupVersionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, Kind={}", self.api_version(), self.kind)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl GroupVersionResource {
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        GroupVersionResource {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NO_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE_ONLY: &[&str] = &["create"];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind,
        group: None,
        version: None,
        verbs: STATUS_VERBS,
    }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group: Some("autoscaling"),
    version: Some("v1"),
    verbs: STATUS_VERBS,
};

/// A resource with upstream's defaults: all verbs, no subresources, stored under its own
/// name in its own version.
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    scope: Scope,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        short_names: &[],
        categories: &[],
        scope,
        verbs: ALL_VERBS,
        subresources: &[],
        storage: plural,
        storage_version: (group, version),
        preferred: true,
    }
}

use Scope::{Cluster, Namespaced};

/// Every built-in resource rkube serves.
pub static BUILTIN: &[Resource] = &[
    // core/v1
    Resource {
        verbs: CREATE_ONLY,
        ..res("", "v1", "Binding", "bindings", "binding", Namespaced)
    },
    Resource {
        short_names: &["cm"],
        ..res("", "v1", "ConfigMap", "configmaps", "configmap", Namespaced)
    },
    Resource {
        short_names: &["ep"],
        ..res("", "v1", "Endpoints", "endpoints", "endpoints", Namespaced)
    },
    Resource {
        short_names: &["ev"],
        ..res("", "v1", "Event", "events", "event", Namespaced)
    },
    Resource {
        short_names: &["limits"],
        ..res(
            "",
            "v1",
            "LimitRange",
            "limitranges",
            "limitrange",
            Namespaced,
        )
    },
    Resource {
        short_names: &["ns"],
        verbs: NO_DELETECOLLECTION,
        subresources: &[
            Subresource {
                name: "finalize",
                kind: "Namespace",
                group: None,
                version: None,
                verbs: &["update"],
            },
            status("Namespace"),
        ],
        ..res("", "v1", "Namespace", "namespaces", "namespace", Cluster)
    },
    Resource {
        short_names: &["no"],
        subresources: &[status("Node")],
        ..res("", "v1", "Node", "nodes", "node", Cluster)
    },
    Resource {
        short_names: &["pvc"],
        subresources: &[status("PersistentVolumeClaim")],
        ..res(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            Namespaced,
        )
    },
    Resource {
        short_names: &["pv"],
        subresources: &[status("PersistentVolume")],
        ..res(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            Cluster,
        )
    },
    Resource {
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            Subresource {
                name: "binding",
                kind: "Binding",
                group: None,
                version: None,
                verbs: CREATE_ONLY,
            },
            Subresource {
                name: "eviction",
                kind: "Eviction",
                group: Some("policy"),
                version: Some("v1"),
                verbs: CREATE_ONLY,
            },
            status("Pod"),
        ],
        ..res("", "v1", "Pod", "pods", "pod", Namespaced)
    },
    res(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        "podtemplate",
        Namespaced,
    ),
    Resource {
        short_names: &["rc"],
        categories: &["all"],
        subresources: &[SCALE, status("ReplicationController")],
        ..res(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            "replicationcontroller",
            Namespaced,
        )
    },
    Resource {
        short_names: &["quota"],
        subresources: &[status("ResourceQuota")],
        ..res(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            Namespaced,
        )
    },
    res("", "v1", "Secret", "secrets", "secret", Namespaced),
    Resource {
        short_names: &["sa"],
        ..res(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            Namespaced,
        )
    },
    Resource {
        short_names: &["svc"],
        categories: &["all"],
        verbs: NO_DELETECOLLECTION,
        subresources: &[status("Service")],
        ..res("", "v1", "Service", "services", "service", Namespaced)
    },
    // admissionregistration.k8s.io/v1
    Resource {
        categories: &["api-extensions"],
        ..res(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            Cluster,
        )
    },
    Resource {
        categories: &["api-extensions"],
        ..res(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            Cluster,
        )
    },
    // apps/v1
    res(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        Namespaced,
    ),
    Resource {
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[status("DaemonSet")],
        ..res(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            "daemonset",
            Namespaced,
        )
    },
    Resource {
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[SCALE, status("Deployment")],
        ..res(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            Namespaced,
        )
    },
    Resource {
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[SCALE, status("ReplicaSet")],
        ..res(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            Namespaced,
        )
    },
    Resource {
        short_names: &["sts"],
        categories: &["all"],
        subresources: &[SCALE, status("StatefulSet")],
        ..res(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            Namespaced,
        )
    },
    // authentication.k8s.io/v1
    Resource {
        verbs: CREATE_ONLY,
        ..res(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            "selfsubjectreview",
            Cluster,
        )
    },
    // autoscaling/v2 (preferred, storage) and v1
    Resource {
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &[status("HorizontalPodAutoscaler")],
        ..res(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            Namespaced,
        )
    },
    Resource {
        short_names: &["hpa"],
        categories: &["all"],
        subresources: &[status("HorizontalPodAutoscaler")],
        storage_version: ("autoscaling", "v2"),
        preferred: false,
        ..res(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            Namespaced,
        )
    },
    // batch/v1
    Resource {
        short_names: &["cj"],
        categories: &["all"],
        subresources: &[status("CronJob")],
        ..res("batch", "v1", "CronJob", "cronjobs", "cronjob", Namespaced)
    },
    Resource {
        categories: &["all"],
        subresources: &[status("Job")],
        ..res("batch", "v1", "Job", "jobs", "job", Namespaced)
    },
    // certificates.k8s.io/v1
    Resource {
        short_names: &["csr"],
        subresources: &[
            Subresource {
                name: "approval",
                kind: "CertificateSigningRequest",
                group: None,
                version: None,
                verbs: STATUS_VERBS,
            },
            status("CertificateSigningRequest"),
        ],
        ..res(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            "certificatesigningrequest",
            Cluster,
        )
    },
    // coordination.k8s.io/v1
    res(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        Namespaced,
    ),
    // discovery.k8s.io/v1
    res(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        Namespaced,
    ),
    // events.k8s.io/v1, stored with core events
    Resource {
        short_names: &["ev"],
        storage: "events",
        storage_version: ("", "v1"),
        ..res(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            Namespaced,
        )
    },
    // networking.k8s.io/v1
    res(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        Cluster,
    ),
    Resource {
        short_names: &["ing"],
        subresources: &[status("Ingress")],
        ..res(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            "ingress",
            Namespaced,
        )
    },
    Resource {
        short_names: &["netpol"],
        ..res(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            Namespaced,
        )
    },
    // node.k8s.io/v1
    res(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        Cluster,
    ),
    // policy/v1
    Resource {
        short_names: &["pdb"],
        subresources: &[status("PodDisruptionBudget")],
        ..res(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            Namespaced,
        )
    },
    // rbac.authorization.k8s.io/v1
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        Cluster,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        Cluster,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        Namespaced,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        Namespaced,
    ),
    // scheduling.k8s.io/v1
    Resource {
        short_names: &["pc"],
        ..res(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            "priorityclass",
            Cluster,
        )
    },
    // storage.k8s.io/v1
    res(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        Cluster,
    ),
    res(
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        "csinode",
        Cluster,
    ),
    Resource {
        short_names: &["sc"],
        ..res(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            "storageclass",
            Cluster,
        )
    },
    Resource {
        subresources: &[status("VolumeAttachment")],
        ..res(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            "volumeattachment",
            Cluster,
        )
    },
];

/// The built-in resources by plural name and by kind, for lookups on every request (a scan
/// of [`BUILTIN`] compared strings dozens of times per request).
struct Index {
    by_plural: HashMap<&'static str, Vec<&'static Resource>>,
    by_kind: HashMap<&'static str, Vec<&'static Resource>>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut by_plural: HashMap<_, Vec<_>> = HashMap::new();
        let mut by_kind: HashMap<_, Vec<_>> = HashMap::new();
        for r in BUILTIN {
            by_plural.entry(r.plural).or_default().push(r);
            by_kind.entry(r.kind).or_default().push(r);
        }
        Index { by_plural, by_kind }
    })
}

/// Looks up a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    index()
        .by_plural
        .get(plural)?
        .iter()
        .find(|r| r.group == group && r.version == version)
        .copied()
}

/// Looks up a resource by group, version and kind.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static Resource> {
    index()
        .by_kind
        .get(kind)?
        .iter()
        .find(|r| r.group == group && r.version == version)
        .copied()
}

/// The group/versions served, in discovery order (core `v1` first, then groups in the
/// order upstream lists them), each with its versions, preferred first.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in BUILTIN {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    if r.preferred {
                        versions.insert(0, r.version);
                    } else {
                        versions.push(r.version);
                    }
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_keys() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.kind, "Pod");
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(pods.namespace_prefix(Some("ns1")), "/registry/pods/ns1/");
        assert_eq!(pods.group_resource(), "pods");
        let deploy = find_kind("apps", "v1", "Deployment").unwrap();
        assert_eq!(deploy.group_resource(), "deployments.apps");
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.subresource("scale").unwrap().kind, "Scale");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/nodes/n1");
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(ev.key_prefix(), "/registry/events/");
    }

    #[test]
    fn every_resource_is_unique_and_consistent() {
        let mut seen = std::collections::HashSet::new();
        for r in BUILTIN {
            assert!(seen.insert((r.group, r.version, r.plural)), "{r:?} twice");
            assert_eq!(r.plural, r.plural.to_lowercase());
            assert_eq!(r.singular, r.kind.to_lowercase(), "{}", r.kind);
        }
    }

    #[test]
    fn groups_prefer_the_preferred_version() {
        let groups = groups();
        assert_eq!(groups[0], ("", vec!["v1"]));
        let autoscaling = groups.iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, vec!["v2", "v1"]);
    }
}
