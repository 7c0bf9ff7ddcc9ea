//! batch/v1: Job and CronJob — defaults (completions/parallelism, backoff limit,
//! completion mode, pod replacement policy; concurrency policy and history limits), spec
//! validation (restart policy, selector against template, indexed jobs, cron schedules,
//! time zones), immutable job fields, and the selector upstream generates for Jobs.

use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::core::pod;
use super::{default_opt, default_str, s};
use crate::error::{BadValue, FieldError, go_string_map};
use crate::kinds::{Def, def};
use crate::meta::{self, Errs};
use crate::names::name_is_dns_subdomain;
use crate::path::Path;

const MAX_PARALLELISM_INDEXED: i32 = 100_000;
const MAX_COMPLETIONS_PER_INDEX: i32 = 100_000;
const MAX_FAILED_INDEXES: i32 = 100_000;
const MAX_SUCCESS_POLICY_RULES: usize = 20;
const MAX_SUCCEEDED_INDEXES_LEN: usize = 64 * 1024;
const MAX_MANAGED_BY_LEN: usize = 63;

// ---------------------------------------------------------------- defaults

fn default_job(job: &mut batch::Job) {
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    default_opt(&mut spec.parallelism, 1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    let tlabels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    if let Some(l) = tlabels
        && job.metadata.labels.as_ref().is_none_or(|x| x.is_empty())
    {
        job.metadata.labels = Some(l);
    }
    default_opt(&mut spec.completion_mode, "NonIndexed".to_string());
    default_opt(&mut spec.suspend, false);
    if let Some(pfp) = &mut spec.pod_failure_policy {
        for r in pfp.rules.iter_mut() {
            for c in r.on_pod_conditions.iter_mut().flatten() {
                if c.status.is_empty() {
                    c.status = "True".into();
                }
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(
            if spec.pod_failure_policy.is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }
            .to_string(),
        );
    }
    pod::default_template_spec(&mut spec.template);
}

fn default_cron_job(cj: &mut batch::CronJob) {
    let spec = cj.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.concurrency_policy, "Allow");
    default_opt(&mut spec.suspend, false);
    default_opt(&mut spec.successful_jobs_history_limit, 3);
    default_opt(&mut spec.failed_jobs_history_limit, 1);
    if let Some(js) = &mut spec.job_template.spec {
        pod::default_template_spec(&mut js.template);
    }
}

/// The selector and labels upstream's Job strategy generates on create (unless
/// `manualSelector` is true), from the Job's UID.
pub(crate) fn generate_job_selector(job: &mut batch::Job) {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let Some(spec) = &mut job.spec else { return };
    if spec.manual_selector == Some(true) {
        return;
    }
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    if spec.selector.is_none() {
        spec.selector = Some(LabelSelector {
            match_labels: Some([("batch.kubernetes.io/controller-uid".to_string(), uid)].into()),
            match_expressions: None,
        });
    }
}

// ---------------------------------------------------------------- Job

fn validate_job_spec_common(spec: &batch::JobSpec, sp: &Path, errs: &mut Errs) {
    for (v, f) in [
        (spec.parallelism, "parallelism"),
        (spec.completions, "completions"),
        (spec.backoff_limit, "backoffLimit"),
        (spec.ttl_seconds_after_finished, "ttlSecondsAfterFinished"),
        (spec.backoff_limit_per_index, "backoffLimitPerIndex"),
        (spec.max_failed_indexes, "maxFailedIndexes"),
    ] {
        if let Some(v) = v {
            meta::nonnegative(v.into(), &sp.child(f), errs);
        }
    }
    if let Some(a) = spec.active_deadline_seconds {
        meta::nonnegative(a, &sp.child("activeDeadlineSeconds"), errs);
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(b) = spec.backoff_limit_per_index
        && !indexed
    {
        errs.push(FieldError::invalid(
            &sp.child("backoffLimitPerIndex"),
            b,
            "requires indexed completion mode",
        ));
    }
    if let Some(m) = spec.max_failed_indexes {
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                &sp.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
        if let Some(c) = spec.completions
            && indexed
            && m > c
        {
            errs.push(FieldError::invalid(
                &sp.child("maxFailedIndexes"),
                m,
                "must be less than or equal to completions",
            ));
        }
        if m > MAX_FAILED_INDEXES {
            errs.push(FieldError::invalid(
                &sp.child("maxFailedIndexes"),
                m,
                format!("must be less than or equal to {MAX_FAILED_INDEXES}"),
            ));
        }
    }
    if let Some(policy) = &spec.success_policy {
        let pp = sp.child("successPolicy");
        match spec.completions {
            Some(c) if indexed => validate_success_policy(policy, c, &pp, errs),
            _ => errs.push(FieldError::invalid(
                &pp,
                BadValue::Raw(go_success_policy(policy)),
                "requires indexed completion mode",
            )),
        }
    }
    if let Some(m) = &spec.managed_by {
        let mp = sp.child("managedBy");
        for (v, msg) in crate::names::domain_prefixed_path_errors(m) {
            errs.push(FieldError::invalid(&mp, v, msg));
        }
        if m.len() > MAX_MANAGED_BY_LEN {
            errs.push(FieldError::too_long(&mp, m, MAX_MANAGED_BY_LEN));
        }
    }
    if let Some(cm) = spec.completion_mode.as_deref() {
        if cm != "NonIndexed" && cm != "Indexed" {
            errs.push(FieldError::not_supported(
                &sp.child("completionMode"),
                cm,
                &["NonIndexed", "Indexed"],
            ));
        }
        if cm == "Indexed" {
            match spec.completions {
                None => errs.push(FieldError::required(
                    &sp.child("completions"),
                    "when completion mode is Indexed",
                )),
                Some(c)
                    if spec.backoff_limit_per_index.is_some() && c > MAX_COMPLETIONS_PER_INDEX =>
                {
                    errs.push(FieldError::invalid(
                        &sp.child("completions"),
                        c,
                        format!("must be less than or equal to {MAX_COMPLETIONS_PER_INDEX} when backoffLimitPerIndex is specified"),
                    ));
                }
                _ => {}
            }
            if let Some(p) = spec.parallelism
                && p > MAX_PARALLELISM_INDEXED
            {
                errs.push(FieldError::invalid(
                        &sp.child("parallelism"),
                        p,
                        format!("must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"),
                    ));
            }
        }
    }
    if let Some(pfp) = &spec.pod_failure_policy {
        let pp = sp.child("podFailurePolicy").child("rules");
        for (i, r) in pfp.rules.iter().enumerate() {
            let rp = pp.index(i);
            let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
            if !actions.contains(&r.action.as_str()) {
                errs.push(FieldError::not_supported(
                    &rp.child("action"),
                    &r.action,
                    &actions,
                ));
            }
            if r.action == "FailIndex" && spec.backoff_limit_per_index.is_none() {
                errs.push(FieldError::invalid(
                    &rp.child("action"),
                    &r.action,
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
            match (&r.on_exit_codes, &r.on_pod_conditions) {
                (Some(_), Some(c)) if !c.is_empty() => errs.push(FieldError::invalid(
                    &rp,
                    BadValue::Raw("batch.PodFailurePolicyRule{...}".into()),
                    "specifying both OnExitCodes and OnPodConditions is not supported",
                )),
                (None, None) => errs.push(FieldError::invalid(
                    &rp,
                    BadValue::Raw("batch.PodFailurePolicyRule{...}".into()),
                    "specifying one of OnExitCodes and OnPodConditions is required",
                )),
                _ => {}
            }
            if let Some(ec) = &r.on_exit_codes {
                let ep = rp.child("onExitCodes");
                let ops = ["In", "NotIn"];
                if !ops.contains(&ec.operator.as_str()) {
                    errs.push(FieldError::not_supported(
                        &ep.child("operator"),
                        &ec.operator,
                        &ops,
                    ));
                }
                if ec.values.is_empty() {
                    errs.push(FieldError::invalid(
                        &ep.child("values"),
                        BadValue::Raw("[]int32{}".into()),
                        "at least one value is required",
                    ));
                }
                for (j, v) in ec.values.iter().enumerate() {
                    if ec.operator == "In" && *v == 0 {
                        errs.push(FieldError::invalid(
                            &ep.child("values").index(j),
                            *v,
                            "must not be 0 for the In operator",
                        ));
                    }
                    if j > 0 && ec.values[j - 1] >= *v {
                        errs.push(FieldError::invalid(
                            &ep.child("values").index(j),
                            *v,
                            "must be ordered",
                        ));
                    }
                }
            }
        }
    }
    let t = &spec.template;
    let tp = sp.child("template");
    pod::validate_template(t, &tp, errs);
    let rp = t.spec.as_ref().map(|x| s(&x.restart_policy)).unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            &tp.children(&["spec", "restartPolicy"]),
            rp,
            &["OnFailure", "Never"],
        ));
    } else if spec.pod_failure_policy.is_some() && rp != "Never" {
        errs.push(FieldError::invalid(
            &tp.children(&["spec", "restartPolicy"]),
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    if let Some(prp) = spec.pod_replacement_policy.as_deref() {
        let p = sp.child("podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if prp != "Failed" {
                errs.push(FieldError::not_supported(&p, prp, &["Failed"]));
            }
        } else if prp != "TerminatingOrFailed" && prp != "Failed" {
            errs.push(FieldError::not_supported(
                &p,
                prp,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
}

/// Go's `%v` of a SuccessPolicy, as upstream's error shows it.
fn go_success_policy(p: &batch::SuccessPolicy) -> String {
    let rules: Vec<String> = p
        .rules
        .iter()
        .map(|r| {
            let ptr = |set: bool| if set { "(ptr)" } else { "<nil>" };
            format!(
                "{{SucceededIndexes:{} SucceededCount:{}}}",
                ptr(r.succeeded_indexes.is_some()),
                ptr(r.succeeded_count.is_some())
            )
        })
        .collect();
    format!("{{Rules:[{}]}}", rules.join(" "))
}

fn validate_success_policy(
    policy: &batch::SuccessPolicy,
    completions: i32,
    pp: &Path,
    errs: &mut Errs,
) {
    let rp = pp.child("rules");
    if policy.rules.is_empty() {
        errs.push(FieldError::required(
            &rp,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if policy.rules.len() > MAX_SUCCESS_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rp,
            policy.rules.len(),
            MAX_SUCCESS_POLICY_RULES,
        ));
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let p = rp.index(i);
        let mut total = 0;
        if let Some(ix) = &rule.succeeded_indexes {
            let ip = p.child("succeededIndexes");
            if ix.len() > MAX_SUCCEEDED_INDEXES_LEN {
                errs.push(FieldError::too_long(&ip, ix, MAX_SUCCEEDED_INDEXES_LEN));
            }
            match indexes_total(ix, completions) {
                Ok(n) => total = n,
                Err(e) => errs.push(FieldError::invalid(
                    &ip,
                    ix,
                    format!("error parsing succeededIndexes: {e}"),
                )),
            }
        }
        if let Some(n) = rule.succeeded_count {
            let cp = p.child("succeededCount");
            if n < 0 {
                errs.push(FieldError::invalid(
                    &cp,
                    n,
                    "must be greater than or equal to 0",
                ));
            }
            if n > completions {
                errs.push(FieldError::invalid(
                    &cp,
                    n,
                    format!("must be less than or equal to {completions} (the number of specified completions)"),
                ));
            }
            if rule.succeeded_indexes.is_some() && n > total {
                errs.push(FieldError::invalid(
                    &cp,
                    n,
                    format!("must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"),
                ));
            }
        }
        if rule.succeeded_indexes.is_none() && rule.succeeded_count.is_none() {
            errs.push(FieldError::required(
                &p,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
    }
}

/// Upstream's `validateIndexesFormat`: the number of indexes in `1,3-5,7`, all below
/// `completions` and strictly increasing.
fn indexes_total(s: &str, completions: i32) -> Result<i32, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total: i32 = 0;
    let parse = |v: &str| -> Result<i64, String> {
        let n: i64 = v
            .parse()
            .map_err(|_| format!("cannot convert string to integer for index: \"{v}\""))?;
        if n >= i64::from(completions) {
            return Err(format!("too large index: \"{v}\""));
        }
        Ok(n)
    };
    for interval in s.split(',') {
        let parts: Vec<&str> = interval.split('-').collect();
        if parts.len() > 2 {
            return Err(format!(
                "the fragment \"{interval}\" violates the requirement that an index interval can have at most two parts separated by '-'"
            ));
        }
        let x = parse(parts[0])?;
        if let Some(l) = last
            && l >= x
        {
            return Err(format!("non-increasing order, previous: {l}, current: {x}"));
        }
        total = total.saturating_add(1);
        last = Some(x);
        if let Some(y) = parts.get(1) {
            let y = parse(y)?;
            if x >= y {
                return Err(format!("non-increasing order, previous: {x}, current: {y}"));
            }
            total = total.saturating_add((y - x) as i32);
            last = Some(y);
        }
    }
    Ok(total)
}

fn validate_job(job: &batch::Job, errs: &mut Errs) {
    let spec = job.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    if spec.manual_selector != Some(true)
        && spec.selector.is_some()
        && s(&job.metadata.uid).is_empty()
    {
        errs.push(FieldError::required(
            &Path::new("metadata").child("uid"),
            "",
        ));
    }
    validate_job_spec_common(&spec, &sp, errs);
    match &spec.selector {
        None => errs.push(FieldError::required(&sp.child("selector"), "")),
        Some(sel) => {
            meta::validate_label_selector(sel, &sp.child("selector"), errs);
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            if !meta::selector_matches(sel, labels) {
                errs.push(FieldError::invalid(
                    &sp.children(&["template", "metadata", "labels"]),
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
}

fn validate_job_update(n: &batch::Job, o: &batch::Job, errs: &mut Errs) {
    validate_job(n, errs);
    let (ns, os) = (
        n.spec.clone().unwrap_or_default(),
        o.spec.clone().unwrap_or_default(),
    );
    let sp = Path::new("spec");
    let indexed = ns.completion_mode.as_deref() == Some("Indexed");
    let elastic = indexed && ns.completions == ns.parallelism && os.completions == os.parallelism;
    if ns.completions != os.completions && !elastic {
        errs.push(FieldError::invalid(
            &sp.child("completions"),
            ns.completions,
            meta::IMMUTABLE,
        ));
    }
    if ns.selector != os.selector {
        let bad = match &ns.selector {
            Some(sel) => BadValue::Raw(meta::label_selector_text(sel)),
            None => BadValue::Null,
        };
        errs.push(FieldError::invalid(
            &sp.child("selector"),
            bad,
            meta::IMMUTABLE,
        ));
    }
    // A suspended job that never started may change its scheduling directives.
    let mut new_t = ns.template.clone();
    if os.suspend == Some(true)
        && o.status
            .as_ref()
            .and_then(|st| st.start_time.as_ref())
            .is_none()
    {
        if let (Some(nsp), Some(osp)) = (&mut new_t.spec, &os.template.spec) {
            nsp.node_selector = osp.node_selector.clone();
            nsp.affinity = osp.affinity.clone();
            nsp.tolerations = osp.tolerations.clone();
            nsp.scheduling_gates = osp.scheduling_gates.clone();
        }
        if let (Some(nm), Some(om)) = (&mut new_t.metadata, &os.template.metadata) {
            nm.labels = om.labels.clone();
            nm.annotations = om.annotations.clone();
        }
    }
    if new_t != os.template {
        errs.push(FieldError::invalid(
            &sp.child("template"),
            BadValue::Raw("core.PodTemplateSpec{...}".into()),
            meta::IMMUTABLE,
        ));
    }
    if ns.completion_mode != os.completion_mode {
        errs.push(FieldError::invalid(
            &sp.child("completionMode"),
            ns.completion_mode.clone(),
            meta::IMMUTABLE,
        ));
    }
    if ns.pod_failure_policy != os.pod_failure_policy {
        errs.push(FieldError::invalid(
            &sp.child("podFailurePolicy"),
            BadValue::Raw("batch.PodFailurePolicy{...}".into()),
            meta::IMMUTABLE,
        ));
    }
    if ns.backoff_limit_per_index != os.backoff_limit_per_index {
        errs.push(FieldError::invalid(
            &sp.child("backoffLimitPerIndex"),
            ns.backoff_limit_per_index,
            meta::IMMUTABLE,
        ));
    }
    if ns.managed_by != os.managed_by {
        errs.push(FieldError::invalid(
            &sp.child("managedBy"),
            ns.managed_by.clone(),
            meta::IMMUTABLE,
        ));
    }
    if ns.success_policy != os.success_policy {
        errs.push(FieldError::invalid(
            &sp.child("successPolicy"),
            BadValue::Raw("batch.SuccessPolicy{...}".into()),
            meta::IMMUTABLE,
        ));
    }
}

fn validate_job_status(n: &batch::Job, _o: &batch::Job, errs: &mut Errs) {
    let st = n.status.clone().unwrap_or_default();
    let p = Path::new("status");
    for (v, f) in [
        (st.active, "active"),
        (st.succeeded, "succeeded"),
        (st.failed, "failed"),
        (st.ready, "ready"),
        (st.terminating, "terminating"),
    ] {
        if let Some(v) = v {
            meta::nonnegative(v.into(), &p.child(f), errs);
        }
    }
}

pub(crate) static JOB: Def<batch::Job> = def(
    true,
    name_is_dns_subdomain,
    default_job,
    validate_job,
    validate_job_update,
    validate_job_status,
);

// ---------------------------------------------------------------- CronJob

fn validate_cron_job(cj: &batch::CronJob, errs: &mut Errs) {
    let name = s(&cj.metadata.name);
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    validate_cron_job_spec(cj, errs);
}

fn validate_cron_job_spec(cj: &batch::CronJob, errs: &mut Errs) {
    let spec = cj.spec.clone().unwrap_or_default();
    let sp = Path::new("spec");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&sp.child("schedule"), ""));
    } else {
        if let Err(e) = parse_cron(&spec.schedule) {
            errs.push(FieldError::invalid(
                &sp.child("schedule"),
                &spec.schedule,
                e,
            ));
        }
        if spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &sp.child("schedule"),
                &spec.schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(d) = spec.starting_deadline_seconds {
        meta::nonnegative(d, &sp.child("startingDeadlineSeconds"), errs);
    }
    if let Some(tz) = &spec.time_zone {
        validate_time_zone(tz, &sp.child("timeZone"), errs);
    }
    super::required_enum(
        s(&spec.concurrency_policy),
        &["Allow", "Forbid", "Replace"],
        &sp.child("concurrencyPolicy"),
        errs,
    );
    let jp = sp.child("jobTemplate");
    match &spec.job_template.spec {
        Some(js) => {
            validate_job_spec_common(js, &jp.child("spec"), errs);
            if let Some(sel) = &js.selector {
                errs.push(FieldError::invalid(
                    &jp.children(&["spec", "selector"]),
                    BadValue::Raw(meta::label_selector_text(sel)),
                    "`selector` will be auto-generated",
                ));
            }
            if js.manual_selector == Some(true) {
                errs.push(FieldError::not_supported(
                    &jp.children(&["spec", "manualSelector"]),
                    true,
                    &["nil", "false"],
                ));
            }
        }
        None => validate_job_spec_common(&Default::default(), &jp.child("spec"), errs),
    }
    for (v, f) in [
        (
            spec.successful_jobs_history_limit,
            "successfulJobsHistoryLimit",
        ),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        if let Some(v) = v {
            meta::nonnegative(v.into(), &sp.child(f), errs);
        }
    }
}

fn validate_cron_job_update(n: &batch::CronJob, _o: &batch::CronJob, errs: &mut Errs) {
    validate_cron_job_spec(n, errs);
}

fn validate_time_zone(tz: &str, path: &Path, errs: &mut Errs) {
    if tz.is_empty() {
        return;
    }
    let valid_chars = tz.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_+".contains(&c))
    });
    if !valid_chars {
        errs.push(FieldError::invalid(
            path,
            tz,
            "unknown time zone ".to_string() + tz,
        ));
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(path, tz, "unknown time zone Local"));
        return;
    }
    let known = tz == "UTC"
        || std::path::Path::new("/usr/share/zoneinfo")
            .join(tz)
            .is_file()
        || !std::path::Path::new("/usr/share/zoneinfo").exists();
    if !known {
        errs.push(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
}

fn cron_field(field: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                if st.contains('/') {
                    return Err(format!("too many slashes: {part}"));
                }
                (r, Some(st))
            }
            None => (part, None),
        };
        let parse = |v: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                return Ok(i as u32 + lo);
            }
            let n: i64 = v.parse().map_err(|_| {
                format!(
                    "failed to parse int from {v}: strconv.Atoi: parsing \"{v}\": invalid syntax"
                )
            })?;
            if n < 0 {
                return Err(format!("negative number ({n}) not allowed: {v}"));
            }
            u32::try_from(n)
                .map_err(|_| format!("failed to parse int from {v}: value out of range"))
        };
        let (start, end) = if range == "*" || range == "?" {
            (lo, hi)
        } else {
            let bounds: Vec<&str> = range.split('-').collect();
            match bounds.len() {
                1 => {
                    let v = parse(bounds[0])?;
                    (v, if step.is_some() { hi } else { v })
                }
                2 => (parse(bounds[0])?, parse(bounds[1])?),
                _ => return Err(format!("too many hyphens: {range}")),
            }
        };
        if let Some(st) = step {
            let n = parse(st)?;
            if n == 0 {
                return Err(format!("step of range should be a positive number: {part}"));
            }
        }
        if start < lo {
            return Err(format!(
                "beginning of range ({start}) below minimum ({lo}): {part}"
            ));
        }
        if end > hi {
            return Err(format!("end of range ({end}) above maximum ({hi}): {part}"));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part}"
            ));
        }
    }
    Ok(())
}

/// Parses a standard 5-field cron schedule (or a `@descriptor`) as upstream's
/// `cron.ParseStandard` does, returning its error text.
pub(crate) fn parse_cron(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let spec = if let Some(rest) = spec
        .strip_prefix("TZ=")
        .or_else(|| spec.strip_prefix("CRON_TZ="))
    {
        match rest.split_once(' ') {
            Some((_, r)) => r.trim(),
            None => {
                return Err(format!(
                    "provided bad location {rest}: unknown time zone {rest}"
                ));
            }
        }
    } else {
        spec
    };
    if let Some(d) = spec.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if d.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DOWS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    cron_field(fields[0], 0, 59, &[])?;
    cron_field(fields[1], 0, 23, &[])?;
    cron_field(fields[2], 1, 31, &[])?;
    cron_field(fields[3], 1, 12, MONTHS)?;
    cron_field(fields[4], 0, 6, DOWS)?;
    Ok(())
}

pub(crate) static CRON_JOB: Def<batch::CronJob> = def(
    true,
    name_is_dns_subdomain,
    default_cron_job,
    validate_cron_job,
    validate_cron_job_update,
    crate::kinds::no_update_checks,
);

#[cfg(test)]
mod tests {
    use super::parse_cron;

    #[test]
    fn cron_schedules() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 0 * JAN-MAR mon-fri").is_ok());
        assert!(parse_cron("@hourly").is_ok());
        assert_eq!(
            parse_cron("foo").unwrap_err(),
            "expected exactly 5 fields, found 1: [foo]"
        );
        assert_eq!(
            parse_cron("60 * * * *").unwrap_err(),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            parse_cron("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            parse_cron("@sometimes").unwrap_err(),
            "unrecognized descriptor: @sometimes"
        );
    }
}
