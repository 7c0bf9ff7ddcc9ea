//! Workload printers: deployments, replica sets, stateful sets, daemon sets, controller
//! revisions, jobs, cron jobs, replication controllers and pod templates.

mod common;

use common::{ago, cells, headers};
use serde_json::{Value, json};

fn meta(name: &str, age_secs: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs)})
}

fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.27"},
            {"name": "sidecar", "image": "busybox:1.36"},
        ]},
    })
}

#[test]
fn deployments() {
    assert_eq!(
        headers("apps", "deployments"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ]
    );
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("web", 86400 * 3 + 3600 * 5),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "front"}},
                 "template": template()},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    assert_eq!(
        cells("apps", "deployments", &d),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3d5h"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox:1.36"),
            json!("app=web,tier=front"),
        ]
    );

    // A new deployment: no status yet, replicas defaulted to 1.
    let d = json!({"metadata": meta("new", 5), "spec": {"template": template(),
        "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}}});
    let c = cells("apps", "deployments", &d);
    assert_eq!(&c[1..5], &[json!("0/1"), json!(0), json!(0), json!("5s")]);
    assert_eq!(c[7], json!("app in (api,web)"));

    // Scaled to zero; an invalid selector; no selector at all.
    let d = json!({"metadata": meta("zero", 60), "spec": {"replicas": 0,
        "selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}}});
    let c = cells("apps", "deployments", &d);
    assert_eq!(c[1], json!("0/0"));
    assert_eq!(c[7], json!("<invalid>"));
    let d = json!({"metadata": meta("nosel", 60), "spec": {}});
    assert_eq!(cells("apps", "deployments", &d)[7], json!(""));
}

#[test]
fn replica_sets() {
    let rs = json!({
        "metadata": meta("web-5d8f", 7200),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}},
                 "template": template()},
        "status": {"replicas": 3, "readyReplicas": 1},
    });
    assert_eq!(
        cells("apps", "replicasets", &rs),
        vec![
            json!("web-5d8f"),
            json!(3),
            json!(3),
            json!(1),
            json!("120m"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox:1.36"),
            json!("app=web,pod-template-hash=5d8f"),
        ]
    );
    assert_eq!(
        headers("apps", "replicasets")
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    // Empty selector prints <none> here (FormatLabelSelector).
    let rs = json!({"metadata": meta("x", 1), "spec": {"replicas": 0, "selector": {}}});
    assert_eq!(cells("apps", "replicasets", &rs)[7], json!("<none>"));
}

#[test]
fn stateful_sets() {
    assert_eq!(
        headers("apps", "statefulsets"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1)
        ]
    );
    let sts = json!({
        "metadata": meta("db", 600),
        "spec": {"replicas": 3, "serviceName": "db", "template": template(),
                 "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": 3, "readyReplicas": 3},
    });
    assert_eq!(
        cells("apps", "statefulsets", &sts),
        vec![
            json!("db"),
            json!("3/3"),
            json!("10m"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox:1.36"),
        ]
    );
}

#[test]
fn daemon_sets() {
    let ds = json!({
        "metadata": meta("node-exporter", 86400 * 10),
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {"metadata": {"labels": {"app": "node-exporter"}}, "spec": {
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "containers": [{"name": "exporter", "image": "prom/node-exporter:v1.8.0"}]}},
        },
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2},
    });
    assert_eq!(
        cells("apps", "daemonsets", &ds),
        vec![
            json!("node-exporter"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("10d"),
            json!("exporter"),
            json!("prom/node-exporter:v1.8.0"),
            json!("app=node-exporter"),
        ]
    );
    assert_eq!(
        headers("apps", "daemonsets")[6],
        ("Node Selector", 0),
        "node selector is a normal column"
    );
    let ds = json!({"metadata": meta("x", 1), "spec": {}});
    assert_eq!(cells("apps", "daemonsets", &ds)[6], json!("<none>"));
}

#[test]
fn controller_revisions() {
    let cr = json!({
        "metadata": {"name": "web-6c5d7b9f4", "creationTimestamp": ago(90),
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "not-controller", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "2", "controller": true},
            ]},
        "revision": 2,
        "data": {},
    });
    assert_eq!(
        cells("apps", "controllerrevisions", &cr),
        vec![
            json!("web-6c5d7b9f4"),
            json!("statefulset.apps/web"),
            json!(2),
            json!("90s")
        ]
    );
    let orphan = json!({"metadata": {"name": "x", "creationTimestamp": ago(90)}, "revision": 1});
    assert_eq!(
        cells("apps", "controllerrevisions", &orphan)[1],
        json!("<none>")
    );
    let core_owner = json!({"metadata": {"name": "x", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "controller": true}]}});
    assert_eq!(
        cells("apps", "controllerrevisions", &core_owner)[1],
        json!("replicationcontroller/rc")
    );
}

fn job(spec: Value, status: Value) -> Value {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                       "restartPolicy": "Never"}});
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "0b4f"}});
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("pi", 3600), "spec": spec, "status": status})
}

