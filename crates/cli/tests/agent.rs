//! `rkube agent --fake` end to end: the binary joins an in-process API server with three
//! hollow nodes that kubectl shows Ready, runs a pod bound to one of them, and rejects bad
//! flags with clear errors.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc as Agent, RKUBE, kubectl, until};
use rkube_apiserver::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hollow_nodes_join_and_run_a_pod() {
    let s = TestServer::start().await;
    let mut agent = Agent(
        Command::new(RKUBE)
            .args([
                "agent",
                "--fake",
                "--nodes",
                "3",
                "--node-name-prefix",
                "hn",
                // No controller manager here: the agent gives the pod ranges.
                "--assign-pod-cidrs",
            ])
            .args([
                "--node-cpu",
                "2",
                "--node-memory",
                "8Gi",
                "--node-pods",
                "20",
            ])
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rkube agent starts"),
    );
    until("3 Ready nodes", || {
        let (ok, out) = kubectl(&s, &["get", "nodes", "--no-headers"], None);
        ok && out
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count()
            == 3
    })
    .await;
    let (_, cpu) = kubectl(
        &s,
        &[
            "get",
            "node",
            "hn-2",
            "-o",
            "jsonpath={.status.allocatable.cpu} {.status.capacity.pods} {.spec.podCIDR}",
        ],
        None,
    );
    assert_eq!(cpu, "2 20 10.42.2.0/24");

    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
        "spec":{"nodeName":"hn-2","containers":[{"name":"c","image":"nginx"}]}}"#;
    let (ok, out) = kubectl(&s, &["apply", "-f", "-"], Some(manifest));
    assert!(ok, "{out}");
    until("pod Running", || {
        let (_, out) = kubectl(&s, &["get", "pod", "p", "--no-headers"], None);
        out.split_whitespace().take(3).collect::<Vec<_>>() == ["p", "1/1", "Running"]
    })
    .await;
    let (_, ip) = kubectl(
        &s,
        &["get", "pod", "p", "-o", "jsonpath={.status.podIP}"],
        None,
    );
    assert!(ip.starts_with("10.42.2."), "{ip}");
    let (ok, out) = kubectl(&s, &["delete", "pod", "p", "--timeout=30s"], None);
    assert!(ok, "graceful delete confirmed by the kubelet: {out}");

    // SIGTERM stops the agent cleanly.
    // SAFETY: signalling a child process this test started and has not reaped.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[test]
fn bad_invocations_explain_themselves() {
    let run = |args: &[&str]| {
        let out = Command::new(RKUBE).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["agent", "--kubeconfig", "/nonexistent"]);
    assert!(err.contains("only hollow nodes"), "{err}");
    let err = run(&[
        "agent",
        "--fake",
        "--nodes",
        "2",
        "--kubeconfig",
        "/nonexistent/kc",
    ]);
    assert!(err.contains("/nonexistent/kc"), "{err}");
    let err = run(&[
        "agent",
        "--fake",
        "--node-memory",
        "lots",
        "--kubeconfig",
        "/x",
    ]);
    assert!(err.contains("--node-memory"), "{err}");
}
