//! Validation shared by every kind: ObjectMeta on create and update (names per kind,
//! generateName, namespace presence, labels, annotations and their size limit,
//! finalizers, ownerReferences, managedFields), label selectors, and the small numeric and
//! immutability checks upstream uses everywhere.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::error::{FieldError, go_quote, go_string_map, go_string_slice_text};
use crate::names::{self, NameFn};
use crate::path::Path;

/// Upstream's limit on the total size of an object's annotations (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Errors accumulated by a validation.
pub type Errs = Vec<FieldError>;

pub(crate) const NEGATIVE: &str = "must be greater than or equal to 0";
pub(crate) const IMMUTABLE: &str = "field is immutable";

/// `ValidateNonnegativeField`.
pub fn nonnegative(v: i64, path: &Path, errs: &mut Errs) {
    if v < 0 {
        errs.push(FieldError::invalid(path, v, NEGATIVE));
    }
}

/// `ValidatePositiveField`-style check: `must be greater than 0`.
pub fn positive(v: i64, path: &Path, errs: &mut Errs) {
    if v <= 0 {
        errs.push(FieldError::invalid(path, v, "must be greater than 0"));
    }
}

/// `ValidateImmutableField` for values whose bad value prints as given.
pub fn immutable<T: PartialEq>(
    new: &T,
    old: &T,
    bad: impl Into<crate::error::BadValue>,
    path: &Path,
    errs: &mut Errs,
) {
    if new != old {
        errs.push(FieldError::invalid(path, bad, IMMUTABLE));
    }
}

/// `ValidateLabelName`.
pub fn validate_label_name(key: &str, path: &Path, errs: &mut Errs) {
    for m in names::is_qualified_name(key) {
        errs.push(FieldError::invalid(path, key, m));
    }
}

/// `ValidateLabels`.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path, errs: &mut Errs) {
    for (k, v) in labels.into_iter().flatten() {
        validate_label_name(k, path, errs);
        for m in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, m));
        }
    }
}

