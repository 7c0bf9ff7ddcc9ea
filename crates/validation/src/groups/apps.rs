//! apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet and ControllerRevision —
//! `SetDefaults_*` (replicas, strategies, history limits, progress deadline, PVC
//! retention), spec validation against the pod template, immutable selectors, and status
//! validation.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::core::{pod, storage_kinds};
use super::{
    default_opt, default_str, int_or_percent_value, int_or_string_value, not_more_than_100_percent,
    s, validate_positive_int_or_percent,
};
use crate::error::{BadValue, FieldError, go_quote, go_string_map};
use crate::kinds::{Def, def, no_default, raw_absent};
use crate::meta::{self, Errs};
use crate::names::name_is_dns_subdomain;
use crate::path::Path;

// ---------------------------------------------------------------- shared

fn selector_value(sel: &LabelSelector) -> BadValue {
    BadValue::Raw(meta::label_selector_text(sel))
}

/// Checks a workload's `spec.selector`; returns whether the template should be matched
/// against it (a nil selector matches nothing, an empty one everything).
fn validate_selector(sel: &LabelSelector, what: &str, sp: &Path, errs: &mut Errs) -> SelectorUse {
    if raw_absent(&["spec", "selector"]) {
        errs.push(FieldError::required(&sp.child("selector"), ""));
        return SelectorUse::Nothing;
    }
    meta::validate_label_selector(sel, &sp.child("selector"), errs);
    if meta::selector_is_empty(sel) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(sel),
            format!("empty selector is invalid for {what}"),
        ));
        return SelectorUse::Everything;
    }
    SelectorUse::Match
}

#[derive(PartialEq)]
enum SelectorUse {
    Nothing,
    Everything,
    Match,
}

fn check_template_labels(
    sel: &LabelSelector,
    usage: SelectorUse,
    t: &PodTemplateSpec,
    tp: &Path,
    errs: &mut Errs,
) {
    let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let matches = match usage {
        SelectorUse::Nothing => false,
        SelectorUse::Everything => true,
        SelectorUse::Match => meta::selector_matches(sel, labels),
    };
    if !matches {
        errs.push(FieldError::invalid(
            &tp.child("metadata").child("labels"),
            go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (also used by Deployments).
fn validate_template_for_rs(
    sel: &LabelSelector,
    usage: SelectorUse,
    t: &PodTemplateSpec,
    tp: &Path,
    kind_text: &str,
    errs: &mut Errs,
) {
    check_template_labels(sel, usage, t, tp, errs);
    pod::validate_template(t, tp, errs);
    let spec = t.spec.clone().unwrap_or_default();
    let rp = s(&spec.restart_policy);
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.children(&["spec", "restartPolicy"]),
            rp,
            &["Always"],
        ));
    }
    if let Some(ads) = spec.active_deadline_seconds {
        errs.push(FieldError::invalid(
            &tp.children(&["spec", "activeDeadlineSeconds"]),
            ads,
            format!("activeDeadlineSeconds in {kind_text} is not Supported"),
        ));
    }
}

fn immutable_selector(new: &LabelSelector, old: &LabelSelector, errs: &mut Errs) {
    if new != old {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("selector"),
            selector_value(new),
            meta::IMMUTABLE,
        ));
    }
}

fn nonneg(v: Option<i32>, path: &Path, errs: &mut Errs) {
    meta::nonnegative(v.unwrap_or(0).into(), path, errs);
}

fn not_greater(a: Option<i32>, b: Option<i32>, path: &Path, msg: &str, errs: &mut Errs) {
    let (a, b) = (a.unwrap_or(0), b.unwrap_or(0));
    if a > b {
        errs.push(FieldError::invalid(path, a, msg));
    }
}

// ---------------------------------------------------------------- Deployment

