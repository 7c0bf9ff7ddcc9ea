//! apps/v1, batch/v1, autoscaling and policy: defaults, invalid objects with upstream's
//! messages, immutable fields and valid updates.

mod common;

use common::*;
use serde_json::{Value, json};

fn template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")}})
}

#[test]
fn deployment_defaults() {
    let d = prepared(deployment());
    let s = &d["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(
        s["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(s["progressDeadlineSeconds"], 600);
    assert_eq!(s["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        s["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["status"], json!({}));
    // Recreate gets no rollingUpdate.
    let mut r = deployment();
    r["spec"]["strategy"] = json!({"type": "Recreate"});
    assert_eq!(
        defaulted(r)["spec"]["strategy"],
        json!({"type": "Recreate"})
    );
}

#[test]
fn deployment_invalid_messages() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["strategy"] = json!({"type": "Foo"});
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("");
    let errs = create_errors(d);
    assert_has(
        &errs,
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_has(
        &errs,
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
    );
    assert_has(
        &errs,
        "spec.template.spec.containers[0].name: Required value",
    );
    assert_has(
        &errs,
        "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Foo\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"",
    );
    let mut d = deployment();
    d["spec"].as_object_mut().unwrap().remove("selector");
    assert_has(&create_errors(d), "spec.selector: Required value");
    let mut d = deployment();
    d["spec"]["selector"] = json!({});
    assert_has(
        &create_errors(d),
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
    );
    let mut d = deployment();
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
    assert_has(
        &create_errors(d),
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
    );
    let mut d = deployment();
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "150%"}});
    assert_has(
        &create_errors(d),
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 150: must not be greater than 100%",
    );
    let mut d = deployment();
    d["spec"]["progressDeadlineSeconds"] = json!(5);
    d["spec"]["minReadySeconds"] = json!(10);
    assert_has(
        &create_errors(d),
        "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
    );
}

#[test]
fn deployment_updates() {
    let mut new = deployment();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    new["spec"]["replicas"] = json!(3);
    assert_valid(update_errors(deployment(), new));
    let mut new = deployment();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
    new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
    assert_has(
        &update_errors(deployment(), new),
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
    );
    let mut new = deployment();
    new["metadata"]["name"] = json!("other");
    assert_has(
        &update_errors(deployment(), new),
        "metadata.name: Invalid value: \"other\": field is immutable",
    );
    // Status writes are validated by the status rules.
    let mut new = deployment();
    new["status"] = json!({"replicas": 1, "readyReplicas": 2});
    assert_has(
        &status_errors(deployment(), new),
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
    );
}

#[test]
fn generation_and_status_preparation() {
    let g = gvk("apps/v1", "Deployment");
    let old = prepared(deployment());
    let mut new = deployment();
    new["spec"]["replicas"] = json!(5);
    new["status"] = json!({"replicas": 99});
    let mut new = defaulted(new);
    rkube_validation::prepare_for_update(g, &mut new, &old);
    assert_eq!(new["metadata"]["generation"], 2);
    assert_eq!(new["status"], json!({}));
    assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"]);
    let mut st = old.clone();
    st["spec"]["replicas"] = json!(7);
    st["status"] = json!({"replicas": 1});
    rkube_validation::prepare_for_status_update(g, &mut st, &old);
    assert_eq!(st["spec"]["replicas"], 1);
    assert_eq!(st["status"], json!({"replicas": 1}));
}

#[test]
fn replica_sets() {
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "r"}}, "template": template("r")}});
    assert_eq!(defaulted(rs.clone())["spec"]["replicas"], 1);
    assert_valid(create_errors(rs.clone()));
    let mut bad = rs.clone();
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    assert_has(
        &create_errors(bad),
        "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
    );
    let mut new = rs.clone();
    new["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
    new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    assert_starts(
        &update_errors(rs, new),
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"r\", \"tier\":\"x\"}",
    );
}

fn stateful_set() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "postgres:16",
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
}

