//! The Job controller, after upstream's (1.33): runs pods until `completions` succeed (or,
//! without completions, until one succeeds and none is active), at most `parallelism` at a
//! time; Indexed mode gives each pod a completion index (annotation and label
//! `batch.kubernetes.io/job-completion-index`, env `JOB_COMPLETION_INDEX` through the
//! downward API, hostname `<job>-<index>`) and tracks `completedIndexes`.
//!
//! Pods carry the `batch.kubernetes.io/job-tracking` finalizer; a finished pod is first
//! recorded in `status.uncountedTerminatedPods`, then its finalizer is removed, then it is
//! moved into the `succeeded`/`failed` counters, so no pod is counted twice or lost.
//! Failures are retried after an exponential backoff (10 s doubling, 6 min cap;
//! configurable) until `backoffLimit`; `activeDeadlineSeconds`, the `podFailurePolicy`
//! (FailJob, Ignore, Count on exit codes or pod conditions) and `suspend` are honoured.
//! Terminal states go through upstream's interim conditions: `FailureTarget` then `Failed`,
//! `SuccessCriteriaMet` then `Complete`, each written once no pod is left running.
//!
//! Indexed Jobs may limit retries per index (`backoffLimitPerIndex`): each replacement
//! carries the index's failure count in `batch.kubernetes.io/job-index-failure-count`
//! (ignored failures in `…-ignored-failure-count`) and waits out a backoff of its own; an
//! index whose pod fails with the count at the limit (or by a `FailIndex` policy rule) is
//! recorded in `status.failedIndexes` and not retried. The Job fails with
//! `MaxFailedIndexesExceeded` once more than `maxFailedIndexes` indexes failed, or with
//! `FailedIndexes` once every index succeeded or failed. A `successPolicy` ends an Indexed
//! Job early (`SuccessCriteriaMet`, reason `SuccessPolicy`, then `Complete`), its remaining
//! pods terminated. A Job whose `spec.managedBy` names another controller is left alone.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobStatus, PodFailurePolicyRule, SuccessPolicy, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_client::key_of;
use serde_json::json;

use crate::Error;
use crate::context::{Ctx, Kind};
use crate::ownership::{self, Owner};
use crate::pods::{self, BURST_REPLICAS};
use rkube_client::events::{NORMAL, WARNING};

const COMPONENT: &str = "job-controller";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Failures of the pod's index before it (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the pod's index a pod failure policy ignored before it.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// `spec.managedBy` of Jobs this controller syncs (absent means the same).
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";

/// Per-Job memory of the controller: the failure backoff (upstream's backoff record
/// store) and the pods already moved into the counters, so a stale cache that still shows
/// such a pod with its finalizer never gets it counted twice.
#[derive(Default)]
pub struct Backoffs {
    inner: Mutex<HashMap<String, (u32, jiff::Timestamp)>>,
    counted: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// The Job (uid) and resourceVersion of the last status this controller wrote.
    written: Mutex<HashMap<String, (String, u64)>>,
}

impl Backoffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, jiff::Timestamp)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u64)>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes the resourceVersion a status write of `job` returned.
    fn note_written(&self, key: &str, job: &Job, rv: Option<&str>) {
        if let (Some(uid), Some(rv)) = (
            job.metadata.uid.clone(),
            rv.and_then(|v| v.parse::<u64>().ok()),
        ) {
            self.written().insert(key.to_string(), (uid, rv));
        }
    }

    /// Whether the cached `job` is older than a status this controller already wrote: a
    /// sync from it would miss the counts and indexes recorded there (and could start a
    /// second pod for a finished index). Its watch event brings the newer one.
    fn behind(&self, key: &str, job: &Job) -> bool {
        let cached = job
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        match (self.written().get(key), cached, job.metadata.uid.as_ref()) {
            (Some((uid, written)), Some(cached), Some(u)) => uid == u && cached < *written,
            _ => false,
        }
    }

    fn counted(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, std::collections::HashSet<String>>> {
        self.counted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The delay after `failures` consecutive failures: base × 2^(failures−1), capped.
pub fn backoff_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = failures.saturating_sub(1).min(30);
    base.checked_mul(1u32 << exp).unwrap_or(max).min(max)
}

/// `1,3-5,7` for a set of indexes (upstream's completedIndexes form).
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Parses the completedIndexes form; invalid parts are skipped.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    set.insert(a);
                }
            }
        }
    }
    set
}

