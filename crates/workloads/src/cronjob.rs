//! The CronJob controller (upstream's v2): at each scheduled time (in `spec.timeZone`, UTC
//! by default) it creates a Job `<cronjob>-<scheduled minutes since the epoch>` from the
//! jobTemplate — unless suspended, too late for `startingDeadlineSeconds`, or
//! `concurrencyPolicy: Forbid` with a Job still running (`Replace` deletes the running
//! ones first) — and keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`,
//! deleting finished Jobs beyond the successful/failed history limits. Jobs it did not
//! create but owns (`kubectl create job --from=cronjob/x`) are tracked the same way.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use crate::Error;
use crate::context::{BY_NAMESPACE, Ctx};
use crate::cron::Schedule;
use crate::ownership::{self, controller_of};
use rkube_client::events::{NORMAL, WARNING};

const COMPONENT: &str = "cronjob-controller";
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The Job's finished condition ("Complete" or "Failed"), if any.
fn finished(j: &Job) -> Option<&'static str> {
    let conds = j.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"]
        .into_iter()
        .find(|t| conds.iter().any(|c| c.type_ == *t && c.status == "True"))
}

/// The most recent schedule time in (earliest, now] and how many were missed.
fn most_recent(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut last = None;
    let mut missed = 0;
    let mut t = earliest;
    // Far behind: only the last day matters for which time is most recent.
    if now.as_second() - earliest.as_second() > 86_400 * 2 {
        missed = 101;
        t = Timestamp::from_second(now.as_second() - 86_400).unwrap_or(earliest);
    }
    while let Some(n) = schedule.next(t, tz) {
        if n > now {
            break;
        }
        last = Some(n);
        missed += 1;
        t = n;
    }
    (last, missed)
}

fn job_ref(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: Some(j.name_any()),
        namespace: j.namespace(),
        uid: j.metadata.uid.clone(),
        resource_version: j.resource_version(),
        field_path: None,
    }
}

/// Syncs one CronJob.
pub async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Option<Duration>, Error> {
    let Some(cj) = ctx.cronjobs.get(&key) else {
        return Ok(None);
    };
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let spec = cj.spec.clone().unwrap_or_default();
    let ns = cj.namespace().unwrap_or_default();
    let name = cj.name_any();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let now = ctx.now();
    let event = |t: &str, reason: &str, msg: String| {
        ctx.recorder.event(COMPONENT, cj.as_ref(), t, reason, msg)
    };
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let cj_api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);

    let mut jobs: Vec<Arc<Job>> = ctx
        .jobs
        .by_index(BY_NAMESPACE, &ns)
        .into_iter()
        .filter(|j| controller_of(j.as_ref()).is_some_and(|r| r.uid == uid))
        .collect();
    jobs.sort_by_key(|j| j.metadata.creation_timestamp.clone().map(|t| t.0));
    let old = cj.status.clone().unwrap_or_default();
    let mut st: CronJobStatus = old.clone();
    let mut active: Vec<ObjectReference> = st.active.clone().unwrap_or_default();

    // Reconcile the active list with the Jobs.
    for j in &jobs {
        let in_list = active.iter().any(|r| r.uid == j.metadata.uid);
        match finished(j) {
            Some(cond) if in_list => {
                active.retain(|r| r.uid != j.metadata.uid);
                event(
                    NORMAL,
                    "SawCompletedJob",
                    format!("Saw completed job: {}, condition: {cond}", j.name_any()),
                );
            }
            None if !in_list => active.push(job_ref(j)),
            _ => {}
        }
        if finished(j) == Some("Complete")
            && let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.clone())
            && st
                .last_successful_time
                .as_ref()
                .is_none_or(|t| t.0 < done.0)
        {
            st.last_successful_time = Some(done);
        }
    }
    active.retain(|r| {
        let exists = jobs.iter().any(|j| j.metadata.uid == r.uid);
        if !exists {
            event(
                NORMAL,
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    r.name.clone().unwrap_or_default()
                ),
            );
        }
        exists
    });

    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(z) => match TimeZone::get(z) {
            Ok(tz) => tz,
            Err(_) => {
                event(
                    WARNING,
                    "UnknownTimeZone",
                    format!("invalid timeZone: {z:?}: unknown time zone {z}"),
                );
                return write(&cj_api, &cj, st, active, &old).await.map(|_| None);
            }
        },
    };
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            event(
                WARNING,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            return write(&cj_api, &cj, st, active, &old).await.map(|_| None);
        }
    };
    let next_after = |t: Timestamp| {
        schedule.next(t, &tz).map(|n| {
            let ms = n.as_millisecond() - now.as_millisecond() + 100;
            Duration::from_millis(ms.max(100) as u64)
        })
    };

    if spec.suspend == Some(true) {
        write(&cj_api, &cj, st, active, &old).await?;
        return Ok(None);
    }
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = st
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(created);
    if let Some(sds) = spec.starting_deadline_seconds {
        let floor = Timestamp::from_second(now.as_second() - sds).unwrap_or(earliest);
        if floor > earliest {
            earliest = floor;
        }
    }
    let (scheduled, missed) = most_recent(&schedule, &tz, earliest, now);
    if missed > 100 {
        event(
            WARNING,
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
        );
    }
    let Some(scheduled) = scheduled else {
        write(&cj_api, &cj, st, active, &old).await?;
        return Ok(next_after(now));
    };
    if let Some(sds) = spec.starting_deadline_seconds
        && scheduled.as_second() + sds < now.as_second()
    {
        event(
            WARNING,
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                scheduled.to_zoned(tz.clone())
            ),
        );
        write(&cj_api, &cj, st, active, &old).await?;
        return Ok(next_after(now));
    }
    let job_name = format!("{name}-{}", scheduled.as_second() / 60);
    let already = jobs.iter().any(|j| j.name_any() == job_name);
    if already {
        write(&cj_api, &cj, st, active, &old).await?;
        return Ok(next_after(now));
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        event(
            NORMAL,
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        );
        write(&cj_api, &cj, st, active, &old).await?;
        return Ok(next_after(now));
    }
    if policy == "Replace" {
        for r in std::mem::take(&mut active) {
            let jname = r.name.clone().unwrap_or_default();
            match jobs_api.delete(&jname, &DeleteParams::background()).await {
                Ok(_) => event(NORMAL, "SuccessfulDelete", format!("Deleted job {jname}")),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    event(
                        WARNING,
                        "FailedDelete",
                        format!("Deleted job: {}", crate::api_message(&e)),
                    );
                    return Err(e.into());
                }
            }
        }
    }
    // Create the Job.
    let tpl = spec.job_template.clone();
    let tmeta = tpl.metadata.clone().unwrap_or_default();
    let mut annotations = tmeta.annotations.clone().unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    );
    let job = Job {
        metadata: ObjectMeta {
            name: Some(job_name.clone()),
            namespace: Some(ns.clone()),
            labels: tmeta.labels.clone(),
            annotations: Some(annotations),
            owner_references: Some(vec![ownership::controller_ref(cj.as_ref())]),
            ..Default::default()
        },
        spec: tpl.spec.clone(),
        status: None,
    };
    match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            event(
                NORMAL,
                "SuccessfulCreate",
                format!("Created job {job_name}"),
            );
            active.push(job_ref(&j));
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => {
            event(
                WARNING,
                "FailedCreate",
                format!("Error creating job: {}", crate::api_message(&e)),
            );
            return Err(e.into());
        }
    }
    st.last_schedule_time = Some(Time(scheduled));
    write(&cj_api, &cj, st, active, &old).await?;
    cleanup(&ctx, &cj, &jobs, &jobs_api).await?;
    Ok(next_after(now))
}

