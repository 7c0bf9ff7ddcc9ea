//! admissionregistration.k8s.io/v1 Validating- and MutatingWebhookConfigurations: webhook
//! names, rules, policies, side effects, timeouts, selectors, client configs (URL or
//! service), admission review versions, and the v1 defaults.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1 as adm;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{default_opt, push_msgs};
use crate::error::{FieldError, go_string_slice};
use crate::kinds::{Def, def, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, name_is_dns_subdomain};
use crate::path::Path;

fn default_rules(rules: &mut Option<Vec<adm::RuleWithOperations>>) {
    for r in rules.iter_mut().flatten() {
        default_opt(&mut r.scope, "*".to_string());
    }
}

fn default_client_config(cc: &mut adm::WebhookClientConfig) {
    if let Some(s) = &mut cc.service {
        default_opt(&mut s.port, 443);
    }
}

fn default_vwc(c: &mut adm::ValidatingWebhookConfiguration) {
    for w in c.webhooks.iter_mut().flatten() {
        default_opt(&mut w.failure_policy, "Fail".to_string());
        default_opt(&mut w.match_policy, "Equivalent".to_string());
        default_opt(&mut w.namespace_selector, LabelSelector::default());
        default_opt(&mut w.object_selector, LabelSelector::default());
        default_opt(&mut w.timeout_seconds, 10);
        default_rules(&mut w.rules);
        default_client_config(&mut w.client_config);
    }
}

fn default_mwc(c: &mut adm::MutatingWebhookConfiguration) {
    for w in c.webhooks.iter_mut().flatten() {
        default_opt(&mut w.failure_policy, "Fail".to_string());
        default_opt(&mut w.match_policy, "Equivalent".to_string());
        default_opt(&mut w.namespace_selector, LabelSelector::default());
        default_opt(&mut w.object_selector, LabelSelector::default());
        default_opt(&mut w.timeout_seconds, 10);
        default_opt(&mut w.reinvocation_policy, "Never".to_string());
        default_rules(&mut w.rules);
        default_client_config(&mut w.client_config);
    }
}