fn index_of(p: &Pod) -> Option<i32> {
    p.annotations().get(COMPLETION_INDEX)?.parse().ok()
}

fn annotation_count(p: &Pod, key: &str) -> i32 {
    p.annotations()
        .get(key)
        .and_then(|v| v.parse().ok())
        .filter(|n: &i32| *n >= 0)
        .unwrap_or(0)
}

/// When a finished pod's last container ended (else when it was deleted).
fn finished_at(p: &Pod) -> Option<jiff::Timestamp> {
    p.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
        .or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
}

/// The failure counts a replacement of the failed pod `p` carries (upstream's
/// `getNewIndexFailureCounts`): one more counted or one more ignored failure.
fn next_failure_counts(rules: &[PodFailurePolicyRule], p: &Pod) -> (i32, i32) {
    let (failed, ignored) = (
        annotation_count(p, INDEX_FAILURE_COUNT),
        annotation_count(p, INDEX_IGNORED_FAILURE_COUNT),
    );
    match match_policy(rules, p) {
        PolicyAction::Ignore => (failed, ignored.saturating_add(1)),
        _ => (failed.saturating_add(1), ignored),
    }
}

/// Upstream's `matchSuccessPolicy`: the message of the first rule the succeeded indexes
/// satisfy.
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &BTreeSet<i32>,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(ix), count) => {
                let required: BTreeSet<i32> = parse_indexes(ix)
                    .into_iter()
                    .filter(|i| *i < completions)
                    .collect();
                if required.is_empty() {
                    continue;
                }
                let done = required.intersection(succeeded).count();
                match count {
                    Some(n) => done as i64 >= i64::from(n),
                    None => done == required.len(),
                }
            }
            (None, Some(n)) => succeeded.len() as i64 >= i64::from(n),
            (None, None) => false,
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// What a pod failure policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    FailJob(String),
    FailIndex,
    Ignore,
    Count,
}

/// Upstream's `matchPodFailurePolicy`: the first rule matching the failed pod decides.
pub fn match_policy(rules: &[PodFailurePolicyRule], pod: &Pod) -> PolicyAction {
    let status = pod.status.clone().unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let mut matched: Option<String> = None;
        if let Some(req) = &rule.on_exit_codes {
            for cs in status.container_statuses.iter().flatten() {
                if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    continue;
                }
                let Some(code) = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                else {
                    continue;
                };
                let hit = match req.operator.as_str() {
                    "In" => req.values.contains(&code),
                    "NotIn" => code != 0 && !req.values.contains(&code),
                    _ => false,
                };
                if hit {
                    matched = Some(format!(
                        "Container {} for pod {}/{} failed with exit code {code} matching {} rule at index {i}",
                        cs.name,
                        pod.namespace().unwrap_or_default(),
                        pod.name_any(),
                        rule.action
                    ));
                    break;
                }
            }
        }
        for pat in rule.on_pod_conditions.iter().flatten() {
            let want = pat.status.as_str();
            if status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == pat.type_ && c.status == want)
            {
                matched = Some(format!(
                    "Pod {}/{} has condition {} matching {} rule at index {i}",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any(),
                    pat.type_,
                    rule.action
                ));
            }
        }
        if let Some(msg) = matched {
            return match rule.action.as_str() {
                "FailJob" => PolicyAction::FailJob(msg),
                "FailIndex" => PolicyAction::FailIndex,
                "Ignore" => PolicyAction::Ignore,
                _ => PolicyAction::Count,
            };
        }
    }
    PolicyAction::Count
}

fn condition(st: &JobStatus, type_: &str) -> Option<JobCondition> {
    st.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

fn set_condition(
    st: &mut JobStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Some(now.clone());
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(now.clone());
        return;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    });
}

