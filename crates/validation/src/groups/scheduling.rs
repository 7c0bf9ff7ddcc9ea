//! scheduling.k8s.io/v1 PriorityClass: the reserved `system-` names, the highest
//! user-definable value, preemption policy, and the immutable value and policy.

use k8s_openapi::api::scheduling::v1 as sched;

use super::default_opt;
use crate::error::FieldError;
use crate::kinds::{Def, def, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::name_is_dns_subdomain;
use crate::path::Path;

/// The largest value a user-defined priority class may have.
pub(crate) const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;

fn default_pc(pc: &mut sched::PriorityClass) {
    default_opt(
        &mut pc.preemption_policy,
        "PreemptLowerPriority".to_string(),
    );
}

fn known_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    let known = [
        ("system-node-critical", 2_000_001_000),
        ("system-cluster-critical", 2_000_000_000),
    ];
    match known.iter().find(|(n, _)| *n == name) {
        Some((_, v)) if *v != value => Err(format!("value of {name} PriorityClass must be {v}")),
        Some(_) if global_default => Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        )),
        Some(_) => Ok(()),
        None => Err(format!("{name} is not a known system priority class")),
    }
}

fn validate_pc(pc: &sched::PriorityClass, errs: &mut Errs) {
    let name = pc.metadata.name.clone().unwrap_or_default();
    if name.starts_with("system-") {
        if let Err(e) = known_system_class(&name, pc.value, pc.global_default.unwrap_or(false)) {
            errs.push(FieldError::forbidden(
                &Path::new("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    super::optional_enum(
        pc.preemption_policy.as_deref(),
        &["PreemptLowerPriority", "Never"],
        &Path::new("preemptionPolicy"),
        errs,
    );
}

fn validate_pc_update(n: &sched::PriorityClass, o: &sched::PriorityClass, errs: &mut Errs) {
    if n.value != o.value {
        errs.push(FieldError::forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    if n.preemption_policy != o.preemption_policy {
        errs.push(FieldError::invalid(
            &Path::new("preemptionPolicy"),
            n.preemption_policy.clone(),
            meta::IMMUTABLE,
        ));
    }
}

pub(crate) static PRIORITY_CLASS: Def<sched::PriorityClass> = def(
    false,
    name_is_dns_subdomain,
    default_pc,
    validate_pc,
    validate_pc_update,
    no_update_checks,
);
