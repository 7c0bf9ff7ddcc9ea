//! rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding and ClusterRoleBinding —
//! rule shape, aggregation selectors, role references (immutable) and subjects, and the
//! API group defaults of role references and subjects.

use k8s_openapi::api::rbac::v1 as rbac;

use super::push_msgs;
use crate::error::{BadValue, FieldError, go_quote, go_string_slice};
use crate::kinds::{Def, def, no_update_checks};
use crate::meta::{self, Errs};
use crate::names::{self, path_segment_name};
use crate::path::Path;

const GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rules(rules: Option<&Vec<rbac::PolicyRule>>, namespaced: bool, errs: &mut Errs) {
    for (i, r) in rules.into_iter().flatten().enumerate() {
        let rp = Path::new("rules").index(i);
        if r.verbs.is_empty() {
            errs.push(FieldError::required(
                &rp.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = r.non_resource_urls.as_deref().unwrap_or(&[]);
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    &rp.child("nonResourceURLs"),
                    go_string_slice(Some(urls)),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            let any = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|x| !x.is_empty());
            if any(&r.api_groups) || any(&r.resources) || any(&r.resource_names) {
                errs.push(FieldError::invalid(
                    &rp.child("nonResourceURLs"),
                    go_string_slice(Some(urls)),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if r.api_groups.as_ref().is_none_or(|g| g.is_empty()) {
            errs.push(FieldError::required(
                &rp.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if r.resources.as_ref().is_none_or(|g| g.is_empty()) {
            errs.push(FieldError::required(
                &rp.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn validate_role(r: &rbac::Role, errs: &mut Errs) {
    validate_rules(r.rules.as_ref(), true, errs);
}

fn validate_role_update(n: &rbac::Role, _o: &rbac::Role, errs: &mut Errs) {
    validate_role(n, errs);
}

fn validate_cluster_role(r: &rbac::ClusterRole, errs: &mut Errs) {
    validate_rules(r.rules.as_ref(), false, errs);
    if let Some(ar) = &r.aggregation_rule {
        let p = Path::new("aggregationRule").child("clusterRoleSelectors");
        let sels = ar.cluster_role_selectors.as_deref().unwrap_or(&[]);
        if sels.is_empty() {
            errs.push(FieldError::required(
                &p,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, s) in sels.iter().enumerate() {
            meta::validate_label_selector(s, &p.index(i), errs);
        }
    }
}

fn validate_cluster_role_update(n: &rbac::ClusterRole, _o: &rbac::ClusterRole, errs: &mut Errs) {
    validate_cluster_role(n, errs);
}

fn default_ref_and_subjects(
    role_ref: &mut rbac::RoleRef,
    subjects: &mut Option<Vec<rbac::Subject>>,
) {
    if role_ref.api_group.is_empty() {
        role_ref.api_group = GROUP.to_string();
    }
    for s in subjects.iter_mut().flatten() {
        if s.api_group.as_deref().unwrap_or("").is_empty() {
            match s.kind.as_str() {
                "ServiceAccount" => s.api_group = Some(String::new()),
                "User" | "Group" => s.api_group = Some(GROUP.to_string()),
                _ => {}
            }
        }
    }
}

fn default_role_binding(b: &mut rbac::RoleBinding) {
    default_ref_and_subjects(&mut b.role_ref, &mut b.subjects);
}

fn default_cluster_role_binding(b: &mut rbac::ClusterRoleBinding) {
    default_ref_and_subjects(&mut b.role_ref, &mut b.subjects);
}

fn validate_subject(s: &rbac::Subject, namespaced: bool, path: &Path, errs: &mut Errs) {
    if s.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                push_msgs(
                    names::name_is_dns_subdomain(&s.name, false),
                    &path.child("name"),
                    &s.name,
                    errs,
                );
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    group,
                    &[GROUP],
                ));
            }
        }
        k => errs.push(FieldError::not_supported(
            &path.child("kind"),
            k,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

fn validate_binding(
    role_ref: &rbac::RoleRef,
    subjects: Option<&Vec<rbac::Subject>>,
    namespaced: bool,
    errs: &mut Errs,
) {
    let rp = Path::new("roleRef");
    if role_ref.api_group != GROUP {
        errs.push(FieldError::not_supported(
            &rp.child("apiGroup"),
            &role_ref.api_group,
            &[GROUP],
        ));
    }
    if namespaced {
        if role_ref.kind != "Role" && role_ref.kind != "ClusterRole" {
            errs.push(FieldError::not_supported(
                &rp.child("kind"),
                &role_ref.kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if role_ref.kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            &rp.child("kind"),
            &role_ref.kind,
            &["ClusterRole"],
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        push_msgs(
            path_segment_name(&role_ref.name, false),
            &rp.child("name"),
            &role_ref.name,
            errs,
        );
    }
    for (i, s) in subjects.into_iter().flatten().enumerate() {
        validate_subject(s, namespaced, &Path::new("subjects").index(i), errs);
    }
}

fn role_ref_text(r: &rbac::RoleRef) -> BadValue {
    BadValue::Raw(format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        go_quote(&r.api_group),
        go_quote(&r.kind),
        go_quote(&r.name)
    ))
}

fn validate_role_binding(b: &rbac::RoleBinding, errs: &mut Errs) {
    validate_binding(&b.role_ref, b.subjects.as_ref(), true, errs);
}

fn validate_role_binding_update(n: &rbac::RoleBinding, o: &rbac::RoleBinding, errs: &mut Errs) {
    validate_role_binding(n, errs);
    if n.role_ref != o.role_ref {
        errs.push(FieldError::invalid(
            &Path::new("roleRef"),
            role_ref_text(&n.role_ref),
            "cannot change roleRef",
        ));
    }
}

fn validate_cluster_role_binding(b: &rbac::ClusterRoleBinding, errs: &mut Errs) {
    validate_binding(&b.role_ref, b.subjects.as_ref(), false, errs);
}

fn validate_cluster_role_binding_update(
    n: &rbac::ClusterRoleBinding,
    o: &rbac::ClusterRoleBinding,
    errs: &mut Errs,
) {
    validate_cluster_role_binding(n, errs);
    if n.role_ref != o.role_ref {
        errs.push(FieldError::invalid(
            &Path::new("roleRef"),
            role_ref_text(&n.role_ref),
            "cannot change roleRef",
        ));
    }
}

pub(crate) static ROLE: Def<rbac::Role> = def(
    true,
    path_segment_name,
    crate::kinds::no_default,
    validate_role,
    validate_role_update,
    no_update_checks,
);

pub(crate) static CLUSTER_ROLE: Def<rbac::ClusterRole> = def(
    false,
    path_segment_name,
    crate::kinds::no_default,
    validate_cluster_role,
    validate_cluster_role_update,
    no_update_checks,
);

pub(crate) static ROLE_BINDING: Def<rbac::RoleBinding> = def(
    true,
    path_segment_name,
    default_role_binding,
    validate_role_binding,
    validate_role_binding_update,
    no_update_checks,
);

pub(crate) static CLUSTER_ROLE_BINDING: Def<rbac::ClusterRoleBinding> = def(
    false,
    path_segment_name,
    default_cluster_role_binding,
    validate_cluster_role_binding,
    validate_cluster_role_binding_update,
    no_update_checks,
);