/// Syncs one Job.
pub async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Option<Duration>, Error> {
    let Some(job) = ctx.jobs.get(&key) else {
        ctx.expectations(Kind::Job).delete(&key);
        ctx.job_backoffs.lock().remove(&key);
        ctx.job_backoffs.counted().remove(&key);
        ctx.job_backoffs.written().remove(&key);
        return release_orphans(&ctx, &key, None).await.map(|_| None);
    };
    if job
        .spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_some_and(|m| m != MANAGED_BY)
    {
        // Another controller owns this Job's pods and status.
        return Ok(None);
    }
    if ctx.job_backoffs.behind(&key, &job) {
        return Ok(None);
    }
    release_orphans(&ctx, &key, job.metadata.uid.as_deref()).await?;
    let spec = job.spec.clone().unwrap_or_default();
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let now = ctx.now();
    let now_t = Time(now);
    let mut st = job.status.clone().unwrap_or_default();
    let old_st = st.clone();
    let finished = condition(&st, "Complete").is_some() || condition(&st, "Failed").is_some();

    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    let owner = Owner {
        reference: ownership::controller_ref(job.as_ref()),
        selector: &selector,
        deleting: job.metadata.deletion_timestamp.is_some() || finished,
    };
    let owned = ownership::claim(&ctx.client, &ns, &owner, ctx.pods_in(&ns), || {
        ownership::recheck_owner(&api, &name, &uid)
    })
    .await?;

    if job.metadata.deletion_timestamp.is_some() {
        // Being deleted: its pods must not keep the finalizer.
        release(&pods_api, owned.iter().filter(|p| has_finalizer(p))).await?;
        return Ok(None);
    }
    let counted_before: std::collections::HashSet<String> = ctx
        .job_backoffs
        .counted()
        .get(&key)
        .cloned()
        .unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1);
    let per_index = indexed && spec.backoff_limit_per_index.is_some();
    let index_limit = spec.backoff_limit_per_index.unwrap_or(0);
    let backoff_limit = spec
        .backoff_limit
        .unwrap_or(if per_index { i32::MAX } else { 6 });
    let replace_failed_only = spec.pod_replacement_policy.as_deref() == Some("Failed");
    let rules = spec
        .pod_failure_policy
        .as_ref()
        .map(|p| p.rules.clone())
        .unwrap_or_default();

    let is_failed = |p: &Pod| {
        pods::phase(p) == "Failed"
            || (!replace_failed_only
                && p.metadata.deletion_timestamp.is_some()
                && pods::phase(p) != "Succeeded")
    };
    let is_succeeded = |p: &Pod| pods::phase(p) == "Succeeded";
    let active: Vec<Arc<Pod>> = owned
        .iter()
        .filter(|p| pods::is_active(p))
        .cloned()
        .collect();
    let terminating = owned
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_some()
                && !matches!(pods::phase(p), "Succeeded" | "Failed")
        })
        .count() as i32;

    // 1. Record newly finished pods that still hold the finalizer as uncounted.
    let mut uncounted = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_s: BTreeSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut unc_f: BTreeSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut completed: BTreeSet<i32> = st
        .completed_indexes
        .as_deref()
        .map(parse_indexes)
        .unwrap_or_default();
    let mut failure: Option<(String, String)> = condition(&st, "FailureTarget")
        .map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()));
    let success_met = condition(&st, "SuccessCriteriaMet").is_some();
    let mut failed_indexes: BTreeSet<i32> = st
        .failed_indexes
        .as_deref()
        .map(parse_indexes)
        .unwrap_or_default();
    // Once the Job is ending, the pods it terminates fail no index.
    let track_indexes = per_index && failure.is_none() && !success_met;
    let mut new_failures = 0u32;
    let mut to_release: Vec<Arc<Pod>> = Vec::new();
    for p in &owned {
        if !has_finalizer(p) {
            continue;
        }
        let puid = p.metadata.uid.clone().unwrap_or_default();
        if counted_before.contains(&puid) {
            // Counted already; the cache has not caught up with its finalizer removal.
            if is_succeeded(p) || is_failed(p) {
                to_release.push(p.clone());
            }
            continue;
        }
        if is_succeeded(p) {
            if !unc_s.contains(&puid) {
                unc_s.insert(puid);
            }
            // Its index is recorded with it (the pod may be gone by the time it is counted).
            if indexed && let Some(i) = index_of(p) {
                completed.insert(i);
            }
            to_release.push(p.clone());
        } else if is_failed(p)
            && (pods::phase(p) == "Failed" || p.metadata.deletion_timestamp.is_some())
        {
            if !unc_f.contains(&puid) {
                match match_policy(&rules, p) {
                    PolicyAction::Ignore => {
                        to_release.push(p.clone());
                        continue;
                    }
                    PolicyAction::FailJob(msg) => {
                        if failure.is_none() {
                            failure = Some(("PodFailurePolicy".into(), msg));
                        }
                    }
                    PolicyAction::FailIndex => {
                        if track_indexes && let Some(i) = index_of(p) {
                            failed_indexes.insert(i);
                        }
                    }
                    PolicyAction::Count => {
                        if track_indexes
                            && annotation_count(p, INDEX_FAILURE_COUNT) >= index_limit
                            && let Some(i) = index_of(p)
                        {
                            failed_indexes.insert(i);
                        }
                    }
                }
                unc_f.insert(puid);
                new_failures += 1;
            }
            to_release.push(p.clone());
        }
    }
    if new_failures > 0 {
        let mut b = ctx.job_backoffs.lock();
        let e = b.entry(key.clone()).or_insert((0, now));
        e.0 += new_failures;
        e.1 = now;
    }
    uncounted.succeeded = Some(unc_s.iter().cloned().collect());
    uncounted.failed = Some(unc_f.iter().cloned().collect());
    st.uncounted_terminated_pods = Some(uncounted.clone());
    if indexed {
        let c = completions.unwrap_or(0);
        completed.retain(|i| *i >= 0 && *i < c);
        st.completed_indexes = Some(format_indexes(&completed));
    }
    if per_index {
        // Written with the pods that failed them, so a retried sync never loses one.
        let c = completions.unwrap_or(0);
        failed_indexes.retain(|i| *i >= 0 && *i < c);
        st.failed_indexes = Some(format_indexes(&failed_indexes));
    }
    let mut rv = job.resource_version();
    if serde_json::to_value(&st).ok() != serde_json::to_value(&old_st).ok() {
        (st, rv) = write_status(&api, &job, rv, st).await?;
        ctx.job_backoffs.note_written(&key, &job, rv.as_deref());
    }
    // 2. Release their finalizers, 3. move them into the counters.
    release(&pods_api, to_release.iter()).await?;
    let released: BTreeSet<String> = to_release
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let still_held = |u: &String| {
        owned.iter().any(|p| {
            p.metadata.uid.as_ref() == Some(u) && has_finalizer(p) && !released.contains(u)
        })
    };
    let mut succeeded = st.succeeded.unwrap_or(0);
    let mut failed = st.failed.unwrap_or(0);
    let mut newly_counted = Vec::new();
    for u in unc_s.clone() {
        if !still_held(&u) {
            unc_s.remove(&u);
            newly_counted.push(u.clone());
            succeeded += 1;
            if indexed
                && let Some(i) = owned
                    .iter()
                    .find(|p| p.metadata.uid.as_ref() == Some(&u))
                    .and_then(|p| index_of(p))
            {
                completed.insert(i);
            }
        }
    }
    for u in unc_f.clone() {
        if !still_held(&u) {
            unc_f.remove(&u);
            newly_counted.push(u);
            failed += 1;
        }
    }
    if indexed {
        // An index that still has a succeeded pod is done, whatever a status read from a
        // cache behind the controller's own writes says: no second pod is made for it.
        completed.extend(
            owned
                .iter()
                .filter(|p| is_succeeded(p))
                .filter_map(|p| index_of(p)),
        );
        let c = completions.unwrap_or(0);
        completed.retain(|i| *i >= 0 && *i < c);
        // As upstream, an Indexed Job's `succeeded` counts succeeded indexes (a duplicate
        // pod of an index is not a second completion).
        succeeded = completed.len() as i32 - unc_s.len() as i32;
        succeeded = succeeded.max(0);
    }
    st.succeeded = Some(succeeded);
    st.failed = Some(failed);
    st.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(unc_s.iter().cloned().collect()),
        failed: Some(unc_f.iter().cloned().collect()),
    });
    if indexed {
        let c = completions.unwrap_or(0);
        completed.retain(|i| *i >= 0 && *i < c);
        st.completed_indexes = Some(format_indexes(&completed));
    }
    let total_failed = failed + unc_f.len() as i32;
    let total_succeeded = succeeded + unc_s.len() as i32;

    let exp = ctx.expectations(Kind::Job);
    let mut requeue: Option<Duration> = None;
    let mut manage_err = None;
    if !finished {
        let suspended = spec.suspend == Some(true);
        // Suspension.
        if suspended {
            if condition(&st, "Suspended").is_none() {
                set_condition(
                    &mut st,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    &now_t,
                );
                ctx.recorder.event(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Suspended",
                    "Job suspended".into(),
                );
            }
            st.start_time = None;
        } else {
            if st
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Suspended" && c.status == "True")
            {
                set_condition(
                    &mut st,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_t,
                );
                ctx.recorder.event(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Resumed",
                    "Job resumed".into(),
                );
            }
            if st.start_time.is_none() {
                st.start_time = Some(now_t.clone());
            }
        }
        // Failure criteria (none once success criteria were met).
        if failure.is_none() && !success_met && total_failed > backoff_limit {
            failure = Some((
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        }
        if failure.is_none()
            && !success_met
            && !suspended
            && let (Some(ads), Some(start)) = (spec.active_deadline_seconds, st.start_time.as_ref())
        {
            let due = start.0.as_millisecond() + ads * 1000;
            if now.as_millisecond() >= due {
                failure = Some((
                    "DeadlineExceeded".into(),
                    "Job was active longer than specified deadline".into(),
                ));
            } else {
                requeue = Some(Duration::from_millis((due - now.as_millisecond()) as u64));
            }
        }
        if per_index && failure.is_none() && !success_met {
            let c = completions.unwrap_or(0);
            let n_failed = failed_indexes.len() as i64;
            if spec
                .max_failed_indexes
                .is_some_and(|m| n_failed > i64::from(m))
            {
                failure = Some((
                    "MaxFailedIndexesExceeded".into(),
                    "Job has exceeded the specified maximal number of failed indexes".into(),
                ));
            } else if n_failed > 0 && n_failed + completed.len() as i64 >= i64::from(c) {
                failure = Some(("FailedIndexes".into(), "Job has failed indexes".into()));
            }
        }
        // Success criteria: a success policy first, then completions.
        let policy_met = match (indexed, completions) {
            (true, Some(c)) => match_success_policy(spec.success_policy.as_ref(), c, &completed),
            _ => None,
        };
        let success = match (indexed, completions) {
            (true, Some(c)) => completed.len() as i32 >= c,
            (false, Some(c)) => total_succeeded >= c,
            (_, None) => total_succeeded > 0 && active.is_empty(),
        };
        if let Some((reason, message)) = &failure {
            if condition(&st, "FailureTarget").is_none() {
                set_condition(&mut st, "FailureTarget", "True", reason, message, &now_t);
            }
        } else if !success_met {
            if let Some(msg) = &policy_met {
                set_condition(
                    &mut st,
                    "SuccessCriteriaMet",
                    "True",
                    "SuccessPolicy",
                    msg,
                    &now_t,
                );
            } else if success {
                let msg = "Reached expected number of succeeded pods";
                set_condition(
                    &mut st,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    msg,
                    &now_t,
                );
            }
        }
        let ending = failure.is_some() || condition(&st, "SuccessCriteriaMet").is_some();
        if ending || suspended {
            // No pod may keep running.
            if exp.satisfied(&key) && !active.is_empty() {
                manage_err = delete_pods(&ctx, &job, &key, active.clone()).await.err();
            }
            let drained =
                active.is_empty() && terminating == 0 && unc_s.is_empty() && unc_f.is_empty();
            if drained && let Some((reason, message)) = &failure {
                set_condition(&mut st, "Failed", "True", reason, message, &now_t);
                ctx.recorder
                    .event(COMPONENT, job.as_ref(), WARNING, reason, message.clone());
            } else if drained && !suspended && failure.is_none() {
                // Complete carries the reason the success criteria were met for.
                let (reason, msg) = condition(&st, "SuccessCriteriaMet")
                    .map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
                    .unwrap_or_else(|| {
                        (
                            "CompletionsReached".into(),
                            "Reached expected number of succeeded pods".into(),
                        )
                    });
                set_condition(&mut st, "Complete", "True", &reason, &msg, &now_t);
                st.completion_time = Some(now_t.clone());
                ctx.recorder.event(
                    COMPONENT,
                    job.as_ref(),
                    NORMAL,
                    "Completed",
                    "Job completed".into(),
                );
            }
        } else if exp.satisfied(&key) {
            // Backoff before replacing failed pods.
            let (fails, last) = ctx
                .job_backoffs
                .lock()
                .get(&key)
                .copied()
                .unwrap_or((0, now));
            let delay = backoff_delay(
                fails,
                ctx.config.job_backoff_base,
                ctx.config.job_backoff_max,
            );
            let ready_at = last.as_millisecond() + delay.as_millis() as i64;
            let wait = ready_at - now.as_millisecond();
            // With per-index limits each index waits out its own backoff instead.
            let can_create = per_index || fails == 0 || wait <= 0;
            if !can_create {
                let d = Duration::from_millis(wait as u64);
                requeue = Some(requeue.map_or(d, |r| r.min(d)));
            }
            let retries = if per_index {
                index_retries(&ctx, &owned, &rules, &is_failed)
            } else {
                HashMap::new()
            };
            let plan = Plan {
                completed: &completed,
                failed_indexes: &failed_indexes,
                retries: &retries,
                per_index,
                now,
            };
            let (res, wait) = manage(
                &ctx,
                &job,
                &key,
                &active,
                &plan,
                total_succeeded,
                can_create,
                indexed,
                completions,
                parallelism,
            )
            .await;
            manage_err = res.err();
            if let Some(d) = wait {
                requeue = Some(requeue.map_or(d, |r| r.min(d)));
            }
        }
    }

    let n_active = owned.iter().filter(|p| pods::is_active(p)).count() as i32;
    st.active = Some(n_active);
    st.ready = Some(active.iter().filter(|p| pods::is_ready(p)).count() as i32);
    st.terminating = Some(terminating);
    for f in [&mut st.active, &mut st.succeeded, &mut st.failed] {
        if *f == Some(0) {
            *f = None;
        }
    }
    if serde_json::to_value(&st).ok() != serde_json::to_value(&job.status).ok() {
        let (_, rv) = write_status(&api, &job, rv, st).await?;
        ctx.job_backoffs.note_written(&key, &job, rv.as_deref());
    }
    if !newly_counted.is_empty() {
        ctx.job_backoffs
            .counted()
            .entry(key.clone())
            .or_default()
            .extend(newly_counted);
    }
    if let Some(e) = manage_err {
        return Err(e);
    }
    Ok(requeue)
}

/// Removes the tracking finalizer from pods whose Job (named by `key`) is gone, so they
/// can be deleted (upstream does this for orphaned pods too).
async fn release_orphans(ctx: &Ctx, key: &str, live_uid: Option<&str>) -> Result<(), Error> {
    let Some((ns, name)) = key.split_once('/') else {
        return Ok(());
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = ctx.pods_in(ns);
    let orphaned = pods.iter().filter(|p| {
        has_finalizer(p)
            && crate::ownership::controller_of(p.as_ref()).is_some_and(|r| {
                r.kind == "Job" && r.name == name && Some(r.uid.as_str()) != live_uid
            })
    });
    release(&api, orphaned).await
}

/// Whether `pod` holds the tracking finalizer for a Job that no longer exists.
pub fn orphaned_job_pod(ctx: &Ctx, pod: &Pod) -> Option<String> {
    let r = crate::ownership::controller_of(pod)?;
    if r.kind != "Job" || !has_finalizer(pod) {
        return None;
    }
    let key = format!("{}/{}", pod.namespace().unwrap_or_default(), r.name);
    let live = ctx
        .jobs
        .get(&key)
        .is_some_and(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()));
    (!live).then_some(key)
}

/// Removes the tracking finalizer from `pods` (guarded by their resourceVersion).
async fn release(api: &Api<Pod>, pods: impl Iterator<Item = &Arc<Pod>>) -> Result<(), Error> {
    for p in pods {
        let finalizers: Vec<String> = p
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .cloned()
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": p.resource_version()}});
        match api
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Writes the status as a merge patch guarded by `rv` (the Job as this sync read it), so a
/// sync from a stale cache fails with a conflict instead of undoing newer counts.
async fn write_status(
    api: &Api<Job>,
    job: &Job,
    rv: Option<String>,
    st: JobStatus,
) -> Result<(JobStatus, Option<String>), Error> {
    // A merge patch: absent fields must be sent as null to be cleared.
    let mut v = serde_json::to_value(&st).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "active",
            "succeeded",
            "failed",
            "startTime",
            "completionTime",
            "completedIndexes",
        ] {
            o.entry(k).or_insert(serde_json::Value::Null);
        }
    }
    let patch = json!({ "metadata": {"resourceVersion": rv}, "status": v });
    let j = api
        .patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    let rv = j.resource_version();
    Ok((j.status.unwrap_or(st), rv))
}

async fn delete_pods(ctx: &Ctx, job: &Job, key: &str, victims: Vec<Arc<Pod>>) -> Result<(), Error> {
    let exp = ctx.expectations(Kind::Job);
    exp.expect(key, 0, victims.iter().map(|p| key_of(p.as_ref())));
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let mut err = None;
    for p in victims {
        let name = p.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => ctx.recorder.event(
                COMPONENT,
                job,
                NORMAL,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            ),
            Err(e) => {
                exp.deletion_observed(key, &key_of(p.as_ref()));
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    err.get_or_insert(e);
                }
            }
        }
    }
    err.map_or(Ok(()), |e| Err(e.into()))
}

