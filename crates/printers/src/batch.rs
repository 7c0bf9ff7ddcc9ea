//! `batch` printers: jobs (`STATUS COMPLETIONS DURATION AGE`) and cron jobs.

use serde_json::Value;

use crate::cells::{age, deleting, int, len, list, name, opt_int, opt_s, s};
use crate::describe::{self, AGE, CONTAINERS, IMAGES, NAME, col, wide};
use crate::duration::{human_duration, since, timestamp};
use crate::format::{bool_ptr, containers, format_label_selector};
use crate::{Column, Row};

pub static JOB: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", describe::JOB_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::JOB_SELECTOR),
];

/// Whether the first condition of a type is true.
fn condition(status: &Value, ty: &str) -> bool {
    list(&status["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == ty)
        .is_some_and(|c| s(&c["status"]) == "True")
}

pub fn job(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let status = &obj["status"];
    let succeeded = int(&status["succeeded"]);
    let completions = match opt_int(&spec["completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = opt_int(&spec["parallelism"]).unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        timestamp(&status["startTime"]),
        timestamp(&status["completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let state = if condition(status, "Complete") {
        "Complete"
    } else if condition(status, "Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if condition(status, "Suspended") {
        "Suspended"
    } else if condition(status, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(&spec["template"]["spec"]["containers"]);
    Row::new(vec![
        name(obj).into(),
        state.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        names.into(),
        images.into(),
        format_label_selector(&spec["selector"]).into(),
    ])
}

pub static CRON_JOB: &[Column] = &[
    NAME,
    col("Schedule", "string", describe::CJ_SCHEDULE),
    col("Timezone", "string", describe::CJ_TIMEZONE),
    col("Suspend", "boolean", describe::CJ_SUSPEND),
    col("Active", "integer", describe::CJ_ACTIVE),
    col("Last Schedule", "string", describe::CJ_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", describe::JOB_SELECTOR),
];

pub fn cron_job(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let last = &obj["status"]["lastScheduleTime"];
    let last = if last.is_null() {
        "<none>".to_string()
    } else {
        since(last, now)
    };
    // `suspend` defaults to false.
    let suspend = if spec["suspend"].is_null() {
        "False".to_string()
    } else {
        bool_ptr(&spec["suspend"])
    };
    let job_spec = &spec["jobTemplate"]["spec"];
    let (names, images) = containers(&job_spec["template"]["spec"]["containers"]);
    Row::new(vec![
        name(obj).into(),
        s(&spec["schedule"]).into(),
        opt_s(&spec["timeZone"]).unwrap_or("<none>").into(),
        suspend.into(),
        len(&obj["status"]["active"]).into(),
        last.into(),
        age(obj, now),
        names.into(),
        images.into(),
        format_label_selector(&job_spec["selector"]).into(),
    ])
}