/// (STATUS, COMPLETIONS, DURATION) of a job.
fn job_summary(j: &Value) -> (String, String, String) {
    let c = cells("batch", "jobs", j);
    let st = |v: &Value| v.as_str().unwrap().to_string();
    (st(&c[1]), st(&c[2]), st(&c[3]))
}

fn t(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn jobs() {
    assert_eq!(
        headers("batch", "jobs"),
        [
            ("Name", 0),
            ("Status", 0),
            ("Completions", 0),
            ("Duration", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ]
    );
    let complete = job(
        json!({"completions": 1, "parallelism": 1}),
        json!({"succeeded": 1, "startTime": ago(3590), "completionTime": ago(3550),
               "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                              {"type": "Complete", "status": "True"}]}),
    );
    assert_eq!(
        cells("batch", "jobs", &complete),
        vec![
            json!("pi"),
            json!("Complete"),
            json!("1/1"),
            json!("40s"),
            json!("60m"),
            json!("pi"),
            json!("perl:5.34"),
            json!("batch.kubernetes.io/controller-uid=0b4f"),
        ]
    );
    let running = job(
        json!({"completions": 5, "parallelism": 2}),
        json!({"succeeded": 2, "active": 2, "startTime": ago(600)}),
    );
    assert_eq!(job_summary(&running), t("Running", "2/5", "10m"));
    let not_started = job(json!({"completions": 1}), json!({}));
    assert_eq!(job_summary(&not_started), t("Running", "0/1", ""));
    let work_queue = job(
        json!({"parallelism": 3}),
        json!({"succeeded": 1, "startTime": ago(30)}),
    );
    assert_eq!(job_summary(&work_queue), t("Running", "1/1 of 3", "30s"));
    let single = job(json!({"parallelism": 1}), json!({}));
    assert_eq!(job_summary(&single).1, "0/1");
    let failed = job(
        json!({"completions": 1, "backoffLimit": 0}),
        json!({"failed": 1, "startTime": ago(300), "conditions": [
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
    );
    assert_eq!(job_summary(&failed).0, "Failed");
    let failing = job(
        json!({"completions": 1}),
        json!({"startTime": ago(300), "conditions": [{"type": "FailureTarget", "status": "True"}]}),
    );
    assert_eq!(job_summary(&failing).0, "FailureTarget");
    let suspended = job(
        json!({"completions": 1, "suspend": true}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    assert_eq!(job_summary(&suspended).0, "Suspended");
    let resumed = job(
        json!({"completions": 1}),
        json!({"conditions": [{"type": "Suspended", "status": "False"}]}),
    );
    assert_eq!(job_summary(&resumed).0, "Running");
    let mut deleting = job(
        json!({"completions": 1}),
        json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
    );
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(job_summary(&deleting).0, "Terminating");
}

#[test]
fn cron_jobs() {
    assert_eq!(
        headers("batch", "cronjobs")
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cj = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": meta("hello", 86400),
        "spec": {
            "schedule": "*/5 * * * *",
            "timeZone": "Etc/UTC",
            "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "hello", "image": "busybox:1.36"}]}}}},
        },
        "status": {"active": [{"name": "hello-1"}, {"name": "hello-2"}], "lastScheduleTime": ago(150)},
    });
    assert_eq!(
        cells("batch", "cronjobs", &cj),
        vec![
            json!("hello"),
            json!("*/5 * * * *"),
            json!("Etc/UTC"),
            json!("False"),
            json!(2),
            json!("2m30s"),
            json!("24h"),
            json!("hello"),
            json!("busybox:1.36"),
            json!("<none>"),
        ]
    );
    let never = json!({"metadata": meta("never", 60),
        "spec": {"schedule": "@hourly", "suspend": true,
                 "jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}}}}}});
    let c = cells("batch", "cronjobs", &never);
    assert_eq!(
        &c[2..6],
        &[json!("<none>"), json!("True"), json!(0), json!("<none>")]
    );
    assert_eq!(c[9], json!("a=b"));
    // suspend defaults to false.
    let default = json!({"metadata": meta("d", 60), "spec": {"schedule": "@daily"}});
    assert_eq!(cells("batch", "cronjobs", &default)[3], json!("False"));
}

#[test]
fn replication_controllers_and_pod_templates() {
    let rc = json!({
        "metadata": meta("frontend", 300),
        "spec": {"replicas": 2, "template": template()},
        "status": {"replicas": 2, "readyReplicas": 2},
    });
    assert_eq!(
        cells("", "replicationcontrollers", &rc),
        vec![
            json!("frontend"),
            json!(2),
            json!(2),
            json!(2),
            json!("5m"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox:1.36"),
            // The selector defaults to the template's labels.
            json!("app=web"),
        ]
    );
    let pt = json!({"metadata": meta("tmpl", 300), "template": template()});
    assert_eq!(
        headers("", "podtemplates"),
        [
            ("Name", 0),
            ("Containers", 0),
            ("Images", 0),
            ("Pod Labels", 0)
        ]
    );
    assert_eq!(
        cells("", "podtemplates", &pt),
        vec![
            json!("tmpl"),
            json!("nginx,sidecar"),
            json!("nginx:1.27,busybox:1.36"),
            json!("app=web"),
        ]
    );
}