/// A failed index's next attempt: its failure counts and when its backoff ends.
#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: i32,
    ignored: i32,
    ready_at: jiff::Timestamp,
}

/// Per index with failed pods, the attempt that replaces the last of them.
fn index_retries(
    ctx: &Ctx,
    owned: &[Arc<Pod>],
    rules: &[PodFailurePolicyRule],
    is_failed: &dyn Fn(&Pod) -> bool,
) -> HashMap<i32, Retry> {
    let mut out: HashMap<i32, Retry> = HashMap::new();
    for p in owned.iter().filter(|p| is_failed(p)) {
        let Some(i) = index_of(p) else { continue };
        let (failures, ignored) = next_failure_counts(rules, p);
        if out
            .get(&i)
            .is_some_and(|r| r.failures + r.ignored >= failures + ignored)
        {
            continue;
        }
        let delay = if failures > annotation_count(p, INDEX_FAILURE_COUNT) {
            backoff_delay(
                failures as u32,
                ctx.config.job_backoff_base,
                ctx.config.job_backoff_max,
            )
        } else {
            Duration::ZERO
        };
        let finished = finished_at(p).unwrap_or_else(|| ctx.now());
        let ready_at = finished
            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
            .unwrap_or(finished);
        out.insert(
            i,
            Retry {
                failures,
                ignored,
                ready_at,
            },
        );
    }
    out
}

