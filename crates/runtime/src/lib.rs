//! rkube's container runtime.
//!
//! The kubelet drives containers through two traits shaped like the Kubernetes CRI:
//! [`RuntimeService`] (pod sandboxes, containers, exec/attach/port-forward, logs, stats)
//! and [`ImageService`] (pull, list, status, remove, filesystem usage). Three
//! implementations:
//!
//! - [`native::NativeRuntime`] (the default): real Linux containers made with youki's
//!   `libcontainer`, one small supervisor process (the shim, [`shim`]) per container, which
//!   is the `rkube` binary re-executed as `rkube shim …`, so containers outlive the agent;
//!   pods get pinned network/IPC/UTS namespaces and a pod cgroup; images come from
//!   [`rkube_images`].
//! - [`cri::CriRuntime`]: a gRPC client for containerd or CRI-O.
//! - [`fake::FakeRuntime`]: in memory, no processes, for hollow nodes and tests.
//!
//! Streaming calls return either a live session ([`Streaming::Session`], native and fake)
//! or a URL of the runtime's own streaming server ([`Streaming::Url`], CRI runtimes), which
//! the kubelet proxies exactly as upstream's does.

pub mod cgroups;
pub mod cri;
mod error;
pub mod fake;
pub mod native;
pub mod shim;
mod types;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

pub use error::{Error, Result};
pub use types::*;

/// A byte stream the caller reads from.
pub type ReadStream = Pin<Box<dyn AsyncRead + Send>>;
/// A byte stream the caller writes to.
pub type WriteStream = Pin<Box<dyn AsyncWrite + Send>>;

/// Something both readable and writable (a forwarded port's connection).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// A live exec or attach session.
pub struct StreamSession {
    /// The process's standard input, when requested. Dropping it closes stdin.
    pub stdin: Option<WriteStream>,
    /// Standard output (with a TTY: the terminal's output).
    pub stdout: Option<ReadStream>,
    /// Standard error (never with a TTY).
    pub stderr: Option<ReadStream>,
    /// Terminal resizes, with a TTY.
    pub resize: Option<tokio::sync::mpsc::Sender<TerminalSize>>,
    /// Resolves with the exit code of the exec'd process (or of the attached container once
    /// it exits); an error if the session broke off.
    pub exit: tokio::sync::oneshot::Receiver<Result<i32>>,
}

/// The answer to a streaming request.
pub enum Streaming {
    /// The runtime serves the stream itself.
    Session(StreamSession),
    /// The runtime's streaming server at this URL serves it (CRI runtimes).
    Url(String),
}

/// The answer to a port-forward request.
pub enum PortForward {
    /// A connection to the port inside the pod's network namespace.
    Connected(Box<dyn Duplex>),
    /// The runtime's streaming server at this URL serves it (CRI runtimes).
    Url(String),
}

/// Pod sandboxes and containers, shaped like the CRI's `RuntimeService`.
#[async_trait]
pub trait RuntimeService: Send + Sync {
    /// The runtime's name and version.
    async fn version(&self) -> Result<VersionInfo>;

    /// Creates and starts a pod sandbox; returns its id.
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String>;
    /// Stops every container of the sandbox and releases its network; idempotent.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Removes a sandbox and its containers (forcibly stopping them); idempotent.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus>;
    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandbox>>;

    /// Creates a container in a sandbox (not yet started); returns its id.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Sends the stop signal (the image's STOPSIGNAL or SIGTERM) and SIGKILL after
    /// `timeout`; returns once the container has exited. Stopping an exited container is a
    /// no-op.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Removes a container, killing it first if it still runs; idempotent.
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    async fn update_container_resources(&self, id: &str, resources: &LinuxResources) -> Result<()>;
    /// Makes the container's log writer reopen its file (after the kubelet rotated it).
    async fn reopen_container_log(&self, id: &str) -> Result<()>;

    /// Runs a command in a container and collects its output; fails with
    /// [`Error::Timeout`] if it runs longer than `timeout` (zero: no limit).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse>;
    /// Runs a command in a container with streams attached.
    async fn exec(&self, id: &str, req: &ExecRequest) -> Result<Streaming>;
    /// Attaches to a running container's streams.
    async fn attach(&self, id: &str, req: &AttachRequest) -> Result<Streaming>;
    /// Connects to `port` inside the sandbox's network namespace.
    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<PortForward>;

    async fn container_stats(&self, id: &str) -> Result<ContainerStats>;
    async fn list_container_stats(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStats>>;
}

/// Images, shaped like the CRI's `ImageService`.
#[async_trait]
pub trait ImageService: Send + Sync {
    /// Pulls an image (concurrent pulls of one image share one download); returns its id.
    async fn pull_image(&self, image: &ImageSpec, auth: Option<&AuthConfig>) -> Result<String>;
    async fn list_images(&self) -> Result<Vec<Image>>;
    /// The image, or `None` if it is not present.
    async fn image_status(&self, image: &ImageSpec) -> Result<Option<Image>>;
    /// Removes an image; fails with [`Error::FailedPrecondition`] while a container uses
    /// it; removing an absent image succeeds.
    async fn remove_image(&self, image: &ImageSpec) -> Result<()>;
    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>>;
}
