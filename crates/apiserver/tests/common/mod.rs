//! Helpers for the API server's integration tests: a running test server, the real kubectl
//! against it, and a kube-rs client.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub use rkube_apiserver::testing::TestServer;

/// The kubectl binaries on this machine.
pub const KUBECTL: &str = "/usr/bin/kubectl";

pub fn kubectl_version(minor: u32) -> String {
    format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}")
}

/// The result of one kubectl run.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Fails the test unless kubectl succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert!(
            self.status.success(),
            "kubectl failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// Fails the test unless kubectl failed; returns stderr.
    pub fn fails(self) -> String {
        assert!(
            !self.status.success(),
            "kubectl unexpectedly succeeded:\n{}",
            self.stdout
        );
        self.stderr
    }
}

/// Runs kubectl (`binary`) with `args` against the server's kubeconfig.
pub fn kubectl_with(binary: &str, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .env_remove("KUBECTL_EXTERNAL_DIFF")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("kubectl output");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn kubectl(server: &TestServer, args: &[&str]) -> Run {
    kubectl_with(KUBECTL, &server.kubeconfig, args, None)
}

pub fn kubectl_stdin(server: &TestServer, args: &[&str], stdin: &str) -> Run {
    kubectl_with(KUBECTL, &server.kubeconfig, args, Some(stdin))
}

/// A kube-rs client from the server's kubeconfig.
pub async fn client(server: &TestServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    // Tests assert on the server's answers; kube-rs would otherwise retry 5xx answers.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}
