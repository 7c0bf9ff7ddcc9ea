//! coordination.k8s.io/v1 Lease: duration, transitions, strategy and preferred holder.

use k8s_openapi::api::coordination::v1 as coordination;

use super::s;
use crate::error::FieldError;
use crate::kinds::{Def, def, no_default, no_update_checks};
use crate::meta::Errs;
use crate::names::name_is_dns_subdomain;
use crate::path::Path;

fn validate_lease(l: &coordination::Lease, errs: &mut Errs) {
    let Some(spec) = &l.spec else { return };
    let sp = Path::new("spec");
    if let Some(d) = spec.lease_duration_seconds
        && d <= 0
    {
        errs.push(FieldError::invalid(
            &sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions
        && t < 0
    {
        errs.push(FieldError::invalid(
            &sp.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(st) = spec.strategy.as_deref()
        && st != "OldestEmulationVersion"
    {
        errs.push(FieldError::not_supported(
            &sp.child("strategy"),
            st,
            &["OldestEmulationVersion"],
        ));
    }
    if !s(&spec.preferred_holder).is_empty() && s(&spec.strategy).is_empty() {
        errs.push(FieldError::forbidden(
            &sp.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
}

fn validate_lease_update(n: &coordination::Lease, _o: &coordination::Lease, errs: &mut Errs) {
    validate_lease(n, errs);
}

pub(crate) static LEASE: Def<coordination::Lease> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    validate_lease,
    validate_lease_update,
    no_update_checks,
);
