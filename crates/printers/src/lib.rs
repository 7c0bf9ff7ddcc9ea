//! Server-side printing: the columns and cells of the `meta.k8s.io/v1` `Table` that
//! `kubectl get` asks for, per built-in resource, as upstream's printers
//! (`pkg/printers/internalversion`, Kubernetes 1.33) compute them.
//!
//! - [`columns`] gives a resource's column definitions (name, type, format, description,
//!   priority: 0 always shown, 1 only with `-o wide`);
//! - [`row`] gives the cells of one object (a JSON object, in any version the resource is
//!   served or stored in), plus the row conditions upstream sets (`Completed` for pods that
//!   have finished). Like upstream's API server it always computes the wide cells; `kubectl`
//!   hides the priority-1 columns itself.
//! - Resources without a printer of their own get upstream's default table convertor
//!   (`Name`, `Created At`), as `kubectl get roles` or `kubectl get crd` show.
//!
//! Ages and durations are upstream's `HumanDuration` ([`human_duration`]), counted from a
//! `now` the caller passes in (seconds since the epoch), so output is deterministic.
//! Quantities are shown in their canonical form ([`quantity::canonical`]) as upstream's
//! `resource.Quantity` prints them.

mod apps;
mod autoscaling;
mod batch;
mod cells;
mod core_v1;
mod describe;
mod duration;
mod events;
mod format;
mod networking;
mod pods;
pub mod quantity;
mod rbac;
mod storage;
mod system;

use serde_json::{Map, Value, json};

pub use duration::{age, human_duration};

/// One column of a `Table` (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `boolean`, `date`, … (OpenAPI types).
    pub ty: &'static str,
    /// `name` for the object's name column, otherwise usually empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The `TableColumnDefinition` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The printed form of one object: its cells, one per column, and the row's conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Strings, integers and booleans, as upstream's cell types.
    pub cells: Vec<Value>,
    /// `metav1.TableRowCondition`s (`{"type": "Completed", "status": "True", …}`).
    pub conditions: Vec<Value>,
}

impl Row {
    pub(crate) fn new(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }

    /// The `TableRow` JSON without `object` (the caller adds it as `includeObject` asks).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("cells".into(), Value::Array(self.cells.clone()));
        if !self.conditions.is_empty() {
            m.insert("conditions".into(), Value::Array(self.conditions.clone()));
        }
        Value::Object(m)
    }
}

type RowFn = fn(&Value, i64) -> Row;

/// A resource's printer: its columns and how to print one object.
struct Printer {
    group: &'static str,
    resource: &'static str,
    columns: &'static [Column],
    row: RowFn,
}

const fn p(
    group: &'static str,
    resource: &'static str,
    columns: &'static [Column],
    row: RowFn,
) -> Printer {
    Printer {
        group,
        resource,
        columns,
        row,
    }
}

/// Every resource with a printer of its own, by (group, plural). The versions of a group
/// share one printer, as upstream prints the internal form of every version.
static PRINTERS: &[Printer] = &[
    // core
    p("", "pods", pods::COLUMNS, pods::row),
    p(
        "",
        "podtemplates",
        core_v1::POD_TEMPLATE,
        core_v1::pod_template,
    ),
    p("", "replicationcontrollers", core_v1::RC, core_v1::rc),
    p("", "services", core_v1::SERVICE, core_v1::service),
    p("", "endpoints", core_v1::ENDPOINTS, core_v1::endpoints),
    p("", "nodes", core_v1::NODE, core_v1::node),
    p("", "events", events::COLUMNS, events::row),
    p("", "namespaces", core_v1::NAMESPACE, core_v1::namespace),
    p("", "secrets", core_v1::SECRET, core_v1::secret),
    p(
        "",
        "serviceaccounts",
        core_v1::SERVICE_ACCOUNT,
        core_v1::service_account,
    ),
    p("", "persistentvolumes", core_v1::PV, core_v1::pv),
    p("", "persistentvolumeclaims", core_v1::PVC, core_v1::pvc),
    p("", "configmaps", core_v1::CONFIG_MAP, core_v1::config_map),
    p(
        "",
        "resourcequotas",
        core_v1::RESOURCE_QUOTA,
        core_v1::resource_quota,
    ),
    p(
        "",
        "componentstatuses",
        core_v1::COMPONENT_STATUS,
        core_v1::component_status,
    ),
    // apps
    p("apps", "deployments", apps::DEPLOYMENT, apps::deployment),
    p("apps", "replicasets", apps::REPLICA_SET, apps::replica_set),
    p(
        "apps",
        "statefulsets",
        apps::STATEFUL_SET,
        apps::stateful_set,
    ),
    p("apps", "daemonsets", apps::DAEMON_SET, apps::daemon_set),
    p(
        "apps",
        "controllerrevisions",
        apps::CONTROLLER_REVISION,
        apps::controller_revision,
    ),
    // batch
    p("batch", "jobs", batch::JOB, batch::job),
    p("batch", "cronjobs", batch::CRON_JOB, batch::cron_job),
    // autoscaling
    p(
        "autoscaling",
        "horizontalpodautoscalers",
        autoscaling::HPA,
        autoscaling::hpa,
    ),
    p(
        "autoscaling",
        "scales",
        autoscaling::SCALE,
        autoscaling::scale,
    ),
    // policy
    p("policy", "poddisruptionbudgets", system::PDB, system::pdb),
    // coordination
    p(
        "coordination.k8s.io",
        "leases",
        system::LEASE,
        system::lease,
    ),
    // discovery, networking
    p(
        "discovery.k8s.io",
        "endpointslices",
        networking::ENDPOINT_SLICE,
        networking::endpoint_slice,
    ),
    p(
        "networking.k8s.io",
        "ingresses",
        networking::INGRESS,
        networking::ingress,
    ),
    p(
        "networking.k8s.io",
        "ingressclasses",
        networking::INGRESS_CLASS,
        networking::ingress_class,
    ),
    p(
        "networking.k8s.io",
        "networkpolicies",
        networking::NETWORK_POLICY,
        networking::network_policy,
    ),
    // events.k8s.io events are printed by the core event printer
    p("events.k8s.io", "events", events::COLUMNS, events::row),
    // rbac
    p(
        "rbac.authorization.k8s.io",
        "rolebindings",
        rbac::ROLE_BINDING,
        rbac::binding,
    ),
    p(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        rbac::CLUSTER_ROLE_BINDING,
        rbac::binding,
    ),
    // storage
    p(
        "storage.k8s.io",
        "storageclasses",
        storage::STORAGE_CLASS,
        storage::storage_class,
    ),
    p(
        "storage.k8s.io",
        "volumeattachments",
        storage::VOLUME_ATTACHMENT,
        storage::volume_attachment,
    ),
    p(
        "storage.k8s.io",
        "csidrivers",
        storage::CSI_DRIVER,
        storage::csi_driver,
    ),
    p(
        "storage.k8s.io",
        "csinodes",
        storage::CSI_NODE,
        storage::csi_node,
    ),
    p(
        "storage.k8s.io",
        "csistoragecapacities",
        storage::CSI_STORAGE_CAPACITY,
        storage::csi_storage_capacity,
    ),
    p(
        "storage.k8s.io",
        "volumeattributesclasses",
        storage::VOLUME_ATTRIBUTES_CLASS,
        storage::volume_attributes_class,
    ),
    // scheduling, node
    p(
        "scheduling.k8s.io",
        "priorityclasses",
        system::PRIORITY_CLASS,
        system::priority_class,
    ),
    p(
        "node.k8s.io",
        "runtimeclasses",
        system::RUNTIME_CLASS,
        system::runtime_class,
    ),
    // certificates
    p(
        "certificates.k8s.io",
        "certificatesigningrequests",
        system::CSR,
        system::csr,
    ),
    // admission registration
    p(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        system::MUTATING_WEBHOOK,
        system::webhook_configuration,
    ),
    p(
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        system::VALIDATING_WEBHOOK,
        system::webhook_configuration,
    ),
];

fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    PRINTERS
        .iter()
        .find(|p| p.group == group && p.resource == resource)
}

/// Whether upstream has a printer of its own for a resource (otherwise the default
/// `Name`, `Created At` table is used).
pub fn has_printer(group: &str, resource: &str) -> bool {
    printer(group, resource).is_some()
}

/// The column definitions of a resource's `Table`, wide ones included.
///
/// `autoscaling`/`scales` is the `Scale` subresource's printer.
pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    printer(group, resource).map_or(DEFAULT_COLUMNS, |p| p.columns)
}

/// The row of one object of a resource, as of `now` (seconds since the epoch). There is
/// one cell for each of [`columns`]. Missing or malformed fields print as upstream prints
/// their zero values; nothing here fails.
pub fn row(group: &str, resource: &str, obj: &Value, now: i64) -> Row {
    match printer(group, resource) {
        Some(p) => (p.row)(obj, now),
        None => default_row(obj),
    }
}

/// Upstream's default table convertor (`rest.NewDefaultTableConvertor`): the name and the
/// creation time as an RFC 3339 date.
static DEFAULT_COLUMNS: &[Column] = &[
    describe::NAME,
    Column {
        name: "Created At",
        ty: "date",
        format: "",
        description: describe::META_CREATION,
        priority: 0,
    },
];

fn default_row(obj: &Value) -> Row {
    let created = match duration::timestamp(&obj["metadata"]["creationTimestamp"]) {
        Some(t) => rkube_api::meta::rfc3339(t),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    Row::new(vec![cells::name(obj).into(), created.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printer_is_listed_once_and_rows_match_columns() {
        let mut seen = std::collections::HashSet::new();
        for p in PRINTERS {
            assert!(
                seen.insert((p.group, p.resource)),
                "{}/{}",
                p.group,
                p.resource
            );
            // An empty object still gives one cell per column.
            let row = (p.row)(&json!({}), 0);
            assert_eq!(
                row.cells.len(),
                p.columns.len(),
                "{}/{}",
                p.group,
                p.resource
            );
            assert!(
                p.columns.iter().any(|c| c.name == "Name"),
                "{}/{} has a name column",
                p.group,
                p.resource
            );
        }
    }

    #[test]
    fn default_table_is_name_and_created_at() {
        let cols = columns("rbac.authorization.k8s.io", "roles");
        let names: Vec<_> = cols.iter().map(|c| (c.name, c.ty)).collect();
        assert_eq!(names, [("Name", "string"), ("Created At", "date")]);
        let obj =
            json!({"metadata": {"name": "r", "creationTimestamp": "2025-01-02T03:04:05+01:00"}});
        let row = row("rbac.authorization.k8s.io", "roles", &obj, 0);
        assert_eq!(row.cells, vec![json!("r"), json!("2025-01-02T02:04:05Z")]);
        let row = super::row(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &json!({}),
            0,
        );
        assert_eq!(row.cells, vec![json!(""), json!("0001-01-01T00:00:00Z")]);
        assert!(!has_printer("", "limitranges"));
        assert!(has_printer("", "pods"));
    }

    #[test]
    fn json_forms() {
        let c = columns("", "pods")[0].to_json();
        assert_eq!(c["name"], "Name");
        assert_eq!(c["format"], "name");
        assert_eq!(c["priority"], 0);
        let r = Row::new(vec![json!("a")]).to_json();
        assert_eq!(r, json!({"cells": ["a"]}));
    }
}
