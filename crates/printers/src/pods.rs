//! Pods: `NAME READY STATUS RESTARTS AGE` and, wide, `IP NODE NOMINATED NODE READINESS
//! GATES`, with upstream's status logic (init containers, waiting and terminated reasons,
//! sidecars, `Completed`, `Terminating`, `Unknown` for lost nodes, `SchedulingGated`).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::cells::{age, boolean, deleting, int, list, name, s};
use crate::describe::{self, AGE, NAME, col, wide};
use crate::duration::{human_duration, timestamp};
use crate::{Column, Row};

pub static COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", describe::POD_IP),
    wide("Node", "string", describe::POD_NODE_NAME),
    wide("Nominated Node", "string", describe::POD_NOMINATED_NODE),
    wide("Readiness Gates", "string", describe::POD_READINESS_GATES),
];

/// A sidecar: an init container that restarts always.
fn restartable(c: Option<&&Value>) -> bool {
    c.is_some_and(|c| s(&c["restartPolicy"]) == "Always")
}

/// The later of a recorded restart time and a container's last termination.
fn later(current: Option<i64>, status: &Value) -> Option<i64> {
    let terminated = &status["lastState"]["terminated"];
    if !terminated.is_object() {
        return current;
    }
    match (current, timestamp(&terminated["finishedAt"])) {
        (Some(c), Some(t)) => Some(c.max(t)),
        (c, t) => c.or(t),
    }
}

fn condition_true(status: &Value, ty: &str) -> bool {
    list(&status["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == ty)
        .is_some_and(|c| s(&c["status"]) == "True")
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = s(&t["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(&t["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(&t["exitCode"]))
    }
}

pub fn row(pod: &Value, now: i64) -> Row {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let phase = s(&status["phase"]);
    let mut reason = match s(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if list(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let init_specs: HashMap<&str, &Value> = list(&spec["initContainers"])
        .iter()
        .map(|c| (s(&c["name"]), c))
        .collect();
    let total = list(&spec["containers"]).len()
        + list(&spec["initContainers"])
            .iter()
            .filter(|c| s(&c["restartPolicy"]) == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart = None;

    let mut initializing = false;
    let init_count = list(&spec["initContainers"]).len();
    for (i, c) in list(&status["initContainerStatuses"]).iter().enumerate() {
        let count = int(&c["restartCount"]);
        restarts += count;
        last_restart = later(last_restart, c);
        let sidecar = restartable(init_specs.get(s(&c["name"])));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, c);
        }
        let terminated = &c["state"]["terminated"];
        let waiting = &c["state"]["waiting"];
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if sidecar && boolean(&c["started"]) {
            if boolean(&c["ready"]) {
                ready += 1;
            }
            continue;
        }
        if terminated.is_object() {
            reason = terminated_reason(terminated, "Init:");
        } else if waiting.is_object()
            && !s(&waiting["reason"]).is_empty()
            && s(&waiting["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", s(&waiting["reason"]));
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in list(&status["containerStatuses"]).iter().rev() {
            restarts += int(&c["restartCount"]);
            last_restart = later(last_restart, c);
            let waiting = &c["state"]["waiting"];
            let terminated = &c["state"]["terminated"];
            if waiting.is_object() && !s(&waiting["reason"]).is_empty() {
                reason = s(&waiting["reason"]).to_string();
            } else if terminated.is_object() {
                reason = terminated_reason(terminated, "");
            } else if boolean(&c["ready"]) && c["state"]["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        // Back to Running if a container still runs after another completed.
        if reason == "Completed" && has_running {
            reason = if pod_ready(status) {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if deleting(pod) && s(&status["reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting(pod) && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let pod_ip = list(&status["podIPs"])
        .first()
        .map(|ip| s(&ip["ip"]))
        .unwrap_or_else(|| s(&status["podIP"]));
    let none = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };
    let gates = list(&spec["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                list(&status["conditions"])
                    .iter()
                    .find(|c| s(&c["type"]) == s(&g["conditionType"]))
                    .is_some_and(|c| s(&c["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    let mut row = Row::new(vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(pod, now),
        none(pod_ip).into(),
        none(s(&spec["nodeName"])).into(),
        none(s(&status["nominatedNodeName"])).into(),
        readiness_gates.into(),
    ]);
    match phase {
        "Succeeded" => {
            row.conditions = vec![json!({
                "type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            })]
        }
        "Failed" => {
            row.conditions = vec![json!({
                "type": "Completed", "status": "True", "reason": "Failed",
                "message": "The pod failed.",
            })]
        }
        _ => {}
    }
    row
}

/// `hasPodReadyCondition`: any `Ready` condition that is true.
fn pod_ready(status: &Value) -> bool {
    list(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "Ready" && s(&c["status"]) == "True")
}