#[test]
fn stateful_sets() {
    let d = defaulted(stateful_set());
    let s = &d["spec"];
    assert_eq!(s["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(s["replicas"], 1);
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(
        s["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(s["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    // Mounts of claim templates resolve.
    assert_valid(create_errors(stateful_set()));
    let mut bad = stateful_set();
    bad["spec"]["podManagementPolicy"] = json!("Random");
    assert_has(
        &create_errors(bad),
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    );
    let mut new = stateful_set();
    new["spec"]["serviceName"] = json!("other");
    assert_has(
        &update_errors(stateful_set(), new),
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    );
    let mut new = stateful_set();
    new["spec"]["replicas"] = json!(3);
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
    assert_valid(update_errors(stateful_set(), new));
}

fn daemon_set() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")}})
}

#[test]
fn daemon_sets() {
    let d = defaulted(daemon_set());
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_valid(create_errors(daemon_set()));
    let mut bad = daemon_set();
    bad["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    assert_has(
        &create_errors(bad),
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
    );
    let mut new = daemon_set();
    new["spec"]["selector"]["matchLabels"]["app"] = json!("x");
    new["spec"]["template"]["metadata"]["labels"]["app"] = json!("x");
    assert_starts(
        &update_errors(daemon_set(), new),
        "spec.selector: Invalid value: v1.LabelSelector{",
    );
}

#[test]
fn controller_revisions() {
    let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r-1", "namespace": "default"}, "revision": 1, "data": {"a": 1}});
    assert_valid(create_errors(cr.clone()));
    let mut bad = cr.clone();
    bad["revision"] = json!(-1);
    bad.as_object_mut().unwrap().remove("data");
    let errs = create_errors(bad);
    assert_has(&errs, "data: Required value: data is mandatory");
    assert_has(
        &errs,
        "revision: Invalid value: -1: must be greater than or equal to 0",
    );
    let mut new = cr.clone();
    new["data"] = json!({"a": 2});
    assert_has(
        &update_errors(cr, new),
        "data: Invalid value: runtime.RawExtension{...}: field is immutable",
    );
}

fn job() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
}

#[test]
fn job_defaults_and_generated_selector() {
    let j = prepared(job());
    let s = &j["spec"];
    assert_eq!(s["completions"], 1);
    assert_eq!(s["parallelism"], 1);
    assert_eq!(s["backoffLimit"], 6);
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    let uid = j["metadata"]["uid"].clone();
    assert_eq!(
        s["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(s["template"]["metadata"]["labels"]["job-name"], "pi");
    assert_eq!(s["template"]["metadata"]["labels"]["controller-uid"], uid);
    assert_valid(create_errors(job()));
}

#[test]
fn job_invalid_and_immutable() {
    let mut bad = job();
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    bad["spec"]["parallelism"] = json!(-1);
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
    );
    assert_has(
        &errs,
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
    );
    let mut idx = job();
    idx["spec"]["completionMode"] = json!("Indexed");
    idx["spec"]["parallelism"] = json!(2);
    assert_has(
        &create_errors(idx),
        "spec.completions: Required value: when completion mode is Indexed",
    );
    // The template is immutable; parallelism is not.
    let old = job();
    let mut new = prepared(job());
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    assert_has(
        &update_errors(old.clone(), new),
        "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable",
    );
    let mut new = prepared(job());
    new["spec"]["parallelism"] = json!(3);
    assert_valid(update_errors(old, new));
}

#[test]
fn cron_jobs() {
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let d = defaulted(cj.clone());
    assert_eq!(d["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(d["spec"]["suspend"], false);
    assert_eq!(d["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(d["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    assert_valid(create_errors(cj.clone()));
    let mut bad = cj.clone();
    bad["spec"]["schedule"] = json!("every minute");
    bad["spec"]["concurrencyPolicy"] = json!("Sometimes");
    bad["metadata"]["name"] = json!("a".repeat(53));
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]",
    );
    assert_has(
        &errs,
        "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
    );
    assert_has(
        &errs,
        &format!(
            "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
            "a".repeat(53)
        ),
    );
    let mut new = cj.clone();
    new["spec"]["schedule"] = json!("0 * * * *");
    assert_valid(update_errors(cj, new));
}

#[test]
fn horizontal_pod_autoscalers() {
    let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
    let d = defaulted(v2.clone());
    assert_eq!(d["spec"]["minReplicas"], 1);
    assert_eq!(
        d["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_valid(create_errors(v2.clone()));
    let mut b = v2.clone();
    b["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
    let d = defaulted(b);
    assert_eq!(
        d["spec"]["behavior"]["scaleDown"],
        json!({"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]})
    );
    assert_eq!(
        d["spec"]["behavior"]["scaleUp"]["policies"][0],
        json!({"type": "Pods", "value": 4, "periodSeconds": 15})
    );
    let mut bad = v2;
    bad["spec"]["maxReplicas"] = json!(0);
    bad["spec"]["minReplicas"] = json!(2);
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
    );
    assert_has(
        &errs,
        "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
    );
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "default"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": ""}, "maxReplicas": 5}});
    assert_eq!(defaulted(v1.clone())["spec"]["minReplicas"], 1);
    assert_has(
        &create_errors(v1),
        "spec.scaleTargetRef.name: Required value",
    );
}

#[test]
fn pod_disruption_budgets() {
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    assert_valid(create_errors(pdb.clone()));
    let mut bad = pdb;
    bad["spec"]["maxUnavailable"] = json!("50%");
    bad["spec"]["minAvailable"] = json!("x%");
    let errs = create_errors(bad);
    assert_has(
        &errs,
        "spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both set",
    );
    assert_has(
        &errs,
        "spec.minAvailable: Invalid value: x%: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
    );
}

#[test]
fn job_success_policy_per_index_backoff_and_managed_by() {
    let indexed = |extra: Value| {
        let mut j = job();
        j["spec"]["completionMode"] = json!("Indexed");
        j["spec"]["completions"] = json!(5);
        j["spec"]["parallelism"] = json!(5);
        for (k, v) in extra.as_object().unwrap() {
            j["spec"][k] = v.clone();
        }
        j
    };
    assert_valid(create_errors(indexed(json!({
        "successPolicy": {"rules": [{"succeededIndexes": "0,2-4", "succeededCount": 2}, {"succeededCount": 1}]},
        "backoffLimitPerIndex": 1, "maxFailedIndexes": 2,
        "managedBy": "example.com/custom-controller",
    }))));
    // A success policy needs Indexed mode and well-formed rules.
    let mut plain = job();
    plain["spec"]["successPolicy"] = json!({"rules": [{"succeededCount": 1}]});
    assert_has(
        &create_errors(plain),
        "spec.successPolicy: Invalid value: {Rules:[{SucceededIndexes:<nil> SucceededCount:(ptr)}]}: requires indexed completion mode",
    );
    let errs = create_errors(indexed(json!({"successPolicy": {"rules": [
        {"succeededIndexes": "3,1"},
        {"succeededIndexes": "0-7"},
        {"succeededIndexes": "1-2", "succeededCount": 3},
        {"succeededCount": 6},
        {},
    ]}})));
    assert_has(
        &errs,
        "spec.successPolicy.rules[0].succeededIndexes: Invalid value: \"3,1\": error parsing succeededIndexes: non-increasing order, previous: 3, current: 1",
    );
    assert_has(
        &errs,
        "spec.successPolicy.rules[1].succeededIndexes: Invalid value: \"0-7\": error parsing succeededIndexes: too large index: \"7\"",
    );
    assert_has(
        &errs,
        "spec.successPolicy.rules[2].succeededCount: Invalid value: 3: must be less than or equal to 2 (the number of indexes in the specified succeededIndexes field)",
    );
    assert_has(
        &errs,
        "spec.successPolicy.rules[3].succeededCount: Invalid value: 6: must be less than or equal to 5 (the number of specified completions)",
    );
    assert_has(
        &errs,
        "spec.successPolicy.rules[4]: Required value: at least one of succeededCount or succeededIndexes must be specified",
    );
    assert_has(
        &create_errors(indexed(json!({"successPolicy": {"rules": []}}))),
        "spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy is specified",
    );
    // Per-index backoff.
    assert_has(
        &create_errors(indexed(json!({"maxFailedIndexes": 1}))),
        "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
    );
    let mut fail_index = indexed(json!({"podFailurePolicy": {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}},
    ]}}));
    fail_index["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_has(
        &create_errors(fail_index),
        "spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set",
    );
    let defaulted_job = prepared(indexed(json!({"backoffLimitPerIndex": 1})));
    assert_eq!(defaulted_job["spec"]["backoffLimit"], 2147483647);
    // managedBy: a domain-prefixed path of at most 63 bytes, immutable.
    assert_has(
        &create_errors(indexed(json!({"managedBy": "controller"}))),
        "spec.managedBy: Invalid value: \"controller\": must be a domain-prefixed path (such as \"acme.io/foo\")",
    );
    let long = format!("example.com/{}", "x".repeat(60));
    assert_starts(
        &create_errors(indexed(json!({"managedBy": long}))),
        "spec.managedBy: Too long: ",
    );
    let old = prepared(indexed(json!({"managedBy": "example.com/a"})));
    let mut new = old.clone();
    new["spec"]["managedBy"] = json!("example.com/b");
    assert_has(
        &update_errors(old, new),
        "spec.managedBy: Invalid value: \"example.com/b\": field is immutable",
    );
}