async fn write(
    api: &Api<CronJob>,
    cj: &CronJob,
    mut st: CronJobStatus,
    active: Vec<ObjectReference>,
    old: &CronJobStatus,
) -> Result<(), Error> {
    st.active = (!active.is_empty()).then_some(active);
    if serde_json::to_value(&st).ok() == serde_json::to_value(old).ok() {
        return Ok(());
    }
    let mut copy = cj.clone();
    copy.status = Some(st);
    match api
        .replace_status(&cj.name_any(), &PostParams::default(), &copy)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the oldest finished Jobs beyond the history limits.
async fn cleanup(ctx: &Ctx, cj: &CronJob, jobs: &[Arc<Job>], api: &Api<Job>) -> Result<(), Error> {
    let spec = cj.spec.clone().unwrap_or_default();
    for (cond, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let done: Vec<&Arc<Job>> = jobs.iter().filter(|j| finished(j) == Some(cond)).collect();
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        for j in done.into_iter().take(excess) {
            match api.delete(&j.name_any(), &DeleteParams::background()).await {
                Ok(_) => ctx.recorder.event(
                    COMPONENT,
                    cj,
                    NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted job {}", j.name_any()),
                ),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_schedule_time() {
        let s = Schedule::parse("*/10 * * * *").unwrap();
        let t = |v: &str| -> Timestamp { v.parse().unwrap() };
        let (last, missed) = most_recent(
            &s,
            &TimeZone::UTC,
            t("2026-01-01T00:00:00Z"),
            t("2026-01-01T00:35:00Z"),
        );
        assert_eq!((last, missed), (Some(t("2026-01-01T00:30:00Z")), 3));
        let (last, _) = most_recent(
            &s,
            &TimeZone::UTC,
            t("2026-01-01T00:30:00Z"),
            t("2026-01-01T00:35:00Z"),
        );
        assert_eq!(last, None);
        let (last, missed) = most_recent(
            &s,
            &TimeZone::UTC,
            t("2025-01-01T00:00:00Z"),
            t("2026-01-01T00:35:00Z"),
        );
        assert_eq!(last, Some(t("2026-01-01T00:30:00Z")));
        assert!(missed > 100);
    }
}
