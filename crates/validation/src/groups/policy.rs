//! policy/v1 PodDisruptionBudget: minAvailable/maxUnavailable, selector and the unhealthy
//! pod eviction policy; status counters.

use k8s_openapi::api::policy::v1 as policy;

use super::{not_more_than_100_percent, validate_positive_int_or_percent};
use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def, no_default};
use crate::meta::{self, Errs};
use crate::names::name_is_dns_subdomain;
use crate::path::Path;

fn validate_pdb(pdb: &policy::PodDisruptionBudget, errs: &mut Errs) {
    let spec = pdb.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid(
            &sp,
            BadValue::Raw("policy.PodDisruptionBudgetSpec{...}".into()),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (v, f) in [
        (&spec.min_available, "minAvailable"),
        (&spec.max_unavailable, "maxUnavailable"),
    ] {
        if let Some(v) = v {
            validate_positive_int_or_percent(v, &sp.child(f), errs);
            not_more_than_100_percent(v, &sp.child(f), errs);
        }
    }
    if let Some(sel) = &spec.selector {
        meta::validate_label_selector(sel, &sp.child("selector"), errs);
    }
    if let Some(p) = spec.unhealthy_pod_eviction_policy.as_deref() {
        let supported = ["AlwaysAllow", "IfHealthyBudget"];
        if !supported.contains(&p) {
            errs.push(FieldError::not_supported(
                &sp.child("unhealthyPodEvictionPolicy"),
                p,
                &supported,
            ));
        }
    }
}

fn validate_pdb_update(
    n: &policy::PodDisruptionBudget,
    _o: &policy::PodDisruptionBudget,
    errs: &mut Errs,
) {
    validate_pdb(n, errs);
}

fn validate_pdb_status(
    n: &policy::PodDisruptionBudget,
    _o: &policy::PodDisruptionBudget,
    errs: &mut Errs,
) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (st.disruptions_allowed, "disruptionsAllowed"),
        (st.current_healthy, "currentHealthy"),
        (st.desired_healthy, "desiredHealthy"),
        (st.expected_pods, "expectedPods"),
    ] {
        meta::nonnegative(v.into(), &p.child(f), errs);
    }
}

pub(crate) static POD_DISRUPTION_BUDGET: Def<policy::PodDisruptionBudget> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    validate_pdb,
    validate_pdb_update,
    validate_pdb_status,
);