fn default_deployment(d: &mut apps::Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    default_opt(&mut spec.replicas, 1);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    default_str(&mut strategy.type_, "RollingUpdate");
    if s(&strategy.type_) == "RollingUpdate" {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        default_opt(&mut ru.max_unavailable, IntOrString::String("25%".into()));
        default_opt(&mut ru.max_surge, IntOrString::String("25%".into()));
    }
    default_opt(&mut spec.revision_history_limit, 10);
    default_opt(&mut spec.progress_deadline_seconds, 600);
    pod::default_template_spec(&mut spec.template);
}

fn strategy_text(st: &apps::DeploymentStrategy) -> String {
    format!(
        "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}",
        go_quote(s(&st.type_)),
        if st.rolling_update.is_some() {
            "(*apps.RollingUpdateDeployment)(0xc000000000)"
        } else {
            "(*apps.RollingUpdateDeployment)(nil)"
        }
    )
}

fn validate_deployment(d: &apps::Deployment, errs: &mut Errs) {
    let spec = d.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    nonneg(spec.replicas, &sp.child("replicas"), errs);
    let usage = validate_selector(&spec.selector, "deployment", &sp, errs);
    validate_template_for_rs(
        &spec.selector,
        usage,
        &spec.template,
        &sp.child("template"),
        "ReplicaSet",
        errs,
    );
    let strategy = spec.strategy.clone().unwrap_or_default();
    let stp = sp.child("strategy");
    match s(&strategy.type_) {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                &stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let mu = ru.max_unavailable.clone().unwrap_or(IntOrString::Int(0));
                let ms = ru.max_surge.clone().unwrap_or(IntOrString::Int(0));
                validate_positive_int_or_percent(&mu, &rp.child("maxUnavailable"), errs);
                validate_positive_int_or_percent(&ms, &rp.child("maxSurge"), errs);
                if int_or_percent_value(&mu) == 0 && int_or_percent_value(&ms) == 0 {
                    errs.push(FieldError::invalid(
                        &rp.child("maxUnavailable"),
                        int_or_string_value(&mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(&mu, &rp.child("maxUnavailable"), errs);
            }
        },
        _ => errs.push(FieldError::not_supported(
            &stp,
            BadValue::Raw(strategy_text(&strategy)),
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonneg(spec.min_ready_seconds, &sp.child("minReadySeconds"), errs);
    if let Some(r) = spec.revision_history_limit {
        meta::nonnegative(r.into(), &sp.child("revisionHistoryLimit"), errs);
    }
    if let Some(p) = spec.progress_deadline_seconds {
        meta::nonnegative(p.into(), &sp.child("progressDeadlineSeconds"), errs);
        if p <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                &sp.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn validate_deployment_update(n: &apps::Deployment, o: &apps::Deployment, errs: &mut Errs) {
    validate_deployment(n, errs);
    let (ns, os) = (
        n.spec.clone().unwrap_or_default(),
        o.spec.clone().unwrap_or_default(),
    );
    immutable_selector(&ns.selector, &os.selector, errs);
}

fn validate_deployment_status(n: &apps::Deployment, _o: &apps::Deployment, errs: &mut Errs) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    meta::nonnegative(
        st.observed_generation.unwrap_or(0),
        &p.child("observedGeneration"),
        errs,
    );
    for (v, f) in [
        (st.replicas, "replicas"),
        (st.updated_replicas, "updatedReplicas"),
        (st.available_replicas, "availableReplicas"),
        (st.unavailable_replicas, "unavailableReplicas"),
        (st.ready_replicas, "readyReplicas"),
        (st.terminating_replicas, "terminatingReplicas"),
        (st.collision_count, "collisionCount"),
    ] {
        nonneg(v, &p.child(f), errs);
    }
    let msg = "cannot be greater than status.replicas";
    not_greater(
        st.updated_replicas,
        st.replicas,
        &p.child("updatedReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.ready_replicas,
        st.replicas,
        &p.child("readyReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.available_replicas,
        st.replicas,
        &p.child("availableReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.available_replicas,
        st.ready_replicas,
        &p.child("availableReplicas"),
        "cannot be greater than readyReplicas",
        errs,
    );
}

pub(crate) static DEPLOYMENT: Def<apps::Deployment> = def(
    true,
    name_is_dns_subdomain,
    default_deployment,
    validate_deployment,
    validate_deployment_update,
    validate_deployment_status,
);

// ---------------------------------------------------------------- ReplicaSet

fn default_replica_set(rs: &mut apps::ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    default_opt(&mut spec.replicas, 1);
    pod::default_template(&mut spec.template);
}

fn validate_replica_set(rs: &apps::ReplicaSet, errs: &mut Errs) {
    let spec = rs.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    nonneg(spec.replicas, &sp.child("replicas"), errs);
    nonneg(spec.min_ready_seconds, &sp.child("minReadySeconds"), errs);
    let usage = validate_selector(&spec.selector, "deployment", &sp, errs);
    match &spec.template {
        Some(t) => validate_template_for_rs(
            &spec.selector,
            usage,
            t,
            &sp.child("template"),
            "ReplicaSet",
            errs,
        ),
        None => errs.push(FieldError::required(&sp.child("template"), "")),
    }
}

fn validate_replica_set_update(n: &apps::ReplicaSet, o: &apps::ReplicaSet, errs: &mut Errs) {
    validate_replica_set(n, errs);
    let (ns, os) = (
        n.spec.clone().unwrap_or_default(),
        o.spec.clone().unwrap_or_default(),
    );
    immutable_selector(&ns.selector, &os.selector, errs);
}

fn validate_replica_set_status(n: &apps::ReplicaSet, _o: &apps::ReplicaSet, errs: &mut Errs) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (Some(st.replicas), "replicas"),
        (st.fully_labeled_replicas, "fullyLabeledReplicas"),
        (st.ready_replicas, "readyReplicas"),
        (st.available_replicas, "availableReplicas"),
        (st.terminating_replicas, "terminatingReplicas"),
    ] {
        nonneg(v, &p.child(f), errs);
    }
    meta::nonnegative(
        st.observed_generation.unwrap_or(0),
        &p.child("observedGeneration"),
        errs,
    );
    let msg = "cannot be greater than status.replicas";
    let r = Some(st.replicas);
    not_greater(
        st.fully_labeled_replicas,
        r,
        &p.child("fullyLabeledReplicas"),
        msg,
        errs,
    );
    not_greater(st.ready_replicas, r, &p.child("readyReplicas"), msg, errs);
    not_greater(
        st.available_replicas,
        r,
        &p.child("availableReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.available_replicas,
        st.ready_replicas,
        &p.child("availableReplicas"),
        "cannot be greater than readyReplicas",
        errs,
    );
}

pub(crate) static REPLICA_SET: Def<apps::ReplicaSet> = def(
    true,
    name_is_dns_subdomain,
    default_replica_set,
    validate_replica_set,
    validate_replica_set_update,
    validate_replica_set_status,
);

// ---------------------------------------------------------------- StatefulSet

fn default_stateful_set(ss: &mut apps::StatefulSet) {
    let spec = ss.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.pod_management_policy, "OrderedReady");
    let us = spec.update_strategy.get_or_insert_with(Default::default);
    if s(&us.type_).is_empty() {
        us.type_ = Some("RollingUpdate".into());
        default_opt(&mut us.rolling_update, Default::default());
    }
    if s(&us.type_) == "RollingUpdate"
        && let Some(ru) = &mut us.rolling_update
    {
        default_opt(&mut ru.partition, 0);
    }
    let rp = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(Default::default);
    default_str(&mut rp.when_deleted, "Retain");
    default_str(&mut rp.when_scaled, "Retain");
    default_opt(&mut spec.replicas, 1);
    default_opt(&mut spec.revision_history_limit, 10);
    pod::default_template_spec(&mut spec.template);
    for pvc in spec.volume_claim_templates.iter_mut().flatten() {
        storage_kinds::default_pvc(pvc);
    }
}

fn validate_stateful_set(ss: &apps::StatefulSet, errs: &mut Errs) {
    let spec = ss.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    match s(&spec.pod_management_policy) {
        "" => errs.push(FieldError::required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        p => errs.push(FieldError::invalid(
            &sp.child("podManagementPolicy"),
            p,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = spec.update_strategy.clone().unwrap_or_default();
    match s(&us.type_) {
        "" => errs.push(FieldError::required(&sp.child("updateStrategy"), "")),
        "OnDelete" => {
            if us.rolling_update.is_some() {
                errs.push(FieldError::invalid(
                    &sp.child("updateStrategy").child("rollingUpdate"),
                    BadValue::Raw("apps.RollingUpdateStatefulSetStrategy{...}".into()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = &us.rolling_update {
                let rp = sp.children(&["updateStrategy", "rollingUpdate"]);
                nonneg(ru.partition, &rp.child("partition"), errs);
                if let Some(mu) = &ru.max_unavailable {
                    validate_positive_int_or_percent(mu, &rp.child("maxUnavailable"), errs);
                    if int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(&rp.child("maxUnavailable"), int_or_string_value(mu), "cannot be 0"));
                    }
                    not_more_than_100_percent(mu, &rp.child("maxUnavailable"), errs);
                }
            }
        }
        t => errs.push(FieldError::invalid(
            &sp.child("updateStrategy"),
            BadValue::Raw(format!("apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}", go_quote(t))),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(rp) = &spec.persistent_volume_claim_retention_policy {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for (v, f) in [
            (&rp.when_deleted, "whenDeleted"),
            (&rp.when_scaled, "whenScaled"),
        ] {
            super::required_enum(s(v), &["Delete", "Retain"], &pp.child(f), errs);
        }
    }
    nonneg(spec.replicas, &sp.child("replicas"), errs);
    nonneg(spec.min_ready_seconds, &sp.child("minReadySeconds"), errs);
    if let Some(o) = &spec.ordinals {
        nonneg(o.start, &sp.child("ordinals.start"), errs);
    }
    let usage = validate_selector(&spec.selector, "statefulset", &sp, errs);
    let tp = sp.child("template");
    check_template_labels(&spec.selector, usage, &spec.template, &tp, errs);
    // The pod spec is validated with the claim templates counted as volumes.
    let mut t = spec.template.clone();
    if let Some(ps) = &mut t.spec {
        let vols = ps.volumes.get_or_insert_with(Vec::new);
        for c in spec.volume_claim_templates.iter().flatten() {
            let name = c.metadata.name.clone().unwrap_or_default();
            if !vols.iter().any(|v| v.name == name) {
                vols.push(Volume {
                    persistent_volume_claim: Some(
                        k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                            claim_name: name.clone(),
                            read_only: None,
                        },
                    ),
                    name,
                    ..Default::default()
                });
            }
        }
    }
    let mut tmp = Vec::new();
    pod::validate_template(&t, &tp, &mut tmp);
    // Errors about the synthetic claim volumes are not the user's.
    let synthetic: Vec<usize> = (spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map_or(0, |v| v.len())
        ..t.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .map_or(0, |v| v.len()))
        .collect();
    tmp.retain(|e| {
        !synthetic.iter().any(|i| {
            e.field
                .starts_with(&format!("spec.template.spec.volumes[{i}]"))
        })
    });
    errs.extend(tmp);
    let ps = spec.template.spec.clone().unwrap_or_default();
    let rp = s(&ps.restart_policy);
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.children(&["spec", "restartPolicy"]),
            rp,
            &["Always"],
        ));
    }
    if ps.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &tp.children(&["spec", "activeDeadlineSeconds"]),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    for (i, c) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let cp = sp.child("volumeClaimTemplates").index(i);
        if let Some(spec) = &c.spec {
            storage_kinds::validate_pvc_spec(spec, &cp.child("spec"), errs);
        }
    }
}

fn validate_stateful_set_update(n: &apps::StatefulSet, o: &apps::StatefulSet, errs: &mut Errs) {
    validate_stateful_set(n, errs);
    let mut clone = n.spec.clone().unwrap_or_default();
    let os = o.spec.clone().unwrap_or_default();
    clone.replicas = os.replicas;
    clone.template = os.template.clone();
    clone.update_strategy = os.update_strategy.clone();
    clone.min_ready_seconds = os.min_ready_seconds;
    clone.ordinals = os.ordinals.clone();
    clone.revision_history_limit = os.revision_history_limit;
    clone.persistent_volume_claim_retention_policy =
        os.persistent_volume_claim_retention_policy.clone();
    if clone != os {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn validate_stateful_set_status(n: &apps::StatefulSet, _o: &apps::StatefulSet, errs: &mut Errs) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (Some(st.replicas), "replicas"),
        (st.ready_replicas, "readyReplicas"),
        (st.current_replicas, "currentReplicas"),
        (st.updated_replicas, "updatedReplicas"),
        (st.available_replicas, "availableReplicas"),
        (st.collision_count, "collisionCount"),
    ] {
        nonneg(v, &p.child(f), errs);
    }
    if let Some(g) = st.observed_generation {
        meta::nonnegative(g, &p.child("observedGeneration"), errs);
    }
    let msg = "cannot be greater than status.replicas";
    let r = Some(st.replicas);
    not_greater(st.ready_replicas, r, &p.child("readyReplicas"), msg, errs);
    not_greater(
        st.current_replicas,
        r,
        &p.child("currentReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.updated_replicas,
        r,
        &p.child("updatedReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.available_replicas,
        r,
        &p.child("availableReplicas"),
        msg,
        errs,
    );
    not_greater(
        st.available_replicas,
        st.ready_replicas,
        &p.child("availableReplicas"),
        "cannot be greater than status.readyReplicas",
        errs,
    );
}

pub(crate) static STATEFUL_SET: Def<apps::StatefulSet> = def(
    true,
    name_is_dns_subdomain,
    default_stateful_set,
    validate_stateful_set,
    validate_stateful_set_update,
    validate_stateful_set_status,
);

// ---------------------------------------------------------------- DaemonSet

fn default_daemon_set(ds: &mut apps::DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let us = spec.update_strategy.get_or_insert_with(Default::default);
    default_str(&mut us.type_, "RollingUpdate");
    if s(&us.type_) == "RollingUpdate" {
        let ru = us.rolling_update.get_or_insert_with(Default::default);
        default_opt(&mut ru.max_unavailable, IntOrString::Int(1));
        default_opt(&mut ru.max_surge, IntOrString::Int(0));
    }
    default_opt(&mut spec.revision_history_limit, 10);
    pod::default_template_spec(&mut spec.template);
}

fn daemon_strategy_text(st: &apps::DaemonSetUpdateStrategy) -> String {
    format!(
        "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
        go_quote(s(&st.type_)),
        if st.rolling_update.is_some() {
            "(*apps.RollingUpdateDaemonSet)(0xc000000000)"
        } else {
            "(*apps.RollingUpdateDaemonSet)(nil)"
        }
    )
}

fn validate_daemon_set(ds: &apps::DaemonSet, errs: &mut Errs) {
    let spec = ds.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    let tp = sp.child("template");
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    let absent = raw_absent(&["spec", "selector"]);
    meta::validate_label_selector(&spec.selector, &sp.child("selector"), errs);
    let matches = !absent && meta::selector_matches(&spec.selector, labels);
    if !matches {
        errs.push(FieldError::invalid(
            &tp.child("metadata").child("labels"),
            go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    if !absent && meta::selector_is_empty(&spec.selector) {
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            selector_value(&spec.selector),
            "empty selector is invalid for daemonset",
        ));
    }
    pod::validate_template(&spec.template, &tp, errs);
    let ps = spec.template.spec.clone().unwrap_or_default();
    let rp = s(&ps.restart_policy);
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            &tp.children(&["spec", "restartPolicy"]),
            rp,
            &["Always"],
        ));
    }
    if let Some(ads) = ps.active_deadline_seconds {
        errs.push(FieldError::invalid(
            &tp.children(&["spec", "activeDeadlineSeconds"]),
            ads,
            "activeDeadlineSeconds must be nil for daemon set",
        ));
    }
    nonneg(spec.min_ready_seconds, &sp.child("minReadySeconds"), errs);
    let us = spec.update_strategy.clone().unwrap_or_default();
    let up = sp.child("updateStrategy");
    match s(&us.type_) {
        "OnDelete" => {}
        "RollingUpdate" => match &us.rolling_update {
            None => errs.push(FieldError::required(&up.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = up.child("rollingUpdate");
                let mu = ru.max_unavailable.clone().unwrap_or(IntOrString::Int(0));
                let ms = ru.max_surge.clone().unwrap_or(IntOrString::Int(0));
                validate_positive_int_or_percent(&mu, &rp.child("maxUnavailable"), errs);
                validate_positive_int_or_percent(&ms, &rp.child("maxSurge"), errs);
                not_more_than_100_percent(&mu, &rp.child("maxUnavailable"), errs);
                not_more_than_100_percent(&ms, &rp.child("maxSurge"), errs);
                let (hu, hs) = (
                    int_or_percent_value(&mu) != 0,
                    int_or_percent_value(&ms) != 0,
                );
                if hu && hs {
                    errs.push(FieldError::invalid(
                        &rp.child("maxSurge"),
                        int_or_string_value(&ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !hu && !hs {
                    errs.push(FieldError::required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        _ => errs.push(FieldError::not_supported(
            &up,
            BadValue::Raw(daemon_strategy_text(&us)),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(r) = spec.revision_history_limit {
        meta::nonnegative(r.into(), &sp.child("revisionHistoryLimit"), errs);
    }
}

fn validate_daemon_set_update(n: &apps::DaemonSet, o: &apps::DaemonSet, errs: &mut Errs) {
    let (ns, os) = (
        n.spec.clone().unwrap_or_default(),
        o.spec.clone().unwrap_or_default(),
    );
    immutable_selector(&ns.selector, &os.selector, errs);
    validate_daemon_set(n, errs);
}

fn validate_daemon_set_status(n: &apps::DaemonSet, _o: &apps::DaemonSet, errs: &mut Errs) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (Some(st.current_number_scheduled), "currentNumberScheduled"),
        (Some(st.number_misscheduled), "numberMisscheduled"),
        (Some(st.desired_number_scheduled), "desiredNumberScheduled"),
        (Some(st.number_ready), "numberReady"),
        (st.updated_number_scheduled, "updatedNumberScheduled"),
        (st.number_available, "numberAvailable"),
        (st.number_unavailable, "numberUnavailable"),
        (st.collision_count, "collisionCount"),
    ] {
        nonneg(v, &p.child(f), errs);
    }
    meta::nonnegative(
        st.observed_generation.unwrap_or(0),
        &p.child("observedGeneration"),
        errs,
    );
}

pub(crate) static DAEMON_SET: Def<apps::DaemonSet> = def(
    true,
    name_is_dns_subdomain,
    default_daemon_set,
    validate_daemon_set,
    validate_daemon_set_update,
    validate_daemon_set_status,
);

// ---------------------------------------------------------------- ControllerRevision

fn validate_controller_revision(cr: &apps::ControllerRevision, errs: &mut Errs) {
    if cr.data.is_none() {
        errs.push(FieldError::required(
            &Path::new("data"),
            "data is mandatory",
        ));
    }
    meta::nonnegative(cr.revision, &Path::new("revision"), errs);
}

fn validate_controller_revision_update(
    n: &apps::ControllerRevision,
    o: &apps::ControllerRevision,
    errs: &mut Errs,
) {
    validate_controller_revision(n, errs);
    if n.data != o.data {
        errs.push(FieldError::invalid(
            &Path::new("data"),
            BadValue::Raw("runtime.RawExtension{...}".into()),
            meta::IMMUTABLE,
        ));
    }
}

pub(crate) static CONTROLLER_REVISION: Def<apps::ControllerRevision> = def(
    true,
    name_is_dns_subdomain,
    no_default,
    validate_controller_revision,
    validate_controller_revision_update,
    crate::kinds::no_update_checks,
);
