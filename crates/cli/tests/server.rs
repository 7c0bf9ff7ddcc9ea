//! The `rkube` binary end to end: `rkube server` on a fresh and on a damaged data directory,
//! and `rkube snapshot save|restore` around a running server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use rkube_store::sqlite::SqliteStore;
use rkube_store::{RangeRequest, Store, WriteOptions};

const RKUBE: &str = env!("CARGO_BIN_EXE_rkube");

/// A running `rkube server`, killed if the test fails before stopping it.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(RKUBE)
            .args([
                "server",
                "--bind-address",
                "127.0.0.1",
                "--https-listen-port",
            ])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines }
    }

    /// Waits for a log line containing `text`; returns every line read so far.
    fn wait_for(&self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no log line with {text:?}; got:\n{}", seen.join("\n")),
            }
        }
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rkube(args: &[&str]) -> std::process::Output {
    Command::new(RKUBE).args(args).output().unwrap()
}

#[test]
fn server_serves_the_api_writes_a_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let lines = server.wait_for("not running yet");
    let all = lines.join("\n");
    assert!(all.contains("datastore ready"), "{all}");
    assert!(all.contains("API server ready"), "{all}");
    assert!(all.contains("scheduler"), "{all}");
    assert!(dir.path().join("db/state.db").is_file());
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let kubectl = |args: &[&str]| {
        Command::new("/usr/bin/kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap()
    };
    let out = kubectl(&["get", "ns", "-o", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8_lossy(&out.stdout);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&format!("namespace/{ns}")), "{names}");
    }
    let out = kubectl(&["create", "-f", "-"]);
    assert!(!out.status.success(), "no file given");
    let ca = std::fs::read_to_string(dir.path().join("tls/ca.crt")).unwrap();
    // The controller manager runs inside the server: it takes the Lease and publishes
    // the CA in every namespace.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let lease = kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kube-controller-manager",
        ]);
        let cm = kubectl(&[
            "get",
            "cm",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        if lease.status.success() && String::from_utf8_lossy(&cm.stdout) == ca {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "controller manager not running"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(server.stop().success());

    // A restart reuses the CA and keeps the data.
    let server = Server::start(dir.path());
    server.wait_for("API server ready");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tls/ca.crt")).unwrap(),
        ca
    );
    let out = kubectl(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10.43.0.1");
    assert!(server.stop().success());
}

#[test]
fn server_refuses_a_corrupt_datastore_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db/state.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let garbage = b"this is not a database ".repeat(200);
    std::fs::write(&db, &garbage).unwrap();
    let out = Command::new(RKUBE)
        .args(["server", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(db.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not an SQLite database"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

/// The `N` of "N keys" in a snapshot command's output.
fn keys_in(out: &str) -> usize {
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches([',', '.', ')']) == "keys")
        .and_then(|w| w[0].trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no key count in {out:?}"))
}

#[test]
fn snapshot_save_while_running_then_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("db/state.db");
    let snap = dir.path().join("snap.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = SqliteStore::open(&db).unwrap();
        for i in 0..100 {
            s.create(
                &format!("/registry/x/{i:03}"),
                Bytes::from("before"),
                WriteOptions::default(),
            )
            .await
            .unwrap();
        }
        s.close().await;
    });

    let server = Server::start(&data);
    server.wait_for("datastore ready");
    let data_arg = data.to_str().unwrap();
    let out = rkube(&[
        "snapshot",
        "save",
        snap.to_str().unwrap(),
        "--data-dir",
        data_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server may already have written its own objects when the snapshot is taken: the
    // 100 keys made before it started are in the snapshot, and perhaps a few more.
    let saved = keys_in(&String::from_utf8_lossy(&out.stdout));
    assert!(saved >= 100, "{saved} keys saved");

    let out = rkube(&[
        "snapshot",
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        data_arg,
    ]);
    assert!(
        !out.status.success(),
        "restore under a running server must fail"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(server.stop().success());

    // Change the datastore after the snapshot, then go back to the snapshot.
    rt.block_on(async {
        let s = SqliteStore::open(&db).unwrap();
        for i in 0..100 {
            s.delete(&format!("/registry/x/{i:03}"), None)
                .await
                .unwrap();
        }
        s.close().await;
    });
    let out = rkube(&[
        "snapshot",
        "restore",
        snap.to_str().unwrap(),
        "--data-dir",
        data_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("kept as"), "{stdout}");

    let out = rkube(&["snapshot", "inspect", db.to_str().unwrap()]);
    assert_eq!(keys_in(&String::from_utf8_lossy(&out.stdout)), saved);
    rt.block_on(async {
        let s = SqliteStore::open(&db).unwrap();
        let all = s.range(RangeRequest::prefix("/registry/x/")).await.unwrap();
        assert_eq!(all.count, 100);
        assert!(all.kvs.iter().all(|kv| kv.value == "before"));
        s.close().await;
    });
    // And a server starts on the restored datastore.
    let server = Server::start(&data);
    server.wait_for("datastore ready");
    assert!(server.stop().success());
}
