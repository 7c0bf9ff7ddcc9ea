//! Defaulting and validation per API group, and small helpers they share.

pub(crate) mod admissionregistration;
pub(crate) mod apiextensions;
pub(crate) mod apps;
pub(crate) mod autoscaling;
pub(crate) mod batch;
pub(crate) mod certificates;
pub(crate) mod coordination;
pub(crate) mod core;
pub(crate) mod discovery;
pub(crate) mod events;
pub(crate) mod networking;
pub(crate) mod node;
pub(crate) mod policy;
pub(crate) mod rbac;
pub(crate) mod scheduling;
pub(crate) mod storage;

use crate::error::{BadValue, FieldError};
use crate::meta::Errs;
use crate::path::Path;

/// Sets a plain string field (where upstream treats `""` as unset) to `v` if unset.
pub(crate) fn default_str(f: &mut Option<String>, v: &str) {
    if f.as_deref().unwrap_or("").is_empty() {
        *f = Some(v.to_string());
    }
}

/// Sets an optional field to `v` if unset.
pub(crate) fn default_opt<T>(f: &mut Option<T>, v: T) {
    if f.is_none() {
        *f = Some(v);
    }
}

/// A plain string field's value (`""` when unset).
pub(crate) fn s(f: &Option<String>) -> &str {
    f.as_deref().unwrap_or("")
}

/// Checks a required enum-like string field: `Required` when empty, `NotSupported` when
/// not one of `supported`.
pub(crate) fn required_enum(value: &str, supported: &[&str], path: &Path, errs: &mut Errs) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !supported.contains(&value) {
        errs.push(FieldError::not_supported(path, value, supported));
    }
}

/// Checks an optional enum-like string field (only when set).
pub(crate) fn optional_enum(value: Option<&str>, supported: &[&str], path: &Path, errs: &mut Errs) {
    if let Some(v) = value
        && !supported.contains(&v)
    {
        errs.push(FieldError::not_supported(path, v, supported));
    }
}

/// `Invalid` for each message.
pub(crate) fn push_msgs(
    msgs: Vec<String>,
    path: &Path,
    value: impl Into<BadValue> + Clone,
    errs: &mut Errs,
) {
    for m in msgs {
        errs.push(FieldError::invalid(path, value.clone(), m));
    }
}

/// `ValidateDNS1123Label` on a field.
pub(crate) fn dns_label(value: &str, path: &Path, errs: &mut Errs) {
    push_msgs(crate::names::is_dns1123_label(value), path, value, errs);
}

/// `ValidateDNS1123Subdomain` on a field.
pub(crate) fn dns_subdomain(value: &str, path: &Path, errs: &mut Errs) {
    push_msgs(crate::names::is_dns1123_subdomain(value), path, value, errs);
}

/// Go's printing of an `intstr.IntOrString` through its `String()` method.
pub(crate) fn int_or_string_value(
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> BadValue {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(i) => BadValue::Raw(i.to_string()),
        IntOrString::String(s) => BadValue::Raw(s.clone()),
    }
}

fn percent_value(s: &str) -> Option<i64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn validate_positive_int_or_percent(
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    path: &Path,
    errs: &mut Errs,
) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::String(st) => {
            if percent_value(st).is_none() {
                errs.push(FieldError::invalid(
                    path,
                    int_or_string_value(v),
                    crate::names::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                ));
            }
        }
        IntOrString::Int(i) => crate::meta::nonnegative((*i).into(), path, errs),
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    path: &Path,
    errs: &mut Errs,
) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    if let IntOrString::String(st) = v
        && let Some(p) = percent_value(st)
        && p > 100
    {
        errs.push(FieldError::invalid(
            path,
            p,
            "must not be greater than 100%",
        ));
    }
}

/// `getIntOrPercentValue`: the number of an int, or of a well-formed percent.
pub(crate) fn int_or_percent_value(
    v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> i64 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(i) => (*i).into(),
        IntOrString::String(st) => percent_value(st).unwrap_or(0),
    }
}
