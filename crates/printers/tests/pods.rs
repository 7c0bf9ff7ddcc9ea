//! Pods: every path of upstream's STATUS logic, READY and RESTARTS counting, the wide
//! columns and the row conditions. Expectations follow upstream's `printPod`.

mod common;

use common::{NOW, ago, cells, headers};
use serde_json::{Value, json};

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(3600)},
        "spec": spec,
        "status": status,
    })
}

fn one(name: &str) -> Value {
    json!({"containers": [{"name": name, "image": "nginx"}]})
}

/// (READY, STATUS, RESTARTS) of a pod.
fn summary(p: &Value) -> (String, String, String) {
    let c = cells("", "pods", p);
    (
        c[1].as_str().unwrap().to_string(),
        c[2].as_str().unwrap().to_string(),
        c[3].as_str().unwrap().to_string(),
    )
}

fn s(ready: &str, status: &str, restarts: &str) -> (String, String, String) {
    (ready.into(), status.into(), restarts.into())
}

#[test]
fn columns_are_upstreams() {
    assert_eq!(
        headers("", "pods"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ]
    );
    let cols = rkube_printers::columns("", "pods");
    assert_eq!(cols[0].format, "name");
    assert_eq!(cols[3].ty, "string");
    assert_eq!(
        cols[5].description,
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
    );
}

#[test]
fn running_pod_with_every_cell() {
    let p = pod(
        json!({
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "busybox"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
        }),
        json!({
            "phase": "Running",
            "podIP": "10.42.0.7",
            "podIPs": [{"ip": "10.42.0.7"}, {"ip": "fd00::7"}],
            "nominatedNodeName": "node-2",
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "example.com/lb", "status": "True"},
                {"type": "example.com/dns", "status": "False"},
            ],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(3000)}}},
                {"name": "log", "ready": false, "restartCount": 2,
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}},
                 "state": {"running": {"startedAt": ago(290)}}},
            ],
        }),
    );
    let row = rkube_printers::row("", "pods", &p, NOW);
    assert_eq!(
        row.cells,
        vec![
            json!("web-0"),
            json!("1/2"),
            json!("Running"),
            json!("2 (5m ago)"),
            json!("60m"),
            json!("10.42.0.7"),
            json!("node-1"),
            json!("node-2"),
            json!("1/2"),
        ]
    );
    assert!(row.conditions.is_empty());
}

#[test]
fn wide_cells_of_an_unscheduled_pod() {
    let p = pod(one("app"), json!({"phase": "Pending"}));
    let c = cells("", "pods", &p);
    assert_eq!(
        c,
        vec![
            json!("web-0"),
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("60m"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
    // A pod IP without the podIPs list (older writers) still shows.
    let p = pod(
        one("app"),
        json!({"phase": "Running", "podIP": "10.42.1.9"}),
    );
    assert_eq!(cells("", "pods", &p)[5], json!("10.42.1.9"));
}

#[test]
fn waiting_reasons_win() {
    let p = pod(
        one("app"),
        json!({"phase": "Pending", "containerStatuses": [
            {"name": "app", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    assert_eq!(summary(&p), s("0/1", "ContainerCreating", "0"));

    let p = pod(
        one("app"),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": false, "restartCount": 5,
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(45)}},
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}}}]}),
    );
    assert_eq!(summary(&p), s("0/1", "CrashLoopBackOff", "5 (45s ago)"));

    let p = pod(
        one("app"),
        json!({"phase": "Pending", "containerStatuses": [
            {"name": "app", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ErrImagePull"}}}]}),
    );
    assert_eq!(summary(&p).1, "ErrImagePull");
}

#[test]
fn terminated_containers() {
    // Completed: phase Succeeded, reason from the container; the row is marked completed.
    let p = pod(
        one("job"),
        json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "job", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(60)}}}]}),
    );
    assert_eq!(summary(&p), s("0/1", "Completed", "0"));
    let row = rkube_printers::row("", "pods", &p, NOW);
    assert_eq!(
        row.conditions,
        vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded",
                    "message": "The pod has completed successfully."})
        ]
    );

    let p = pod(
        one("job"),
        json!({"phase": "Failed", "containerStatuses": [
            {"name": "job", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
    );
    assert_eq!(summary(&p), s("0/1", "Error", "0"));
    let row = rkube_printers::row("", "pods", &p, NOW);
    assert_eq!(row.conditions[0]["reason"], "Failed");
    assert_eq!(row.conditions[0]["message"], "The pod failed.");

    // No reason: the signal, else the exit code.
    let p = pod(
        one("app"),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
    );
    assert_eq!(summary(&p).1, "Signal:9");
    let p = pod(
        one("app"),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]}),
    );
    assert_eq!(summary(&p).1, "ExitCode:3");

    // Evicted pods keep the pod's reason.
    let p = pod(
        one("app"),
        json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
    );
    assert_eq!(summary(&p), s("0/1", "Evicted", "0"));
}

#[test]
fn completed_container_beside_a_running_one() {
    let statuses = json!([
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": false, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
    ]);
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    let ready = pod(
        spec.clone(),
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": statuses}),
    );
    assert_eq!(summary(&ready), s("1/2", "Running", "0"));
    let not_ready = pod(
        spec,
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
               "containerStatuses": statuses}),
    );
    assert_eq!(summary(&not_ready), s("1/2", "NotReady", "0"));
}

