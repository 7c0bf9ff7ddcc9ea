//! CronJobs: a `* * * * *` CronJob fires at the next minute boundary (the controllers' clock
//! is shifted so that boundary is a second or two away, instead of sleeping up to a
//! minute), its Job is named `<cronjob>-<scheduled minutes since epoch>`, status follows the
//! Job to completion; `kubectl create job --from=cronjob/x` works.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::Api;
use kube::api::PostParams;
use rkube_workloads::Config;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_on_schedule_and_manual_jobs() {
    // Shift the clock forward so that "now" is hh:mm:58.5.
    let offset = loop {
        let ms = Timestamp::now().as_millisecond().rem_euclid(60_000);
        let o = (58_500 - ms).rem_euclid(60_000);
        if o <= 57_000 {
            break SignedDuration::from_millis(o);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let clock: rkube_workloads::Clock = Arc::new(move || {
        Timestamp::now()
            .checked_add(offset)
            .unwrap_or(Timestamp::now())
    });
    let c = cluster_with(
        1,
        Config {
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .await;
    let cjs: Api<CronJob> = Api::namespaced(c.client.clone(), "default");
    let cj: CronJob = apply(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "timeZone": "Etc/UTC",
            "jobTemplate": {"spec": {"template": {
                "metadata": {"annotations": {"fake.rkube.io/run-seconds": "0.1"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]},
            }}},
        },
    }));
    cjs.create(&PostParams::default(), &cj).await.unwrap();
    let boundary_min = clock().as_second().div_euclid(60) + 1;
    let expected = format!("tick-{boundary_min}");
    let jobs: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let job = eventually("the scheduled job", 30, async || {
        jobs.get(&expected).await.ok()
    })
    .await;
    // Not before its time.
    assert!(clock().as_second() >= boundary_min * 60);
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("CronJob", "tick", Some(true))
    );
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        Timestamp::from_second(boundary_min * 60)
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string()
    );
    let st = eventually("completion seen", 60, async || {
        let st = cjs.get("tick").await.ok()?.status?;
        (st.last_successful_time.is_some() && st.active.is_none()).then_some(st)
    })
    .await;
    assert_eq!(
        st.last_schedule_time.unwrap().0.as_second(),
        boundary_min * 60
    );
    let evs = events(&c.client, "default", "tick").await;
    assert!(
        evs.iter().any(|e| e.0 == "SuccessfulCreate"
            && e.1 == format!("Created job {expected}")
            && e.2 == "cronjob-controller"),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| e.0 == "SawCompletedJob"
            && e.1 == format!("Saw completed job: {expected}, condition: Complete")),
        "{evs:?}"
    );

    // A manual run from the template.
    kubectl(&c, &["create", "job", "--from=cronjob/tick", "by-hand"]);
    kubectl(
        &c,
        &[
            "wait",
            "--for=condition=complete",
            "job/by-hand",
            "--timeout=60s",
        ],
    );
    let manual = jobs.get("by-hand").await.unwrap();
    assert_eq!(
        manual.metadata.owner_references.as_ref().unwrap()[0].name,
        "tick"
    );
    assert_eq!(
        manual.metadata.annotations.as_ref().unwrap()["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
}