/// `IsFullyQualifiedName`.
fn fully_qualified_name(name: &str, path: &Path, errs: &mut Errs) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let n = name.strip_suffix('.').unwrap_or(name);
    let msgs = names::is_dns1123_subdomain(n);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, n, msgs.join(",")));
        return;
    }
    if n.split('.').count() < 3 {
        errs.push(FieldError::invalid(
            path,
            n,
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

fn validate_rule(r: &adm::RuleWithOperations, path: &Path, errs: &mut Errs) {
    let ops = r.operations.as_deref().unwrap_or(&[]);
    let op_path = path.child("operations");
    if ops.is_empty() {
        errs.push(FieldError::required(&op_path, ""));
    }
    if ops.len() > 1 && ops.iter().any(|o| o == "*") {
        errs.push(FieldError::invalid(
            &op_path,
            go_string_slice(Some(ops)),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, o) in ops.iter().enumerate() {
        let supported = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        if !supported.contains(&o.as_str()) {
            errs.push(FieldError::not_supported(&op_path.index(i), o, &supported));
        }
    }
    let groups = r.api_groups.as_deref().unwrap_or(&[]);
    if groups.is_empty() {
        errs.push(FieldError::required(&path.child("apiGroups"), ""));
    }
    if groups.len() > 1 && groups.iter().any(|g| g == "*") {
        errs.push(FieldError::invalid(
            &path.child("apiGroups"),
            go_string_slice(Some(groups)),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = r.api_versions.as_deref().unwrap_or(&[]);
    if versions.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersions"), ""));
    }
    if versions.len() > 1 && versions.iter().any(|g| g == "*") {
        errs.push(FieldError::invalid(
            &path.child("apiVersions"),
            go_string_slice(Some(versions)),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(
                &path.child("apiVersions").index(i),
                "",
            ));
        }
    }
    let resources = r.resources.as_deref().unwrap_or(&[]);
    let rp = path.child("resources");
    if resources.is_empty() {
        errs.push(FieldError::required(&rp, ""));
    }
    let mut seen = BTreeSet::new();
    for (i, res) in resources.iter().enumerate() {
        if res.is_empty() {
            errs.push(FieldError::required(&rp.index(i), ""));
        }
        if !seen.insert(res.as_str()) {
            errs.push(FieldError::duplicate(&rp.index(i), res));
        }
        if res.contains('/') {
            let (main, sub) = res.split_once('/').unwrap_or((res, ""));
            if main.is_empty() || sub.is_empty() {
                errs.push(FieldError::invalid(
                    &rp.index(i),
                    res,
                    "resource and subresource must be non-empty",
                ));
            }
        }
    }
    if resources.len() > 1 && resources.iter().any(|r| r == "*") {
        errs.push(FieldError::invalid(
            &rp,
            go_string_slice(Some(resources)),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    if let Some(sc) = r.scope.as_deref() {
        let supported = ["*", "Cluster", "Namespaced"];
        if !supported.contains(&sc) {
            errs.push(FieldError::not_supported(
                &path.child("scope"),
                sc,
                &supported,
            ));
        }
    }
}

fn validate_url(url: &str, path: &Path, errs: &mut Errs) {
    const FORM: &str = "; desired format: https://host[/path]";
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("", url),
    };
    if scheme != "https" {
        errs.push(FieldError::invalid(
            path,
            scheme,
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let (hostpart, tail) = match rest.find(['/', '?', '#']) {
        Some(i) if !scheme.is_empty() => (&rest[..i], &rest[i..]),
        None if !scheme.is_empty() => (rest, ""),
        _ => ("", rest),
    };
    let (user, host) = match hostpart.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, hostpart),
    };
    if host.is_empty() {
        errs.push(FieldError::invalid(
            path,
            host,
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(u) = user {
        errs.push(FieldError::invalid(
            path,
            u,
            "user information is not permitted in the URL",
        ));
    }
    if let Some((_, frag)) = tail.split_once('#')
        && !frag.is_empty()
    {
        errs.push(FieldError::invalid(
            path,
            frag,
            "fragments are not permitted in the URL",
        ));
    }
    let no_frag = tail.split('#').next().unwrap_or("");
    if let Some((_, q)) = no_frag.split_once('?')
        && !q.is_empty()
    {
        errs.push(FieldError::invalid(
            path,
            q,
            "query parameters are not permitted in the URL",
        ));
    }
}

fn validate_service_ref(s: &adm::ServiceReference, path: &Path, errs: &mut Errs) {
    if s.name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "service name is required",
        ));
    }
    if s.namespace.is_empty() {
        errs.push(FieldError::required(
            &path.child("namespace"),
            "service namespace is required",
        ));
    }
    let port = s.port.unwrap_or(443);
    let msgs = names::is_valid_port_num(port.into());
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("port"),
            port,
            format!("port is not valid: {}", msgs.join(", ")),
        ));
    }
    let Some(p) = s.path.as_deref() else { return };
    if p == "/" || p.is_empty() {
        return;
    }
    let pp = path.child("path");
    if p == "//" {
        errs.push(FieldError::invalid(&pp, p, "segment[0] may not be empty"));
        return;
    }
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(&pp, p, "must start with a '/'"));
    }
    let trimmed = p.trim_start_matches('/').trim_end_matches('/');
    for (i, seg) in trimmed.split('/').enumerate() {
        if seg.is_empty() {
            errs.push(FieldError::invalid(
                &pp,
                p,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for m in names::is_dns1123_subdomain(seg) {
            errs.push(FieldError::invalid(&pp, p, format!("segment[{i}]: {m}")));
        }
    }
}

struct Hook<'a> {
    name: &'a str,
    rules: Option<&'a Vec<adm::RuleWithOperations>>,
    failure_policy: Option<&'a str>,
    match_policy: Option<&'a str>,
    side_effects: &'a str,
    timeout: Option<i32>,
    ns_sel: Option<&'a LabelSelector>,
    obj_sel: Option<&'a LabelSelector>,
    cc: &'a adm::WebhookClientConfig,
    versions: &'a [String],
}

fn validate_hook(h: &Hook<'_>, path: &Path, errs: &mut Errs) {
    fully_qualified_name(h.name, &path.child("name"), errs);
    for (i, r) in h.rules.into_iter().flatten().enumerate() {
        validate_rule(r, &path.child("rules").index(i), errs);
    }
    if let Some(f) = h.failure_policy
        && f != "Fail"
        && f != "Ignore"
    {
        errs.push(FieldError::not_supported(
            &path.child("failurePolicy"),
            f,
            &["Fail", "Ignore"],
        ));
    }
    if let Some(m) = h.match_policy
        && m != "Equivalent"
        && m != "Exact"
    {
        errs.push(FieldError::not_supported(
            &path.child("matchPolicy"),
            m,
            &["Equivalent", "Exact"],
        ));
    }
    if h.side_effects.is_empty() {
        errs.push(FieldError::required(
            &path.child("sideEffects"),
            "must specify one of None, NoneOnDryRun",
        ));
    } else if h.side_effects != "None" && h.side_effects != "NoneOnDryRun" {
        errs.push(FieldError::not_supported(
            &path.child("sideEffects"),
            h.side_effects,
            &["None", "NoneOnDryRun"],
        ));
    }
    if let Some(t) = h.timeout
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    if let Some(s) = h.ns_sel {
        meta::validate_label_selector(s, &path.child("namespaceSelector"), errs);
    }
    if let Some(s) = h.obj_sel {
        meta::validate_label_selector(s, &path.child("objectSelector"), errs);
    }
    let ccp = path.child("clientConfig");
    match (&h.cc.url, &h.cc.service) {
        (Some(u), None) => validate_url(u, &ccp.child("url"), errs),
        (None, Some(s)) => validate_service_ref(s, &ccp.child("service"), errs),
        _ => errs.push(FieldError::required(
            &ccp,
            "exactly one of url or service is required",
        )),
    }
}

fn validate_review_versions(versions: &[String], path: &Path, errs: &mut Errs) {
    if versions.is_empty() {
        errs.push(FieldError::required(
            path,
            "must specify one of v1, v1beta1",
        ));
        return;
    }
    let mut seen = BTreeSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(v.as_str()) {
            errs.push(FieldError::invalid(&path.index(i), v, "duplicate version"));
            continue;
        }
        push_msgs(names::is_dns1035_label(v), &path.index(i), v, errs);
        accepted |= v == "v1" || v == "v1beta1";
    }
    if !accepted {
        errs.push(FieldError::invalid(
            path,
            go_string_slice(Some(versions)),
            "must include at least one of v1, v1beta1",
        ));
    }
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>, errs: &mut Errs) {
    let mut seen = BTreeSet::new();
    for (i, n) in names.enumerate() {
        if !n.is_empty() && !seen.insert(n) {
            errs.push(FieldError::duplicate(
                &Path::new("webhooks").index(i).child("name"),
                n,
            ));
        }
    }
}

fn validate_vwc(c: &adm::ValidatingWebhookConfiguration, errs: &mut Errs) {
    for (i, w) in c.webhooks.iter().flatten().enumerate() {
        let p = Path::new("webhooks").index(i);
        let h = Hook {
            name: &w.name,
            rules: w.rules.as_ref(),
            failure_policy: w.failure_policy.as_deref(),
            match_policy: w.match_policy.as_deref(),
            side_effects: &w.side_effects,
            timeout: w.timeout_seconds,
            ns_sel: w.namespace_selector.as_ref(),
            obj_sel: w.object_selector.as_ref(),
            cc: &w.client_config,
            versions: &w.admission_review_versions,
        };
        validate_hook(&h, &p, errs);
        validate_review_versions(h.versions, &p.child("admissionReviewVersions"), errs);
    }
    check_names(c.webhooks.iter().flatten().map(|w| w.name.as_str()), errs);
}

fn validate_mwc(c: &adm::MutatingWebhookConfiguration, errs: &mut Errs) {
    for (i, w) in c.webhooks.iter().flatten().enumerate() {
        let p = Path::new("webhooks").index(i);
        let h = Hook {
            name: &w.name,
            rules: w.rules.as_ref(),
            failure_policy: w.failure_policy.as_deref(),
            match_policy: w.match_policy.as_deref(),
            side_effects: &w.side_effects,
            timeout: w.timeout_seconds,
            ns_sel: w.namespace_selector.as_ref(),
            obj_sel: w.object_selector.as_ref(),
            cc: &w.client_config,
            versions: &w.admission_review_versions,
        };
        validate_hook(&h, &p, errs);
        if let Some(r) = w.reinvocation_policy.as_deref()
            && r != "IfNeeded"
            && r != "Never"
        {
            errs.push(FieldError::not_supported(
                &p.child("reinvocationPolicy"),
                r,
                &["IfNeeded", "Never"],
            ));
        }
        validate_review_versions(h.versions, &p.child("admissionReviewVersions"), errs);
    }
    check_names(c.webhooks.iter().flatten().map(|w| w.name.as_str()), errs);
}

fn validate_vwc_update(
    n: &adm::ValidatingWebhookConfiguration,
    _o: &adm::ValidatingWebhookConfiguration,
    errs: &mut Errs,
) {
    validate_vwc(n, errs);
}

fn validate_mwc_update(
    n: &adm::MutatingWebhookConfiguration,
    _o: &adm::MutatingWebhookConfiguration,
    errs: &mut Errs,
) {
    validate_mwc(n, errs);
}

pub(crate) static VALIDATING_WEBHOOK_CONFIGURATION: Def<adm::ValidatingWebhookConfiguration> = def(
    false,
    name_is_dns_subdomain,
    default_vwc,
    validate_vwc,
    validate_vwc_update,
    no_update_checks,
);

pub(crate) static MUTATING_WEBHOOK_CONFIGURATION: Def<adm::MutatingWebhookConfiguration> = def(
    false,
    name_is_dns_subdomain,
    default_mwc,
    validate_mwc,
    validate_mwc_update,
    no_update_checks,
);
