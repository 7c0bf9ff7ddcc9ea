//! The remaining printers: pod disruption budgets, leases, priority classes, runtime
//! classes, certificate signing requests and admission webhook configurations.

use serde_json::Value;

use crate::cells::{age, boolean, int, len, list, name, opt_int, opt_s, s};
use crate::describe::{self, AGE, NAME, col};
use crate::duration::human_duration;
use crate::format::int_or_string;
use crate::{Column, Row};

pub static PDB: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

pub fn pdb(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let or_na = |v: &Value| {
        if v.is_null() {
            "N/A".to_string()
        } else {
            int_or_string(v)
        }
    };
    Row::new(vec![
        name(obj).into(),
        or_na(&spec["minAvailable"]).into(),
        or_na(&spec["maxUnavailable"]).into(),
        int(&obj["status"]["disruptionsAllowed"]).into(),
        age(obj, now),
    ])
}

pub static LEASE: &[Column] = &[NAME, col("Holder", "string", describe::LEASE_HOLDER), AGE];

pub fn lease(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        s(&obj["spec"]["holderIdentity"]).into(),
        age(obj, now),
    ])
}

pub static PRIORITY_CLASS: &[Column] = &[
    NAME,
    col("Value", "integer", describe::PC_VALUE),
    col("Global-Default", "boolean", describe::PC_GLOBAL_DEFAULT),
    AGE,
    col("PreemptionPolicy", "string", describe::PC_PREEMPTION),
];

pub fn priority_class(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        int(&obj["value"]).into(),
        boolean(&obj["globalDefault"]).into(),
        age(obj, now),
        // Defaults to PreemptLowerPriority.
        opt_s(&obj["preemptionPolicy"])
            .unwrap_or("PreemptLowerPriority")
            .into(),
    ])
}

pub static RUNTIME_CLASS: &[Column] = &[
    NAME,
    // Upstream looks this description up in ObjectMeta's documentation, which has none.
    col("Handler", "string", ""),
    AGE,
];

pub fn runtime_class(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        s(&obj["handler"]).into(),
        age(obj, now),
    ])
}

pub static CSR: &[Column] = &[
    NAME,
    AGE,
    col("SignerName", "string", describe::CSR_SIGNER),
    col("Requestor", "string", describe::CSR_REQUEST),
    col("RequestedDuration", "string", describe::CSR_EXPIRATION),
    col("Condition", "string", describe::CSR_CONDITIONS),
];

/// `Approved`, `Denied` or `Pending`, then `,Failed` and `,Issued` when they apply.
fn csr_status(obj: &Value) -> String {
    let status = &obj["status"];
    let has = |ty: &str| {
        list(&status["conditions"])
            .iter()
            .any(|c| s(&c["type"]) == ty)
    };
    let mut out = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        out.push_str(",Failed");
    }
    if !s(&status["certificate"]).is_empty() {
        out.push_str(",Issued");
    }
    out
}

pub fn csr(obj: &Value, now: i64) -> Row {
    let spec = &obj["spec"];
    let signer = match s(&spec["signerName"]) {
        "" => "<none>",
        n => n,
    };
    let duration = match opt_int(&spec["expirationSeconds"]) {
        Some(secs) => human_duration(secs),
        None => "<none>".into(),
    };
    Row::new(vec![
        name(obj).into(),
        age(obj, now),
        signer.into(),
        s(&spec["username"]).into(),
        duration.into(),
        csr_status(obj).into(),
    ])
}

const WEBHOOKS: Column = col(
    "Webhooks",
    "integer",
    "Webhooks indicates the number of webhooks registered in this configuration",
);

pub static MUTATING_WEBHOOK: &[Column] = &[NAME, WEBHOOKS, AGE];
pub static VALIDATING_WEBHOOK: &[Column] = &[NAME, WEBHOOKS, AGE];

pub fn webhook_configuration(obj: &Value, now: i64) -> Row {
    Row::new(vec![
        name(obj).into(),
        len(&obj["webhooks"]).into(),
        age(obj, now),
    ])
}