/// `ValidateAnnotations`: qualified keys and the 256 KiB total.
pub fn validate_annotations(ann: Option<&BTreeMap<String, String>>, path: &Path, errs: &mut Errs) {
    let mut total = 0usize;
    for (k, v) in ann.into_iter().flatten() {
        for m in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// `ValidateFinalizers` with core's check that unqualified names be standard ones.
pub fn validate_finalizers(finalizers: Option<&Vec<String>>, path: &Path, errs: &mut Errs) {
    let Some(fs) = finalizers else { return };
    for f in fs {
        let before = errs.len();
        for m in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f, m));
        }
        if errs.len() == before && !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    let has_orphan = fs.iter().any(|f| f == "orphan");
    let has_fg = fs.iter().any(|f| f == "foregroundDeletion");
    if has_orphan && has_fg {
        errs.push(FieldError::invalid(
            path,
            crate::error::BadValue::Raw(go_string_slice_text(fs)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

fn owner_ref_text(r: &OwnerReference) -> String {
    let b = |v: Option<bool>| match v {
        Some(v) => format!("(*bool)({v})"),
        None => "(*bool)(nil)".to_string(),
    };
    format!(
        "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
        go_quote(&r.api_version),
        go_quote(&r.kind),
        go_quote(&r.name),
        go_quote(&r.uid),
        b(r.controller),
        b(r.block_owner_deletion)
    )
}

/// `ValidateOwnerReferences`.
pub fn validate_owner_references(refs: Option<&Vec<OwnerReference>>, path: &Path, errs: &mut Errs) {
    let Some(refs) = refs else { return };
    let mut controllers = Vec::new();
    let mut seen_uids = BTreeSet::new();
    for r in refs {
        let (group, version) = match r.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", r.api_version.as_str()),
        };
        if r.api_version.matches('/').count() > 1 {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                &r.api_version,
                format!("unexpected GroupVersion string: {}", r.api_version),
            ));
        } else if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                &r.kind,
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                &r.name,
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                &r.uid,
                "uid must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                crate::error::BadValue::Raw(owner_ref_text(r)),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            controllers.push(format!("{}/{}", r.kind, r.name));
        }
        seen_uids.insert(r.uid.clone());
    }
    if controllers.len() > 1 {
        let refs_text: Vec<String> = refs.iter().map(owner_ref_text).collect();
        errs.push(FieldError::invalid(
            path,
            crate::error::BadValue::Raw(format!("[]v1.OwnerReference{{{}}}", refs_text.join(", "))),
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
}

/// `ValidateManagedFields`.
fn validate_managed_fields(meta: &ObjectMeta, path: &Path, errs: &mut Errs) {
    for (i, mf) in meta.managed_fields.iter().flatten().enumerate() {
        let p = path.index(i);
        match mf.operation.as_deref() {
            Some("Apply") | Some("Update") => {}
            other => errs.push(FieldError::invalid(
                &p.child("operation"),
                other.unwrap_or(""),
                "must be `Apply` or `Update`",
            )),
        }
        if let Some(ft) = mf.fields_type.as_deref()
            && !ft.is_empty()
            && ft != "FieldsV1"
        {
            errs.push(FieldError::invalid(
                &p.child("fieldsType"),
                ft,
                "must be `FieldsV1`",
            ));
        }
        if let Some(m) = mf.manager.as_deref()
            && m.len() > 128
        {
            errs.push(FieldError::too_long(&p.child("manager"), "", 128));
        }
        if let Some(s) = mf.subresource.as_deref()
            && s.len() > 256
        {
            errs.push(FieldError::too_long(&p.child("subresource"), s, 256));
        }
    }
}

/// `ValidateObjectMeta`: run on create (and on update through the kind's own checks).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    name_fn: NameFn,
    path: &Path,
    errs: &mut Errs,
) {
    let gen_name = meta.generate_name.as_deref().unwrap_or("");
    if !gen_name.is_empty() {
        for m in name_fn(gen_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                gen_name,
                m,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for m in name_fn(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, m));
        }
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for m in names::name_is_dns_label(ns, false) {
                errs.push(FieldError::invalid(&path.child("namespace"), ns, m));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    nonnegative(
        meta.generation.unwrap_or(0),
        &path.child("generation"),
        errs,
    );
    validate_common_meta(meta, path, errs);
    validate_finalizers(meta.finalizers.as_ref(), &path.child("finalizers"), errs);
}

fn validate_common_meta(meta: &ObjectMeta, path: &Path, errs: &mut Errs) {
    validate_labels(meta.labels.as_ref(), &path.child("labels"), errs);
    validate_annotations(meta.annotations.as_ref(), &path.child("annotations"), errs);
    validate_owner_references(
        meta.owner_references.as_ref(),
        &path.child("ownerReferences"),
        errs,
    );
    validate_managed_fields(meta, &path.child("managedFields"), errs);
}

fn time_text(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    match t {
        Some(t) => format!(
            "\"{}\"",
            k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%d %H:%M:%S +0000 UTC", t.0)
                .unwrap_or_default()
        ),
        None => "\"0001-01-01 00:00:00 +0000 UTC\"".to_string(),
    }
}

/// `ValidateObjectMetaUpdate`.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &Path,
    errs: &mut Errs,
) {
    use crate::error::BadValue;
    if old.deletion_timestamp.is_some() {
        let old_f: BTreeSet<&String> = old.finalizers.iter().flatten().collect();
        for f in new.finalizers.iter().flatten() {
            if !old_f.contains(f) {
                errs.push(FieldError::forbidden(
                    &path.child("finalizers"),
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {}", go_string_slice_text(std::slice::from_ref(f))),
                ));
            }
        }
    }
    if new.resource_version.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (ng, og) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if ng < og {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            ng,
            "must not be decremented",
        ));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    immutable(
        &s(&new.name),
        &s(&old.name),
        s(&new.name),
        &path.child("name"),
        errs,
    );
    immutable(
        &s(&new.namespace),
        &s(&old.namespace),
        s(&new.namespace),
        &path.child("namespace"),
        errs,
    );
    immutable(
        &s(&new.uid),
        &s(&old.uid),
        s(&new.uid),
        &path.child("uid"),
        errs,
    );
    if new.creation_timestamp != old.creation_timestamp {
        errs.push(FieldError::invalid(
            &path.child("creationTimestamp"),
            BadValue::Raw(time_text(new.creation_timestamp.as_ref())),
            IMMUTABLE,
        ));
    }
    if new.deletion_timestamp != old.deletion_timestamp {
        let bad = match &new.deletion_timestamp {
            Some(t) => BadValue::Raw(time_text(Some(t))),
            None => BadValue::Null,
        };
        errs.push(FieldError::invalid(
            &path.child("deletionTimestamp"),
            bad,
            IMMUTABLE,
        ));
    }
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        errs.push(FieldError::invalid(
            &path.child("deletionGracePeriodSeconds"),
            new.deletion_grace_period_seconds,
            IMMUTABLE,
        ));
    }
    validate_common_meta(new, path, errs);
    // Upstream re-validates finalizer names on update too.
    validate_finalizers(new.finalizers.as_ref(), &path.child("finalizers"), errs);
}

/// `ValidateLabelSelector` (metav1), strict about label values.
pub fn validate_label_selector(sel: &LabelSelector, path: &Path, errs: &mut Errs) {
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        validate_label_name(&req.key, &p.child("key"), errs);
        for (j, v) in values.iter().enumerate() {
            for m in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(&p.child("values").index(j), v, m));
            }
        }
    }
    validate_labels(sel.match_labels.as_ref(), &path.child("matchLabels"), errs);
}

