//! What the runtime and a shim say to each other, and the files a shim keeps.
//!
//! The runtime writes `shim.json` ([`ShimConfig`]) before starting the shim; the shim keeps
//! `status.json` ([`ShimStatus`]) current. On the shim's unix socket each connection carries
//! one JSON [`Request`] line and then either one JSON [`Reply`] line, or — for `exec` and
//! `attach` — frames in both directions: `[kind u8][length u32 BE][payload]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Frame kinds of streaming connections.
pub mod frame {
    /// Client → shim: bytes for the process's stdin.
    pub const STDIN: u8 = 0;
    /// Shim → client: stdout (or the terminal's output).
    pub const STDOUT: u8 = 1;
    /// Shim → client: stderr.
    pub const STDERR: u8 = 2;
    /// Client → shim: terminal size, `width u16 BE, height u16 BE`.
    pub const RESIZE: u8 = 3;
    /// Shim → client: the process exited, `code i32 BE`; the last frame.
    pub const EXIT: u8 = 4;
    /// Client → shim: close stdin.
    pub const CLOSE_STDIN: u8 = 5;
    /// Shim → client: the request failed, UTF-8 message; the last frame.
    pub const ERROR: u8 = 6;
}

/// Largest frame accepted.
pub const MAX_FRAME: usize = 1 << 20;

/// What the runtime tells a shim about its container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShimConfig {
    /// The container's id in libcontainer's state directory.
    pub id: String,
    /// libcontainer's state root.
    pub state_root: PathBuf,
    /// The OCI bundle (holding config.json).
    pub bundle: PathBuf,
    /// Where to serve requests.
    pub socket: PathBuf,
    /// Where to keep `status.json`.
    pub status_file: PathBuf,
    /// The CRI log file.
    pub log_path: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// The container's cgroup (for the OOM kill counter).
    pub cgroup: String,
    /// `<run>/ns` (a tmpfs of its own) and the pinned namespaces under it that the
    /// container joins: the shim keeps only those in its mount namespace.
    pub pins_root: PathBuf,
    pub pins: Vec<PathBuf>,
    /// Keep the host's mounts shared in the shim's mount namespace (the container has a
    /// `Bidirectional` mount) instead of making them all slaves.
    #[serde(default)]
    pub keep_mounts_shared: bool,
    /// The container's root filesystem, which the shim mounts in its own mount namespace.
    pub rootfs: RootfsConfig,
}

/// An overlay of an image's snapshots with the container's writable layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsConfig {
    /// The snapshot directories, top layer first.
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The mount point (`<run>/roots/<id>`, on a private tmpfs).
    pub target: PathBuf,
    /// A directory (absolute in the container) to create if the image lacks it: the
    /// working directory.
    pub make_dir: Option<String>,
}

/// The lifecycle state a shim reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShimState {
    Created,
    Running,
    Exited,
}

/// `status.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStatus {
    pub state: ShimState,
    /// The container's init process (host pid).
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
}

/// A request to a shim.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container.
    Start,
    /// Send a signal to the container's init process.
    Kill { signal: i32 },
    /// Reply once the container has exited (and its status is final).
    Wait,
    /// Reopen the log file.
    ReopenLog,
    /// Run a process in the container; then stream.
    Exec {
        args: Vec<String>,
        tty: bool,
        stdin: bool,
    },
    /// Attach to the container's streams; then stream.
    Attach { stdin: bool },
}

/// A shim's answer to a non-streaming request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes one frame.
pub async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    w.write_all(&head).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}
