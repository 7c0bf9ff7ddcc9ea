//! The data the runtime interface carries: sandbox and container configurations, statuses,
//! filters, stats and image records. They mirror the CRI (`runtime.v1`) messages field for
//! field where rkube uses them, in plain Rust types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Metadata of a pod sandbox (who it belongs to).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxMetadata {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
}

/// A port mapping of the sandbox (hostPort).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: String,
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: String,
}

/// DNS settings written into the sandbox's `/etc/resolv.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// One extra line of the sandbox's `/etc/hosts` (pod `hostAliases`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

/// Which namespaces the pod shares with the host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceOptions {
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
}

/// Everything needed to run a pod sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxConfig {
    pub metadata: PodSandboxMetadata,
    pub hostname: String,
    pub log_directory: Option<PathBuf>,
    pub dns: Option<DnsConfig>,
    pub host_aliases: Vec<HostAlias>,
    /// The pod's IP, when the network plugin assigned one before the sandbox started.
    pub pod_ip: Option<String>,
    pub port_mappings: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub namespaces: NamespaceOptions,
    /// Name of the pod-level cgroup (below the runtime's cgroup root); derived from the
    /// sandbox id when empty.
    pub cgroup_parent: String,
    /// Resource totals of the pod, applied to the pod-level cgroup.
    pub resources: Option<LinuxResources>,
    pub sysctls: BTreeMap<String, String>,
}

/// The state of a sandbox or container as the CRI names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// A pod sandbox as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandbox {
    pub id: String,
    pub metadata: PodSandboxMetadata,
    pub state: SandboxState,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Detailed status of a pod sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSandboxStatus {
    pub id: String,
    pub metadata: PodSandboxMetadata,
    pub state: SandboxState,
    pub created_at: i64,
    pub ip: Option<String>,
    /// Path of the pinned network namespace (`None` with host networking).
    pub network_namespace: Option<PathBuf>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Filter for listing sandboxes; all given fields must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSandboxFilter {
    pub id: Option<String>,
    pub state: Option<SandboxState>,
    pub label_selector: BTreeMap<String, String>,
}

/// Metadata of a container (its name in the pod).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetadata {
    pub name: String,
    pub attempt: u32,
}

/// An image reference as given in a pod spec.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub image: String,
}

/// Bind-mount propagation, as the CRI names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountPropagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

/// A mount the kubelet asks for (volumes, service-account tokens, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub container_path: String,
    pub host_path: PathBuf,
    pub readonly: bool,
    pub propagation: MountPropagation,
}

/// Linux resources of a container or pod, in CRI units.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxResources {
    /// CFS period in microseconds (0: the kernel's default).
    pub cpu_period: i64,
    /// CFS quota in microseconds (0 or negative: unlimited).
    pub cpu_quota: i64,
    /// Relative CPU weight (cgroup v1 shares; 2–262144).
    pub cpu_shares: i64,
    /// Memory limit in bytes (0: unlimited).
    pub memory_limit_in_bytes: i64,
    pub oom_score_adj: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
}

/// A capability set change (names without or with the `CAP_` prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
}

/// Seccomp profile choice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompProfile {
    /// No filtering (Kubernetes' `Unconfined`, the default for pods without a profile).
    #[default]
    Unconfined,
    /// The runtime's default filter (`RuntimeDefault`).
    RuntimeDefault,
}

/// The container's Linux security settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxContainerSecurityContext {
    pub capabilities: Option<Capabilities>,
    pub privileged: bool,
    pub run_as_user: Option<i64>,
    pub run_as_username: String,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    pub readonly_rootfs: bool,
    pub no_new_privs: bool,
    pub seccomp: SeccompProfile,
    /// Paths masked in the container (`None`: the upstream default list; empty with
    /// `procMount: Unmasked`).
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
}

/// Everything needed to create a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub metadata: ContainerMetadata,
    pub image: ImageSpec,
    /// Kubernetes `command` (overrides the image's Entrypoint).
    pub command: Vec<String>,
    /// Kubernetes `args` (overrides the image's Cmd).
    pub args: Vec<String>,
    pub working_dir: String,
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Log file path relative to the sandbox's log directory.
    pub log_path: String,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub resources: Option<LinuxResources>,
    pub security_context: LinuxContainerSecurityContext,
}

/// The state of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub pod_sandbox_id: String,
    pub metadata: ContainerMetadata,
    pub image: ImageSpec,
    /// The image's id (its config digest).
    pub image_ref: String,
    pub state: ContainerState,
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Detailed status of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: String,
    pub metadata: ContainerMetadata,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub image: ImageSpec,
    pub image_ref: String,
    /// `Completed`, `Error`, `OOMKilled` or `ContainerCannotRun` once exited.
    pub reason: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub log_path: Option<PathBuf>,
    pub pid: Option<i32>,
}

/// Filter for listing containers; all given fields must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub state: Option<ContainerState>,
    pub pod_sandbox_id: Option<String>,
    pub label_selector: BTreeMap<String, String>,
}

/// Output of a synchronous exec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecSyncResponse {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A streaming exec request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A streaming attach request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachRequest {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A terminal size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// CPU and memory figures of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub id: String,
    pub metadata: ContainerMetadata,
    /// Nanoseconds since the epoch when the figures were read.
    pub timestamp: i64,
    pub cpu_usage_core_nano_seconds: u64,
    pub memory_working_set_bytes: u64,
    pub memory_usage_bytes: u64,
    /// Bytes used by the container's writable layer.
    pub writable_layer_used_bytes: u64,
}

/// The runtime's name and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub runtime_name: String,
    pub runtime_version: String,
    pub runtime_api_version: String,
}

/// Credentials for an image pull (from a pull secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// A base64 `user:password` pair, as docker config files hold it.
    pub auth: String,
    pub identity_token: String,
    pub registry_token: String,
}

/// An image as the runtime reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// The image id: the digest of its config (`sha256:…`).
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    pub uid: Option<i64>,
    pub username: String,
    pub pinned: bool,
}

/// Usage of the filesystem that holds images.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesystemUsage {
    pub timestamp: i64,
    pub mountpoint: PathBuf,
    pub used_bytes: u64,
    pub inodes_used: u64,
}

/// How long a stop may take before the runtime kills (SIGKILL).
pub type StopTimeout = Duration;

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Whether every `key=value` of `selector` is among `labels`.
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
