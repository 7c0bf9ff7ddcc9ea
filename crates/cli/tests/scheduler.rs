//! `rkube scheduler` end to end: the binary, leader-elected through the
//! kube-system/kube-scheduler Lease, schedules a pod created with kubectl onto hollow nodes
//! from `rkube agent --fake`, where it runs; bad flags are clear errors.

mod common;

use std::process::{Command, Stdio};

use common::{Proc, RKUBE, until};
use rkube_apiserver::testing::TestServer;

fn kubectl(s: &TestServer, args: &[&str]) -> (bool, String) {
    common::kubectl(s, args, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_binary_schedules_onto_hollow_nodes() {
    let s = TestServer::start().await;
    let _agent = Proc(
        Command::new(RKUBE)
            .args([
                "agent",
                "--fake",
                "--nodes",
                "2",
                "--node-name-prefix",
                "hn",
                // No controller manager runs here to hand out pod ranges.
                "--assign-pod-cidrs",
            ])
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rkube agent starts"),
    );
    let _scheduler = Proc(
        Command::new(RKUBE)
            .args(["scheduler", "--leader-elect=true"])
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rkube scheduler starts"),
    );
    let (ok, out) = kubectl(&s, &["run", "web", "--image=nginx", "--restart=Never"]);
    assert!(ok, "{out}");
    until("pod Running on a hollow node", || {
        let (_, out) = kubectl(
            &s,
            &[
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.status.phase} {.spec.nodeName}",
            ],
        );
        out == "Running hn-0" || out == "Running hn-1"
    })
    .await;
    let (_, holder) = kubectl(
        &s,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kube-scheduler",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    assert!(!holder.is_empty());
    let (_, events) = kubectl(
        &s,
        &["get", "events", "--field-selector", "reason=Scheduled"],
    );
    assert!(
        events.contains("Successfully assigned default/web to hn-"),
        "{events}"
    );
}

#[test]
fn bad_flags_are_clear_errors() {
    let out = Command::new(RKUBE)
        .args([
            "scheduler",
            "--percentage-of-nodes-to-score",
            "150",
            "--kubeconfig",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--percentage-of-nodes-to-score must be between 0 and 100"),
        "{err}"
    );
    let out = Command::new(RKUBE)
        .arg("scheduler")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--kubeconfig (or KUBECONFIG) is required"),
        "{err}"
    );
}
