//! Shared by the `rkube` binary's end-to-end tests that drive an in-process API server:
//! child processes killed when a test ends, kubectl against the server, polling.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_apiserver::testing::TestServer;

pub const RKUBE: &str = env!("CARGO_BIN_EXE_rkube");

/// A child process killed when the test ends, passed or failed.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs kubectl 1.32 against the server (with `stdin` piped in if given); whether it
/// succeeded and its stdout followed by its stderr.
pub fn kubectl(s: &TestServer, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/kubectl")
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut input = child.stdin.take().expect("stdin piped");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .expect("kubectl reads stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("kubectl ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Polls `f` every 200 ms until it holds; fails the test after 60 s.
pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
