//! `apps` printers: deployments, replica sets, stateful sets, daemon sets and controller
//! revisions.

use serde_json::Value;

use crate::cells::{age, boolean, int, list, name, opt_int, s};
use crate::describe::{self, AGE, CONTAINERS, IMAGES, NAME, col, wide};
use crate::format::{containers, format_label_selector, label_selector, labels};
use crate::{Column, Row};

/// `spec.replicas`, which defaults to 1.
fn replicas(obj: &Value) -> i64 {
    opt_int(&obj["spec"]["replicas"]).unwrap_or(1)
}

pub static DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", describe::DEPLOY_UPDATED),
    col("Available", "string", describe::DEPLOY_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::DEPLOY_SELECTOR),
];

pub fn deployment(obj: &Value, now: i64) -> Row {
    let status = &obj["status"];
    let (names, images) = containers(&obj["spec"]["template"]["spec"]["containers"]);
    let selector =
        label_selector(&obj["spec"]["selector"]).unwrap_or_else(|| "<invalid>".to_string());
    Row::new(vec![
        name(obj).into(),
        format!("{}/{}", int(&status["readyReplicas"]), replicas(obj)).into(),
        int(&status["updatedReplicas"]).into(),
        int(&status["availableReplicas"]).into(),
        age(obj, now),
        names.into(),
        images.into(),
        selector.into(),
    ])
}

pub static REPLICA_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", describe::RS_SPEC_REPLICAS),
    col("Current", "integer", describe::RS_STATUS_REPLICAS),
    col("Ready", "integer", describe::RS_STATUS_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::RS_SPEC_SELECTOR),
];

pub fn replica_set(obj: &Value, now: i64) -> Row {
    let status = &obj["status"];
    let (names, images) = containers(&obj["spec"]["template"]["spec"]["containers"]);
    Row::new(vec![
        name(obj).into(),
        replicas(obj).into(),
        int(&status["replicas"]).into(),
        int(&status["readyReplicas"]).into(),
        age(obj, now),
        names.into(),
        images.into(),
        format_label_selector(&obj["spec"]["selector"]).into(),
    ])
}

pub static STATEFUL_SET: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub fn stateful_set(obj: &Value, now: i64) -> Row {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]["containers"]);
    Row::new(vec![
        name(obj).into(),
        format!("{}/{}", int(&obj["status"]["readyReplicas"]), replicas(obj)).into(),
        age(obj, now),
        names.into(),
        images.into(),
    ])
}

pub static DAEMON_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", describe::DS_DESIRED),
    col("Current", "integer", describe::DS_CURRENT),
    col("Ready", "integer", describe::DS_READY),
    col("Up-to-date", "integer", describe::DS_UPDATED),
    col("Available", "integer", describe::DS_AVAILABLE),
    col("Node Selector", "string", describe::POD_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::DS_SELECTOR),
];

pub fn daemon_set(obj: &Value, now: i64) -> Row {
    let status = &obj["status"];
    let template = &obj["spec"]["template"]["spec"];
    let (names, images) = containers(&template["containers"]);
    Row::new(vec![
        name(obj).into(),
        int(&status["desiredNumberScheduled"]).into(),
        int(&status["currentNumberScheduled"]).into(),
        int(&status["numberReady"]).into(),
        int(&status["updatedNumberScheduled"]).into(),
        int(&status["numberAvailable"]).into(),
        labels(&template["nodeSelector"]).into(),
        age(obj, now),
        names.into(),
        images.into(),
        format_label_selector(&obj["spec"]["selector"]).into(),
    ])
}

pub static CONTROLLER_REVISION: &[Column] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", describe::CR_REVISION),
    AGE,
];

/// The controller of an object, as `kind.group/name` in lower case (`statefulset.apps/web`),
/// or `<none>`.
fn controller(obj: &Value) -> String {
    let Some(owner) = list(&obj["metadata"]["ownerReferences"])
        .iter()
        .find(|o| boolean(&o["controller"]))
    else {
        return "<none>".into();
    };
    let api_version = s(&owner["apiVersion"]);
    let group = match api_version.matches('/').count() {
        1 => api_version.split('/').next().unwrap_or(""),
        _ => "",
    };
    let kind = s(&owner["kind"]);
    let name = s(&owner["name"]);
    if group.is_empty() && kind.is_empty() {
        return name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{name}", group_kind.to_lowercase())
}

pub fn controller_revision(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        controller(obj).into(),
        int(&obj["revision"]).into(),
        age(obj, now),
    ])
}