/// What decides which indexes get pods.
struct Plan<'a> {
    completed: &'a BTreeSet<i32>,
    failed_indexes: &'a BTreeSet<i32>,
    retries: &'a HashMap<i32, Retry>,
    per_index: bool,
    now: jiff::Timestamp,
}

/// Creates or deletes pods towards the wanted number of active pods; returns when to
/// look again if an index is still backing off.
#[allow(clippy::too_many_arguments)]
async fn manage(
    ctx: &Ctx,
    job: &Job,
    key: &str,
    active: &[Arc<Pod>],
    plan: &Plan<'_>,
    succeeded: i32,
    can_create: bool,
    indexed: bool,
    completions: Option<i32>,
    parallelism: i32,
) -> (Result<(), Error>, Option<Duration>) {
    let n_active = active.len() as i32;
    let done = (plan.completed.len() + plan.failed_indexes.len()) as i32;
    let want = match completions {
        None if succeeded > 0 => n_active.min(parallelism),
        None => parallelism,
        Some(c) if indexed => (c - done).clamp(0, parallelism),
        Some(c) => (c - succeeded).clamp(0, parallelism),
    };
    if n_active > want {
        let mut ranked = active.to_vec();
        pods::deletion_order(&mut ranked);
        ranked.truncate((n_active - want) as usize);
        return (delete_pods(ctx, job, key, ranked).await, None);
    }
    if n_active >= want || !can_create {
        return (Ok(()), None);
    }
    let mut indexes: Vec<Option<i32>> = Vec::new();
    let mut wait: Option<Duration> = None;
    let n = ((want - n_active) as usize).min(BURST_REPLICAS);
    if indexed {
        let busy: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        indexes = (0..completions.unwrap_or(0))
            .filter(|i| {
                !plan.completed.contains(i) && !plan.failed_indexes.contains(i) && !busy.contains(i)
            })
            .filter(|i| match plan.retries.get(i) {
                Some(r) if plan.per_index && r.ready_at > plan.now => {
                    let left = r.ready_at.duration_since(plan.now).unsigned_abs();
                    wait = Some(wait.map_or(left, |w| w.min(left)));
                    false
                }
                _ => true,
            })
            .take(n)
            .map(Some)
            .collect();
    } else {
        indexes.resize(n, None);
    }
    let exp = ctx.expectations(Kind::Job);
    exp.expect(key, indexes.len(), []);
    let ns = job.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let (_, err, skipped) = pods::slow_start(indexes.len(), |i| {
        let index = indexes[i];
        let name = job.name_any();
        let generate = match index {
            Some(ix) => format!("{name}-{ix}-"),
            None => format!("{name}-"),
        };
        let mut pod = pods::from_template(&template, &ns, generate, ownership::controller_ref(job));
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some(ix) = index {
            pod.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), ix.to_string());
            pod.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(COMPLETION_INDEX.into(), ix.to_string());
            if plan.per_index {
                let r = plan.retries.get(&ix);
                let annotations = pod
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default);
                annotations.insert(
                    INDEX_FAILURE_COUNT.into(),
                    r.map_or(0, |r| r.failures).to_string(),
                );
                if let Some(r) = r.filter(|r| r.ignored > 0) {
                    annotations.insert(INDEX_IGNORED_FAILURE_COUNT.into(), r.ignored.to_string());
                }
            }
            let spec = pod.spec.get_or_insert_with(Default::default);
            spec.hostname = Some(format!("{name}-{ix}"));
            let env = EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                    }),
                    ..Default::default()
                }),
            };
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                let envs = c.env.get_or_insert_with(Vec::new);
                if !envs.iter().any(|e| e.name == env.name) {
                    envs.push(env.clone());
                }
            }
        }
        let api = &api;
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    ctx.recorder.event(
                        COMPONENT,
                        job,
                        NORMAL,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                    Ok(())
                }
                Err(e) => {
                    exp.creation_observed(key);
                    ctx.recorder.event(
                        COMPONENT,
                        job,
                        WARNING,
                        "FailedCreate",
                        format!("Error creating: {}", crate::api_message(&e)),
                    );
                    Err(e)
                }
            }
        }
    })
    .await;
    for _ in 0..skipped {
        exp.creation_observed(key);
    }
    (err.map_or(Ok(()), |e| Err(e.into())), wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_cap() {
        let (b, m) = (Duration::from_secs(10), Duration::from_secs(360));
        assert_eq!(backoff_delay(0, b, m), Duration::ZERO);
        assert_eq!(backoff_delay(1, b, m), Duration::from_secs(10));
        assert_eq!(backoff_delay(3, b, m), Duration::from_secs(40));
        assert_eq!(backoff_delay(6, b, m), Duration::from_secs(320));
        assert_eq!(backoff_delay(7, b, m), Duration::from_secs(360));
        assert_eq!(backoff_delay(100, b, m), Duration::from_secs(360));
    }

    #[test]
    fn index_ranges_round_trip() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7"), set);
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn failure_policy_first_match_wins() {
        let rules: Vec<PodFailurePolicyRule> = serde_json::from_value(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]))
        .unwrap();
        let pod = |code: i32, disrupted: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "status": {
                    "phase": "Failed",
                    "conditions": if disrupted { json!([{"type": "DisruptionTarget", "status": "True"}]) } else { json!([]) },
                    "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                        "state": {"terminated": {"exitCode": code}}}],
                },
            }))
            .unwrap()
        };
        assert_eq!(
            match_policy(&rules, &pod(42, false)),
            PolicyAction::FailJob("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into())
        );
        assert_eq!(match_policy(&rules, &pod(42, true)), PolicyAction::Ignore);
        assert_eq!(match_policy(&rules, &pod(1, false)), PolicyAction::Count);
    }
}
