//! A private, single-member etcd server on loopback, started from Debian's `etcd` binary in a
//! temporary directory. Used by the store's tests (the etcd half of the conformance suite,
//! restarts, outages) and by `rkube bench store`, which compares the backends side by side.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) etcd member. Dropping it kills the process and removes its data.
pub struct EtcdProcess {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP port serving `/health` (and metrics), also when clients must use TLS.
    metrics_port: u16,
    tls: Option<MemberTls>,
    child: Option<Child>,
}

/// TLS for a member's client port: its serving certificate and key, and the CA that client
/// certificates must chain to (clients without one are refused).
#[derive(Clone, Debug)]
pub struct MemberTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// The etcd binary: `$RKUBE_ETCD_BIN`, else `etcd` on the PATH, else Debian's location.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RKUBE_ETCD_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdProcess {
    /// Starts a fresh member on free loopback ports and waits until it is healthy.
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Like [`EtcdProcess::start`], with TLS and client-certificate authentication.
    pub fn start_tls(tls: MemberTls) -> Result<Self, String> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<MemberTls>) -> Result<Self, String> {
        let binary = etcd_binary().ok_or_else(|| {
            "etcd is not installed: install Debian's etcd-server package \
             (apt-get install etcd-server) or set RKUBE_ETCD_BIN"
                .to_string()
        })?;
        let mut last_err = String::new();
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("etcd-test-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let (client_port, peer_port, metrics_port) =
                match (free_port(), free_port(), free_port()) {
                    (Ok(c), Ok(p), Ok(m)) if c != p && p != m && c != m => (c, p, m),
                    _ => continue,
                };
            let mut etcd = EtcdProcess {
                binary: binary.clone(),
                dir,
                client_port,
                peer_port,
                metrics_port,
                tls: tls.clone(),
                child: None,
            };
            match etcd.launch() {
                Ok(()) => return Ok(etcd),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// The client URL, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The member's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the member (its data stays, for [`EtcdProcess::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the member again on the same ports and data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }

    fn launch(&mut self) -> Result<(), String> {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .map_err(|e| format!("cannot open the etcd log: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open the etcd log: {e}"))?;
        let mut cmd = Command::new(&self.binary);
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.client_ca.display()))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name=default")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--initial-cluster-state=new")
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                self.metrics_port
            ))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "etcd exited at start ({status}); its log:\n{}",
                    self.log_tail()
                ));
            }
            if healthy(self.metrics_port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        Err(format!(
            "etcd did not become healthy within 20 s; its log:\n{}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Where the member keeps its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether etcd's plain-HTTP `/health` endpoint on `port` answers healthy.
fn healthy(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = conn.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