/// Whether a metav1 label selector matches a label set (a nil selector matches nothing,
/// an empty one everything).
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for req in sel.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or(&[]);
        let got = labels.get(&req.key);
        let ok = match req.operator.as_str() {
            "In" => got.is_some_and(|g| values.contains(g)),
            "NotIn" => got.is_none_or(|g| !values.contains(g)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// True if a selector has no requirements.
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// Go's `%#v` of a `v1.LabelSelector` (after upstream's dereference of the pointer).
pub fn label_selector_text(sel: &LabelSelector) -> String {
    let ml = match go_string_map(sel.match_labels.as_ref()) {
        crate::error::BadValue::Raw(s) => s,
        _ => String::new(),
    };
    let me = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(reqs) => {
            let items: Vec<String> = reqs
                .iter()
                .map(|r| {
                    let vals = match &r.values {
                        None => "[]string(nil)".to_string(),
                        Some(v) => go_string_slice_text(v),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator),
                        vals
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}")
}

/// Checks a map of `key → value` label-style pairs where only keys are qualified names
/// (e.g. node selectors).
pub fn validate_qualified_keys(m: Option<&BTreeMap<String, String>>, path: &Path, errs: &mut Errs) {
    for k in m.into_iter().flatten().map(|(k, _)| k) {
        validate_label_name(k, path, errs);
    }
}

/// Empty-string helper: upstream treats `""` and absent alike for plain string fields.
pub fn opt_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn object_meta_messages() {
        let mut errs = Vec::new();
        let meta = ObjectMeta {
            name: Some("Bad_Name".into()),
            labels: Some([("a b".to_string(), "x".to_string())].into()),
            ..Default::default()
        };
        validate_object_meta(
            &meta,
            true,
            names::name_is_dns_subdomain,
            &Path::new("metadata"),
            &mut errs,
        );
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with(
                "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
            ),
            "{msgs:?}"
        );
        assert_eq!(msgs[1], "metadata.namespace: Required value");
        assert!(
            msgs[2].starts_with("metadata.labels: Invalid value: \"a b\": name part must consist")
        );
    }

    #[test]
    fn annotation_limit() {
        let mut errs = Vec::new();
        let big: BTreeMap<String, String> =
            [("a".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))].into();
        validate_annotations(
            Some(&big),
            &Path::new("metadata").child("annotations"),
            &mut errs,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn selectors() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into()]),
            }]),
        };
        let l: BTreeMap<String, String> =
            [("app".into(), "web".into()), ("tier".into(), "a".into())].into();
        assert!(selector_matches(&sel, Some(&l)));
        assert!(!selector_matches(&sel, None));
        let mut errs = Vec::new();
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Foo".into(),
                values: None,
            }]),
            ..Default::default()
        };
        validate_label_selector(&bad, &Path::new("spec").child("selector"), &mut errs);
        assert_eq!(
            errs[0].to_string(),
            "spec.selector.matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"
        );
        assert_eq!(
            label_selector_text(&LabelSelector {
                match_labels: Some([("app".to_string(), "nginx".to_string())].into()),
                match_expressions: None
            }),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"nginx\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }
}