#[test]
fn init_containers() {
    let spec = json!({
        "initContainers": [{"name": "init-a"}, {"name": "init-b"}],
        "containers": [{"name": "app"}],
    });
    let waiting_app = json!([{"name": "app", "ready": false, "restartCount": 0,
                              "state": {"waiting": {"reason": "PodInitializing"}}}]);
    // The first init container done, the second running.
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending",
               "conditions": [{"type": "Initialized", "status": "False"}],
               "initContainerStatuses": [
                   {"name": "init-a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                   {"name": "init-b", "restartCount": 0, "state": {"running": {}}},
               ],
               "containerStatuses": waiting_app}),
    );
    assert_eq!(summary(&p), s("0/1", "Init:1/2", "0"));

    // Not started yet: waiting for PodInitializing is not a reason.
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "init-a", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
            {"name": "init-b", "restartCount": 0, "state": {"waiting": {}}}]}),
    );
    assert_eq!(summary(&p), s("0/1", "Init:0/2", "0"));

    // Crash-looping init container: its restarts count.
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending",
               "conditions": [{"type": "Initialized", "status": "False"}],
               "initContainerStatuses": [
                   {"name": "init-a", "restartCount": 3,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}},
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
               ],
               "containerStatuses": waiting_app}),
    );
    assert_eq!(summary(&p), s("0/1", "Init:CrashLoopBackOff", "3 (2m ago)"));

    // Failed init containers: reason, signal or exit code.
    for (terminated, want) in [
        (json!({"exitCode": 1, "reason": "Error"}), "Init:Error"),
        (json!({"exitCode": 137, "signal": 9}), "Init:Signal:9"),
        (json!({"exitCode": 2}), "Init:ExitCode:2"),
    ] {
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "restartCount": 0, "state": {"terminated": terminated}}]}),
        );
        assert_eq!(summary(&p).1, want);
    }

    // Once initialized, the init containers' restarts no longer count.
    let p = pod(
        spec,
        json!({"phase": "Running",
               "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
               "initContainerStatuses": [
                   {"name": "init-a", "restartCount": 4, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                   {"name": "init-b", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
               ],
               "containerStatuses": [{"name": "app", "ready": true, "restartCount": 1,
                                       "state": {"running": {}}}]}),
    );
    assert_eq!(summary(&p), s("1/1", "Running", "1"));
}

#[test]
fn sidecar_init_containers() {
    let spec = json!({
        "initContainers": [{"name": "proxy", "restartPolicy": "Always"}, {"name": "setup"}],
        "containers": [{"name": "app"}],
    });
    // The sidecar started and is ready, the regular init container still runs.
    let p = pod(
        spec.clone(),
        json!({"phase": "Pending",
               "conditions": [{"type": "Initialized", "status": "False"}],
               "initContainerStatuses": [
                   {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}},
                    "state": {"running": {}}},
                   {"name": "setup", "ready": false, "started": true, "restartCount": 0, "state": {"running": {}}},
               ],
               "containerStatuses": [{"name": "app", "restartCount": 0,
                                       "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    assert_eq!(summary(&p), s("1/2", "Init:1/2", "1 (10m ago)"));

    // Initialized: sidecar restarts still count, with the app's.
    let p = pod(
        spec,
        json!({"phase": "Running",
               "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
               "initContainerStatuses": [
                   {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}},
                    "state": {"running": {}}},
                   {"name": "setup", "restartCount": 7, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
               ],
               "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2,
                                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}},
                                       "state": {"running": {}}}]}),
    );
    assert_eq!(summary(&p), s("2/2", "Running", "3 (30s ago)"));
}

#[test]
fn deletion_and_lost_nodes() {
    let running = json!({"phase": "Running", "containerStatuses": [
        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]});
    let mut p = pod(one("app"), running.clone());
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(summary(&p), s("1/1", "Terminating", "0"));

    let mut lost = running;
    lost["reason"] = json!("NodeLost");
    let mut p = pod(one("app"), lost);
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(summary(&p).1, "Unknown");

    // Finished pods being deleted keep their final status.
    let mut p = pod(
        one("job"),
        json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "job", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    assert_eq!(summary(&p).1, "Completed");
}

#[test]
fn scheduling_gates() {
    let p = pod(
        one("app"),
        json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(summary(&p), s("0/1", "SchedulingGated", "0"));
    let p = pod(
        one("app"),
        json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
    );
    assert_eq!(summary(&p).1, "Pending");
}

#[test]
fn restarts_use_the_latest_termination() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}},
            {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(400)}}},
        ]}),
    );
    assert_eq!(summary(&p), s("2/2", "Running", "3 (6m40s ago)"));
    // Restarts without a recorded termination show the count alone.
    let p = pod(
        one("a"),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 4, "state": {"running": {}}}]}),
    );
    assert_eq!(summary(&p).2, "4");
}

#[test]
fn malformed_pods_do_not_panic() {
    for p in [
        json!({}),
        json!(null),
        json!({"spec": "x", "status": 3}),
        json!({"status": {"containerStatuses": [null, 1, {"state": "x"}]}}),
        json!({"status": {"initContainerStatuses": [{"state": {"terminated": "x"}}]}}),
    ] {
        let c = cells("", "pods", &p);
        assert_eq!(c[4], json!("<unknown>"));
    }
}
