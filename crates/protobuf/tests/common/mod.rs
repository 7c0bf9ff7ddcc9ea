//! A fake API server on loopback for driving the real kubectl: it answers discovery, logs
//! every request (with its body) and hands the rest to the test's handler. Each test gets
//! its own port, kubeconfig and discovery cache in a temporary directory.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// One request kubectl made.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn accepts_protobuf(&self) -> bool {
        self.header("accept").is_some_and(|a| a.contains(PROTOBUF))
    }
}

/// The answer to a request.
pub enum Reply {
    Body {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// A streamed answer (a watch): the chunks are written, then the connection closes.
    Stream {
        content_type: String,
        chunks: Vec<Vec<u8>>,
    },
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::Body {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(v).unwrap(),
        }
    }

    pub fn protobuf(status: u16, v: &Value) -> Reply {
        Reply::Body {
            status,
            content_type: PROTOBUF.into(),
            body: rkube_protobuf::encode(v).unwrap(),
        }
    }

    pub fn not_found() -> Reply {
        Reply::json(
            404,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "not found", "reason": "NotFound", "code": 404}),
        )
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct Fake {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

/// Resources the fake discovery lists: (group/version, plural, kind, namespaced).
const RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("v1", "configmaps", "ConfigMap", true),
    ("v1", "secrets", "Secret", true),
    ("v1", "namespaces", "Namespace", false),
    ("v1", "pods", "Pod", true),
    ("v1", "pods/eviction", "Eviction", true),
    ("v1", "pods/log", "Pod", true),
    ("v1", "services", "Service", true),
    ("v1", "serviceaccounts", "ServiceAccount", true),
    ("v1", "resourcequotas", "ResourceQuota", true),
    ("v1", "nodes", "Node", false),
    ("apps/v1", "deployments", "Deployment", true),
    ("batch/v1", "jobs", "Job", true),
    ("batch/v1", "cronjobs", "CronJob", true),
    (
        "certificates.k8s.io/v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
    ),
    (
        "certificates.k8s.io/v1",
        "certificatesigningrequests/approval",
        "CertificateSigningRequest",
        false,
    ),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", true),
    (
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    (
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    ),
    ("networking.k8s.io/v1", "ingresses", "Ingress", true),
    (
        "scheduling.k8s.io/v1",
        "priorityclasses",
        "PriorityClass",
        false,
    ),
];

fn discovery(path: &str) -> Option<Value> {
    if path == "/api" {
        return Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}));
    }
    let mut groups: Vec<&str> = RESOURCES
        .iter()
        .filter_map(|r| r.0.split_once('/').map(|(g, _)| g))
        .collect();
    groups.dedup();
    if path == "/apis" {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
            })
            .collect();
        return Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
    }
    let gv = path
        .strip_prefix("/api/")
        .or_else(|| path.strip_prefix("/apis/"))?;
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.0 == gv)
        .map(|(_, plural, kind, namespaced)| {
            let (group, version) = match (*plural, *kind) {
                ("pods/eviction", _) => ("policy", "v1"),
                _ => ("", ""),
            };
            json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind,
                   "group": group, "version": version,
                   "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": resources}),
    )
}

impl Fake {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(handler);
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: c, user: u, namespace: default}}}}]\n\
                 current-context: c\nusers: [{{name: u, user: {{}}}}]\n"
            ),
        )
        .unwrap();
        {
            let log = log.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let log = log.clone();
                    let handler = handler.clone();
                    std::thread::spawn(move || serve(conn, &log, &handler));
                }
            });
        }
        Fake {
            port,
            dir,
            log,
            stop,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs kubectl against the fake server; (exit success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(kubectl_binary());
        cmd.arg(format!(
            "--kubeconfig={}",
            self.path("kubeconfig").display()
        ))
        .arg(format!("--cache-dir={}", self.path("cache").display()))
        .arg("--request-timeout=30s")
        .args(args)
        .current_dir(self.dir.path())
        .env("HOME", self.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("kubectl {args:?} did not finish in 90s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Requests other than discovery, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        let req = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        let reply = match discovery(&req.path) {
            Some(d) if req.method == "GET" => Reply::json(200, &d),
            _ => {
                log.lock().unwrap().push(req.clone());
                handler(&req)
            }
        };
        match reply {
            Reply::Body {
                status,
                content_type,
                body,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&body).is_err() {
                    return;
                }
            }
            Reply::Stream {
                content_type,
                chunks,
            } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                let _ = conn.write_all(head.as_bytes());
                for c in chunks {
                    let _ = conn.write_all(format!("{:x}\r\n", c.len()).as_bytes());
                    let _ = conn.write_all(&c);
                    let _ = conn.write_all(b"\r\n");
                    let _ = conn.flush();
                }
                let _ = conn.write_all(b"0\r\n\r\n");
                return;
            }
        }
    }
}

/// kubectl v1.33 (the version rkube targets), or whichever kubectl is on the PATH.
pub fn kubectl_binary() -> PathBuf {
    let pinned = Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.33");
    if pinned.exists() {
        return pinned.to_path_buf();
    }
    PathBuf::from("kubectl")
}

/// Upstream prints `null` for nil pointers and zero times; decoding leaves them out.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Where captured bytes are kept for `tests/fixtures.rs`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// With `RKUBE_PROTOBUF_WRITE_FIXTURES=1`, saves bytes and their JSON as a fixture.
pub fn maybe_write_fixture(name: &str, bytes: &[u8], json: &Value) {
    if std::env::var_os("RKUBE_PROTOBUF_WRITE_FIXTURES").is_none() {
        return;
    }
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.pb")), bytes).unwrap();
    let mut text = serde_json::to_string_pretty(json).unwrap();
    text.push('\n');
    std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
}
