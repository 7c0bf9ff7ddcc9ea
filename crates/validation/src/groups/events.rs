//! events.k8s.io/v1 Event: the strict rules upstream applies to events created through
//! this API (reporting controller and instance, action, reason, note length, event time,
//! type, series, no deprecated fields) and the immutable fields on update.

use k8s_openapi::api::events::v1 as events;

use super::{push_msgs, s};
use crate::error::{BadValue, FieldError};
use crate::kinds::{Def, def, no_default, no_update_checks};
use crate::meta::Errs;
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

fn validate_event(ev: &events::Event, errs: &mut Errs) {
    let ns = s(&ev.metadata.namespace).to_string();
    let inv_ns = ev
        .regarding
        .as_ref()
        .map(|r| s(&r.namespace).to_string())
        .unwrap_or_default();
    let inp = Path::new("involvedObject").child("namespace");
    if inv_ns.is_empty() && ns != "default" && ns != "kube-system" {
        errs.push(FieldError::invalid(
            &inp,
            inv_ns.as_str(),
            "does not match event.namespace",
        ));
    }
    let rc = s(&ev.reporting_controller);
    let rcp = Path::new("reportingController");
    if rc.is_empty() {
        errs.push(FieldError::required(&rcp, ""));
    }
    push_msgs(names::is_qualified_name(rc), &rcp, rc, errs);
    for (v, f, limit) in [
        (s(&ev.reporting_instance), "reportingInstance", 128),
        (s(&ev.action), "action", 128),
        (s(&ev.reason), "reason", 128),
    ] {
        if v.is_empty() {
            errs.push(FieldError::required(&Path::new(f), ""));
        }
        if v.len() > limit {
            errs.push(FieldError::invalid(
                &Path::new(f),
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    if s(&ev.note).len() > 1024 {
        errs.push(FieldError::invalid(
            &Path::new("message"),
            "",
            "can have at most 1024 characters",
        ));
    }
    push_msgs(
        names::is_dns1123_subdomain(&ns),
        &Path::new("namespace"),
        ns.clone(),
        errs,
    );
    if let Some(series) = &ev.series
        && series.count < 2
    {
        errs.push(FieldError::invalid(
            &Path::new("series.count"),
            "",
            "should be at least 2",
        ));
    }
    let ty = s(&ev.type_);
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    if ev.deprecated_first_timestamp.is_some() {
        errs.push(FieldError::invalid(
            &Path::new("deprecatedFirstTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if ev.deprecated_last_timestamp.is_some() {
        errs.push(FieldError::invalid(
            &Path::new("deprecatedLastTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if ev.deprecated_count.unwrap_or(0) != 0 {
        errs.push(FieldError::invalid(
            &Path::new("deprecatedCount"),
            "",
            "needs to be unset",
        ));
    }
    if ev
        .deprecated_source
        .as_ref()
        .is_some_and(|src| !s(&src.component).is_empty() || !s(&src.host).is_empty())
    {
        errs.push(FieldError::invalid(
            &Path::new("deprecatedSource"),
            "",
            "needs to be unset",
        ));
    }
}

fn validate_event_update(n: &events::Event, o: &events::Event, errs: &mut Errs) {
    validate_event(n, errs);
    let raw = |v: &str| BadValue::Raw(v.to_string());
    if n.regarding != o.regarding {
        errs.push(FieldError::invalid(
            &Path::new("involvedObject"),
            raw("core.ObjectReference{...}"),
            crate::meta::IMMUTABLE,
        ));
    }
    for (a, b, f) in [
        (&n.reason, &o.reason, "reason"),
        (&n.note, &o.note, "message"),
        (&n.type_, &o.type_, "type"),
        (&n.action, &o.action, "action"),
        (
            &n.reporting_controller,
            &o.reporting_controller,
            "reportingController",
        ),
        (
            &n.reporting_instance,
            &o.reporting_instance,
            "reportingInstance",
        ),
    ] {
        if a != b {
            errs.push(FieldError::invalid(
                &Path::new(f),
                s(a),
                crate::meta::IMMUTABLE,
            ));
        }
    }
    if n.related != o.related {
        errs.push(FieldError::invalid(
            &Path::new("related"),
            raw("&core.ObjectReference{...}"),
            crate::meta::IMMUTABLE,
        ));
    }
    if n.event_time != o.event_time {
        errs.push(FieldError::invalid(
            &Path::new("eventTime"),
            raw("v1.MicroTime{...}"),
            crate::meta::IMMUTABLE,
        ));
    }
}

pub(crate) static EVENT: Def<events::Event> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    validate_event,
    validate_event_update,
    no_update_checks,
);
