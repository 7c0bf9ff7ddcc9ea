//! Jobs: failures back off exponentially until backoffLimit; Indexed completion with
//! per-pod indexes; podFailurePolicy FailJob; suspend/resume; activeDeadlineSeconds; the
//! tracking finalizer is always released.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use rkube_workloads::Config;
use serde_json::json;

use crate::support::*;

fn job(name: &str, spec: serde_json::Value, annotations: serde_json::Value) -> Job {
    let mut j: Job = apply(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]},
            },
        },
    }));
    let extra: k8s_openapi::api::batch::v1::JobSpec = serde_json::from_value({
        let mut base = serde_json::to_value(j.spec.as_ref().unwrap()).unwrap();
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    })
    .unwrap();
    j.spec = Some(extra);
    j
}

fn cond(j: &Job, type_: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn job_pods(c: &Cluster, name: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    api.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_until_limit() {
    let base = Duration::from_millis(400);
    let c = cluster_with(
        1,
        Config {
            job_backoff_base: base,
            ..Default::default()
        },
    )
    .await;
    // When each pod first appears.
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Default::default();
    let s = seen.clone();
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let watch = tokio::spawn(async move {
        let stream = watcher(
            pods_api,
            watcher::Config::default().labels("batch.kubernetes.io/job-name=flaky"),
        );
        futures::pin_mut!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            if let watcher::Event::Apply(p) = ev {
                let name = p.metadata.name.clone().unwrap();
                let mut s = s.lock().unwrap();
                if !s.iter().any(|(n, _)| *n == name) {
                    s.push((name, Instant::now()));
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "flaky",
        json!({"backoffLimit": 2}),
        json!({"fake.rkube.io/run-seconds": "0.1", "fake.rkube.io/exit-code": "1"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    let done = eventually("job failed", 60, async || {
        let j = api.get("flaky").await.ok()?;
        cond(&j, "Failed").map(|_| j)
    })
    .await;
    watch.abort();
    assert_eq!(
        cond(&done, "Failed").unwrap(),
        (
            "BackoffLimitExceeded".to_string(),
            "Job has reached the specified backoff limit".to_string()
        )
    );
    assert_eq!(
        cond(&done, "FailureTarget").unwrap().0,
        "BackoffLimitExceeded"
    );
    let st = done.status.clone().unwrap();
    assert_eq!(st.failed, Some(3));
    assert_eq!(st.active, None);
    let unc = st.uncounted_terminated_pods.unwrap_or_default();
    assert!(unc.failed.unwrap_or_default().is_empty());
    let pods = job_pods(&c, "flaky").await;
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()))
    );
    // Each replacement waited at least base × 2^(failures−1).
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[1].1 - seen[0].1 >= base, "{seen:?}");
    assert!(seen[2].1 - seen[1].1 >= base * 2, "{seen:?}");
    let evs = events(&c.client, "default", "flaky").await;
    assert!(
        evs.iter()
            .any(|e| e.0 == "BackoffLimitExceeded" && e.2 == "job-controller"),
        "{evs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_completion() {
    let c = cluster(2).await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "idx",
        json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"}),
        json!({"fake.rkube.io/run-seconds": "0.2"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    kubectl(
        &c,
        &[
            "wait",
            "--for=condition=complete",
            "job/idx",
            "--timeout=60s",
        ],
    );
    let done = api.get("idx").await.unwrap();
    let st = done.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(4));
    assert_eq!(st.completed_indexes.as_deref(), Some("0-3"));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(
        cond(&done, "SuccessCriteriaMet").unwrap().0,
        "CompletionsReached"
    );
    assert_eq!(cond(&done, "Complete").unwrap().0, "CompletionsReached");
    let pods = job_pods(&c, "idx").await;
    assert_eq!(pods.len(), 4);
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| {
            let ix = p.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone();
            assert_eq!(p.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"], ix);
            assert!(p.metadata.name.as_ref().unwrap().starts_with(&format!("idx-{ix}-")));
            let spec = p.spec.as_ref().unwrap();
            assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{ix}").as_str()));
            let env = spec.containers[0].env.as_ref().unwrap().iter().find(|e| e.name == "JOB_COMPLETION_INDEX").unwrap();
            assert_eq!(
                env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path,
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
            ix
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3"]);
    let evs = events(&c.client, "default", "idx").await;
    assert!(
        evs.iter()
            .any(|e| e.0 == "Completed" && e.1 == "Job completed"),
        "{evs:?}"
    );
    let out = kubectl(&c, &["get", "job", "idx", "--no-headers"]);
    assert!(out.contains("Complete") && out.contains("4/4"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_suspend_and_deadline() {
    let c = cluster(1).await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    // podFailurePolicy: exit code 42 fails the job at once.
    let j = job(
        "policy",
        json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]}}),
        json!({"fake.rkube.io/run-seconds": "0.1", "fake.rkube.io/exit-code": "42"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    let failed = eventually("policy failure", 60, async || {
        cond(&api.get("policy").await.ok()?, "Failed")
    })
    .await;
    assert_eq!(failed.0, "PodFailurePolicy");
    assert!(
        failed
            .1
            .starts_with("Container main for pod default/policy-")
            && failed
                .1
                .ends_with("failed with exit code 42 matching FailJob rule at index 0"),
        "{failed:?}"
    );

    // Suspended: no pods until resumed.
    let j = job(
        "later",
        json!({"suspend": true}),
        json!({"fake.rkube.io/run-seconds": "0.1"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    let s = eventually("suspended", 30, async || {
        cond(&api.get("later").await.ok()?, "Suspended")
    })
    .await;
    assert_eq!(s, ("JobSuspended".to_string(), "Job suspended".to_string()));
    assert!(job_pods(&c, "later").await.is_empty());
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    let done = eventually("resumed job completes", 60, async || {
        let j = api.get("later").await.ok()?;
        cond(&j, "Complete").map(|_| j)
    })
    .await;
    let resumed = done
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Suspended")
        .unwrap();
    assert_eq!(
        (resumed.status.as_str(), resumed.reason.as_deref()),
        ("False", Some("JobResumed"))
    );

    // activeDeadlineSeconds: running pods are stopped and the job fails.
    let j = job("slow", json!({"activeDeadlineSeconds": 1}), json!({}));
    api.create(&PostParams::default(), &j).await.unwrap();
    // A deleted Job's pods do not keep its tracking finalizer.
    let j = job("gone", json!({}), json!({}));
    api.create(&PostParams::default(), &j).await.unwrap();
    let pod = eventually("running pod", 30, async || {
        job_pods(&c, "gone").await.into_iter().find(|p| {
            p.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == "batch.kubernetes.io/job-tracking"))
        })
    })
    .await;
    api.delete("gone", &kube::api::DeleteParams::background())
        .await
        .unwrap();
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pname = pod.metadata.name.clone().unwrap();
    eventually("finalizer released", 30, async || {
        let p = pods_api.get(&pname).await.ok()?;
        p.metadata
            .finalizers
            .as_ref()
            .is_none_or(|f| f.is_empty())
            .then_some(())
    })
    .await;

    let failed = eventually("deadline", 60, async || {
        cond(&api.get("slow").await.ok()?, "Failed")
    })
    .await;
    assert_eq!(
        failed,
        (
            "DeadlineExceeded".to_string(),
            "Job was active longer than specified deadline".to_string()
        )
    );
    eventually("pods stopped", 30, async || {
        job_pods(&c, "slow")
            .await
            .iter()
            .all(|p| {
                p.metadata.deletion_timestamp.is_some()
                    || p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
            })
            .then_some(())
    })
    .await;
}

/// An Indexed Job with a manual selector `app=<name>`, so the test can add a pod of its own
/// for one index before the Job starts (the Job adopts it like any orphan it selects).
fn manual_indexed(name: &str, spec: serde_json::Value, annotations: serde_json::Value) -> Job {
    let mut s = spec;
    s["manualSelector"] = json!(true);
    s["selector"] = json!({"matchLabels": {"app": name}});
    s["completionMode"] = json!("Indexed");
    let mut j = job(name, s, annotations);
    let t = &mut j.spec.as_mut().unwrap().template;
    t.metadata.get_or_insert_with(Default::default).labels =
        Some([("app".to_string(), name.to_string())].into());
    j
}

/// A pod for `index` of the Job `job` (selected by `app=<job>`), exiting `code` soon,
/// holding the tracking finalizer as the Job's own pods do.
async fn index_pod(c: &Cluster, job: &str, index: i32, run: &str, code: i32) -> String {
    let api: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let name = format!("{job}-own-{index}");
    let pod: Pod = apply(json!({
        "metadata": {
            "name": name,
            "labels": {"app": job},
            "annotations": {
                "batch.kubernetes.io/job-completion-index": index.to_string(),
                "fake.rkube.io/run-seconds": run,
                "fake.rkube.io/exit-code": code.to_string(),
            },
            "finalizers": ["batch.kubernetes.io/job-tracking"],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]},
    }));
    api.create(&PostParams::default(), &pod).await.unwrap();
    eventually("own pod running", 30, async || {
        let p = api.get(&name).await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    name
}

async fn app_pods(c: &Cluster, app: &str) -> Vec<Pod> {
    pods(&c.client, "default", app).await
}

fn annotation(p: &Pod, key: &str) -> Option<String> {
    p.metadata.annotations.as_ref()?.get(key).cloned()
}

fn index(p: &Pod) -> i32 {
    annotation(p, "batch.kubernetes.io/job-completion-index")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_limit_per_index_and_failed_indexes() {
    let base = Duration::from_millis(300);
    let c = cluster_with(
        1,
        Config {
            job_backoff_base: base,
            ..Default::default()
        },
    )
    .await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    // Index 1 succeeds (the test's own pod); every pod the Job makes exits 1.
    index_pod(&c, "perindex", 1, "2", 0).await;
    let j = manual_indexed(
        "perindex",
        json!({"completions": 3, "parallelism": 3, "backoffLimitPerIndex": 1}),
        json!({"fake.rkube.io/run-seconds": "0.2", "fake.rkube.io/exit-code": "1"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    let done = eventually("job failed", 90, async || {
        let j = api.get("perindex").await.ok()?;
        cond(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(
        cond(&done, "Failed").unwrap(),
        (
            "FailedIndexes".to_string(),
            "Job has failed indexes".to_string()
        )
    );
    assert_eq!(cond(&done, "FailureTarget").unwrap().0, "FailedIndexes");
    let st = done.status.clone().unwrap();
    assert_eq!(st.failed_indexes.as_deref(), Some("0,2"));
    assert_eq!(st.completed_indexes.as_deref(), Some("1"));
    assert_eq!((st.failed, st.succeeded), (Some(4), Some(1)));
    // Each failed index ran twice: the first pod counted 0 failures, its replacement 1,
    // and the replacement waited out the index's backoff.
    let pods = app_pods(&c, "perindex").await;
    for ix in [0, 2] {
        let mut of: Vec<&Pod> = pods.iter().filter(|p| index(p) == ix).collect();
        // Creation times have whole seconds only: order by the count the pods carry.
        of.sort_by_key(|p| annotation(p, "batch.kubernetes.io/job-index-failure-count"));
        let counts: Vec<String> = of
            .iter()
            .map(|p| {
                annotation(p, "batch.kubernetes.io/job-index-failure-count").unwrap_or_default()
            })
            .collect();
        assert_eq!(counts, ["0", "1"], "index {ix}");
        let first_end = of[0]
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs[0]
                    .state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .finished_at
                    .clone()
            })
            .unwrap()
            .0;
        let second_start = of[1].metadata.creation_timestamp.clone().unwrap().0;
        // Times are in whole seconds; the second pod is never earlier than the first's end.
        assert!(
            second_start >= first_end - jiff::SignedDuration::from_secs(1),
            "index {ix}"
        );
    }
    assert!(
        pods.iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())),
        "finalizers released"
    );
    // Events are written in the background.
    eventually("the FailedIndexes event", 10, async || {
        let evs = events(&c.client, "default", "perindex").await;
        evs.iter()
            .any(|e| {
                e.0 == "FailedIndexes" && e.1 == "Job has failed indexes" && e.2 == "job-controller"
            })
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_failed_indexes_ends_the_job() {
    let c = cluster_with(
        1,
        Config {
            job_backoff_base: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let j = job(
        "maxfail",
        json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed",
               "backoffLimitPerIndex": 0, "maxFailedIndexes": 1}),
        json!({"fake.rkube.io/run-seconds": "0.2", "fake.rkube.io/exit-code": "1"}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    let done = eventually("job failed", 60, async || {
        let j = api.get("maxfail").await.ok()?;
        cond(&j, "Failed").map(|_| j)
    })
    .await;
    assert_eq!(
        cond(&done, "Failed").unwrap(),
        (
            "MaxFailedIndexesExceeded".to_string(),
            "Job has exceeded the specified maximal number of failed indexes".to_string()
        )
    );
    let st = done.status.unwrap();
    let failed = rkube_workloads::job::parse_indexes(st.failed_indexes.as_deref().unwrap());
    assert!(failed.len() >= 2, "{failed:?}");
    // With no retries per index and parallelism 2, index 3 never got a pod.
    let pods = job_pods(&c, "maxfail").await;
    assert!(
        pods.iter().all(|p| index(p) != 3),
        "{:?}",
        pods.iter().map(index).collect::<Vec<_>>()
    );
    assert!(pods.iter().all(|p| {
        annotation(p, "batch.kubernetes.io/job-index-failure-count").as_deref() == Some("0")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_policy_completes_early_and_stops_the_rest() {
    let c = cluster(1).await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    // Index 0 (the test's own pod) succeeds; the Job's pods for 1 and 2 run until stopped.
    index_pod(&c, "early", 0, "3", 0).await;
    let j = manual_indexed(
        "early",
        json!({"completions": 3, "parallelism": 3, "successPolicy": {"rules": [
            {"succeededCount": 3},
            {"succeededIndexes": "0"},
        ]}}),
        json!({}),
    );
    api.create(&PostParams::default(), &j).await.unwrap();
    eventually("pods for indexes 1 and 2", 30, async || {
        let live: Vec<i32> = app_pods(&c, "early").await.iter().map(index).collect();
        (live.contains(&1) && live.contains(&2)).then_some(())
    })
    .await;
    let done = eventually("job complete", 60, async || {
        let j = api.get("early").await.ok()?;
        cond(&j, "Complete").map(|_| j)
    })
    .await;
    let want = (
        "SuccessPolicy".to_string(),
        "Matched rules at index 1".to_string(),
    );
    assert_eq!(cond(&done, "SuccessCriteriaMet").unwrap(), want);
    assert_eq!(cond(&done, "Complete").unwrap(), want);
    let st = done.status.unwrap();
    // Index 0 met the policy; a stopped pod that exits 0 (the hollow node's do) may add its
    // index too, as upstream counts every pod that ends Succeeded.
    let completed = rkube_workloads::job::parse_indexes(st.completed_indexes.as_deref().unwrap());
    assert!(completed.contains(&0), "{completed:?}");
    assert_eq!(st.succeeded, Some(completed.len() as i32));
    assert!(st.completion_time.is_some());
    assert_eq!(st.active, None);
    // The pods still running when the policy was met were stopped.
    for p in app_pods(&c, "early").await.iter().filter(|p| index(p) != 0) {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        assert!(
            p.metadata.deletion_timestamp.is_some()
                || matches!(phase, Some("Failed" | "Succeeded")),
            "{:?} {phase:?}",
            p.metadata.name
        );
    }
    let evs = events(&c.client, "default", "early").await;
    assert!(
        evs.iter().any(|e| e.0 == "SuccessfulDelete"),
        "the remaining pods were deleted: {evs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_managed_by_another_controller_is_left_alone() {
    let c = cluster(1).await;
    let api: Api<Job> = Api::namespaced(c.client.clone(), "default");
    let mine = job(
        "mine",
        json!({"managedBy": "kubernetes.io/job-controller"}),
        json!({"fake.rkube.io/run-seconds": "0.1"}),
    );
    let theirs = job(
        "theirs",
        json!({"managedBy": "example.com/batch-controller"}),
        json!({"fake.rkube.io/run-seconds": "0.1"}),
    );
    api.create(&PostParams::default(), &theirs).await.unwrap();
    api.create(&PostParams::default(), &mine).await.unwrap();
    // The Job naming this controller runs to completion…
    eventually("mine completes", 60, async || {
        cond(&api.get("mine").await.ok()?, "Complete")
    })
    .await;
    // …while the other one, created first, got no pods and no status from it.
    let theirs = api.get("theirs").await.unwrap();
    assert!(job_pods(&c, "theirs").await.is_empty());
    let st = theirs.status.unwrap_or_default();
    assert!(
        st.start_time.is_none() && st.conditions.is_none() && st.active.is_none(),
        "{st:?}"
    );
}
