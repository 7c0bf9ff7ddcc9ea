//! The CRI runtime: rkube's runtime traits over gRPC to containerd or CRI-O (the
//! `runtime.v1` API on a unix socket), for users who keep their container runtime.
//!
//! Streaming calls (exec, attach, port-forward) return the runtime's streaming-server URL
//! ([`Streaming::Url`], [`PortForward::Url`]); the kubelet proxies it, as upstream's does.
//! gRPC failures map to [`Error`] by status code (`NotFound`, `InvalidArgument`,
//! `FailedPrecondition`, `DeadlineExceeded` → `Timeout`, the rest `Cri`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::types::*;
use crate::{Error, ImageService, PortForward, Result, RuntimeService, Streaming};

/// Generated from `proto/cri.proto`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("runtime.v1");
}

use pb::image_service_client::ImageServiceClient;
use pb::runtime_service_client::RuntimeServiceClient;

/// A connection to a CRI runtime.
#[derive(Clone)]
pub struct CriRuntime {
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
}

fn status_err(s: tonic::Status) -> Error {
    use tonic::Code;
    let msg = s.message().to_string();
    match s.code() {
        Code::NotFound => Error::NotFound(msg),
        Code::InvalidArgument => Error::InvalidArgument(msg),
        Code::FailedPrecondition => Error::FailedPrecondition(msg),
        Code::AlreadyExists => Error::AlreadyExists(msg),
        Code::DeadlineExceeded => Error::Timeout(msg),
        code => Error::Cri(format!("{code:?}: {msg}")),
    }
}

fn map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn bmap(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

impl CriRuntime {
    /// Connects to a runtime socket: `unix:///run/containerd/containerd.sock` or a path.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let path = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(10))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(p).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .map_err(|e| Error::Cri(format!("connecting to {endpoint}: {e}")))?;
        Ok(Self {
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        })
    }
}

fn sandbox_state(s: i32) -> SandboxState {
    if s == pb::PodSandboxState::SandboxReady as i32 {
        SandboxState::Ready
    } else {
        SandboxState::NotReady
    }
}

fn container_state(s: i32) -> ContainerState {
    match pb::ContainerState::try_from(s) {
        Ok(pb::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(pb::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(pb::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn container_state_pb(s: ContainerState) -> pb::ContainerState {
    match s {
        ContainerState::Created => pb::ContainerState::ContainerCreated,
        ContainerState::Running => pb::ContainerState::ContainerRunning,
        ContainerState::Exited => pb::ContainerState::ContainerExited,
        ContainerState::Unknown => pb::ContainerState::ContainerUnknown,
    }
}

fn sandbox_meta(m: Option<pb::PodSandboxMetadata>) -> PodSandboxMetadata {
    let m = m.unwrap_or_default();
    PodSandboxMetadata {
        name: m.name,
        uid: m.uid,
        namespace: m.namespace,
        attempt: m.attempt,
    }
}

fn container_meta(m: Option<pb::ContainerMetadata>) -> ContainerMetadata {
    let m = m.unwrap_or_default();
    ContainerMetadata {
        name: m.name,
        attempt: m.attempt,
    }
}

fn resources_pb(r: &LinuxResources) -> pb::LinuxContainerResources {
    pb::LinuxContainerResources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
    }
}

fn sandbox_config_pb(c: &PodSandboxConfig) -> pb::PodSandboxConfig {
    let mode = |host: bool| {
        if host {
            pb::NamespaceMode::Node as i32
        } else {
            pb::NamespaceMode::Pod as i32
        }
    };
    pb::PodSandboxConfig {
        metadata: Some(pb::PodSandboxMetadata {
            name: c.metadata.name.clone(),
            uid: c.metadata.uid.clone(),
            namespace: c.metadata.namespace.clone(),
            attempt: c.metadata.attempt,
        }),
        hostname: c.hostname.clone(),
        log_directory: c
            .log_directory
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        dns_config: c.dns.as_ref().map(|d| pb::DnsConfig {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }),
        port_mappings: c
            .port_mappings
            .iter()
            .map(|p| pb::PortMapping {
                protocol: match p.protocol.to_ascii_uppercase().as_str() {
                    "UDP" => pb::Protocol::Udp as i32,
                    "SCTP" => pb::Protocol::Sctp as i32,
                    _ => pb::Protocol::Tcp as i32,
                },
                container_port: p.container_port as i32,
                host_port: p.host_port as i32,
                host_ip: p.host_ip.clone(),
            })
            .collect(),
        labels: map(&c.labels),
        annotations: map(&c.annotations),
        linux: Some(pb::LinuxPodSandboxConfig {
            cgroup_parent: c.cgroup_parent.clone(),
            security_context: Some(pb::LinuxSandboxSecurityContext {
                namespace_options: Some(pb::NamespaceOption {
                    network: mode(c.namespaces.host_network),
                    pid: if c.namespaces.host_pid {
                        pb::NamespaceMode::Node as i32
                    } else {
                        pb::NamespaceMode::Container as i32
                    },
                    ipc: mode(c.namespaces.host_ipc),
                    target_id: String::new(),
                }),
                privileged: false,
            }),
            sysctls: map(&c.sysctls),
            resources: c.resources.as_ref().map(resources_pb),
        }),
    }
}

fn container_config_pb(c: &ContainerConfig) -> pb::ContainerConfig {
    let sc = &c.security_context;
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: c.metadata.name.clone(),
            attempt: c.metadata.attempt,
        }),
        image: Some(pb::ImageSpec {
            image: c.image.image.clone(),
            annotations: HashMap::new(),
        }),
        command: c.command.clone(),
        args: c.args.clone(),
        working_dir: c.working_dir.clone(),
        envs: c
            .envs
            .iter()
            .map(|(k, v)| pb::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts: c
            .mounts
            .iter()
            .map(|m| pb::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.display().to_string(),
                readonly: m.readonly,
                selinux_relabel: false,
                propagation: match m.propagation {
                    MountPropagation::Private => pb::MountPropagation::PropagationPrivate,
                    MountPropagation::HostToContainer => {
                        pb::MountPropagation::PropagationHostToContainer
                    }
                    MountPropagation::Bidirectional => {
                        pb::MountPropagation::PropagationBidirectional
                    }
                } as i32,
            })
            .collect(),
        labels: map(&c.labels),
        annotations: map(&c.annotations),
        log_path: c.log_path.clone(),
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        linux: Some(pb::LinuxContainerConfig {
            resources: c.resources.as_ref().map(resources_pb),
            security_context: Some(pb::LinuxContainerSecurityContext {
                capabilities: sc.capabilities.as_ref().map(|c| pb::Capability {
                    add_capabilities: c.add_capabilities.clone(),
                    drop_capabilities: c.drop_capabilities.clone(),
                }),
                privileged: sc.privileged,
                namespace_options: None,
                run_as_user: sc.run_as_user.map(|value| pb::Int64Value { value }),
                run_as_username: sc.run_as_username.clone(),
                readonly_rootfs: sc.readonly_rootfs,
                supplemental_groups: sc.supplemental_groups.clone(),
                no_new_privs: sc.no_new_privs,
                run_as_group: sc.run_as_group.map(|value| pb::Int64Value { value }),
                masked_paths: sc.masked_paths.clone().unwrap_or_default(),
                readonly_paths: sc.readonly_paths.clone().unwrap_or_default(),
                seccomp: Some(pb::SecurityProfile {
                    profile_type: match sc.seccomp {
                        SeccompProfile::RuntimeDefault => {
                            pb::security_profile::ProfileType::RuntimeDefault
                        }
                        SeccompProfile::Unconfined => pb::security_profile::ProfileType::Unconfined,
                    } as i32,
                    localhost_ref: String::new(),
                }),
            }),
        }),
    }
}

fn image_from_pb(i: pb::Image) -> Image {
    Image {
        id: i.id,
        repo_tags: i.repo_tags,
        repo_digests: i.repo_digests,
        size: i.size,
        uid: i.uid.map(|u| u.value),
        username: i.username,
        pinned: i.pinned,
    }
}

fn stats_from_pb(s: pb::ContainerStats) -> ContainerStats {
    let attrs = s.attributes.unwrap_or_default();
    let cpu = s.cpu.unwrap_or_default();
    let mem = s.memory.unwrap_or_default();
    ContainerStats {
        id: attrs.id,
        metadata: container_meta(attrs.metadata),
        timestamp: cpu.timestamp,
        cpu_usage_core_nano_seconds: cpu.usage_core_nano_seconds.map(|v| v.value).unwrap_or(0),
        memory_working_set_bytes: mem.working_set_bytes.map(|v| v.value).unwrap_or(0),
        memory_usage_bytes: mem.usage_bytes.map(|v| v.value).unwrap_or(0),
        writable_layer_used_bytes: s
            .writable_layer
            .and_then(|w| w.used_bytes)
            .map(|v| v.value)
            .unwrap_or(0),
    }
}

#[async_trait]
impl RuntimeService for CriRuntime {
    async fn version(&self) -> Result<VersionInfo> {
        let r = self
            .rt
            .clone()
            .version(pb::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(VersionInfo {
            version: r.version,
            runtime_name: r.runtime_name,
            runtime_version: r.runtime_version,
            runtime_api_version: r.runtime_api_version,
        })
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        Ok(self
            .rt
            .clone()
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(sandbox_config_pb(config)),
                runtime_handler: String::new(),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .stop_pod_sandbox(pb::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let s = self
            .rt
            .clone()
            .pod_sandbox_status(pb::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .status
            .ok_or_else(|| Error::Cri("pod sandbox status without a status".into()))?;
        Ok(PodSandboxStatus {
            id: s.id,
            metadata: sandbox_meta(s.metadata),
            state: sandbox_state(s.state),
            created_at: s.created_at,
            ip: s.network.map(|n| n.ip).filter(|ip| !ip.is_empty()),
            network_namespace: None,
            labels: bmap(s.labels),
            annotations: bmap(s.annotations),
        })
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandbox>> {
        let items = self
            .rt
            .clone()
            .list_pod_sandbox(pb::ListPodSandboxRequest {
                filter: Some(pb::PodSandboxFilter {
                    id: filter.id.clone().unwrap_or_default(),
                    state: filter.state.map(|s| pb::PodSandboxStateValue {
                        state: match s {
                            SandboxState::Ready => pb::PodSandboxState::SandboxReady,
                            SandboxState::NotReady => pb::PodSandboxState::SandboxNotready,
                        } as i32,
                    }),
                    label_selector: map(&filter.label_selector),
                }),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .items;
        Ok(items
            .into_iter()
            .map(|s| PodSandbox {
                id: s.id,
                metadata: sandbox_meta(s.metadata),
                state: sandbox_state(s.state),
                created_at: s.created_at,
                labels: bmap(s.labels),
                annotations: bmap(s.annotations),
            })
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        Ok(self
            .rt
            .clone()
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(container_config_pb(config)),
                sandbox_config: Some(sandbox_config_pb(sandbox_config)),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .start_container(pb::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.rt
            .clone()
            .stop_container(pb::StopContainerRequest {
                container_id: id.into(),
                // Whole seconds on the wire; round up so a short grace period is not zero.
                timeout: (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)) as i64,
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .remove_container(pb::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>> {
        let items = self
            .rt
            .clone()
            .list_containers(pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    id: filter.id.clone().unwrap_or_default(),
                    state: filter.state.map(|s| pb::ContainerStateValue {
                        state: container_state_pb(s) as i32,
                    }),
                    pod_sandbox_id: filter.pod_sandbox_id.clone().unwrap_or_default(),
                    label_selector: map(&filter.label_selector),
                }),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .containers;
        Ok(items
            .into_iter()
            .map(|c| Container {
                id: c.id,
                pod_sandbox_id: c.pod_sandbox_id,
                metadata: container_meta(c.metadata),
                image: ImageSpec {
                    image: c.image.map(|i| i.image).unwrap_or_default(),
                },
                image_ref: c.image_ref,
                state: container_state(c.state),
                created_at: c.created_at,
                labels: bmap(c.labels),
                annotations: bmap(c.annotations),
            })
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let s = self
            .rt
            .clone()
            .container_status(pb::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .status
            .ok_or_else(|| Error::Cri("container status without a status".into()))?;
        Ok(ContainerStatus {
            id: s.id,
            metadata: container_meta(s.metadata),
            state: container_state(s.state),
            created_at: s.created_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
            exit_code: s.exit_code,
            image: ImageSpec {
                image: s.image.map(|i| i.image).unwrap_or_default(),
            },
            image_ref: s.image_ref,
            reason: s.reason,
            message: s.message,
            labels: bmap(s.labels),
            annotations: bmap(s.annotations),
            mounts: s
                .mounts
                .into_iter()
                .map(|m| Mount {
                    container_path: m.container_path,
                    host_path: m.host_path.into(),
                    readonly: m.readonly,
                    propagation: match pb::MountPropagation::try_from(m.propagation) {
                        Ok(pb::MountPropagation::PropagationHostToContainer) => {
                            MountPropagation::HostToContainer
                        }
                        Ok(pb::MountPropagation::PropagationBidirectional) => {
                            MountPropagation::Bidirectional
                        }
                        _ => MountPropagation::Private,
                    },
                })
                .collect(),
            log_path: (!s.log_path.is_empty()).then(|| s.log_path.into()),
            pid: None,
        })
    }

    async fn update_container_resources(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        self.rt
            .clone()
            .update_container_resources(pb::UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(resources_pb(resources)),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .reopen_container_log(pb::ReopenContainerLogRequest {
                container_id: id.into(),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        let r = self
            .rt
            .clone()
            .exec_sync(pb::ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.to_vec(),
                timeout: timeout.as_secs() as i64,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(ExecSyncResponse {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
        })
    }

    async fn exec(&self, id: &str, req: &ExecRequest) -> Result<Streaming> {
        let r = self
            .rt
            .clone()
            .exec(pb::ExecRequest {
                container_id: id.into(),
                cmd: req.cmd.clone(),
                tty: req.tty,
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(Streaming::Url(r.url))
    }

    async fn attach(&self, id: &str, req: &AttachRequest) -> Result<Streaming> {
        let r = self
            .rt
            .clone()
            .attach(pb::AttachRequest {
                container_id: id.into(),
                stdin: req.stdin,
                tty: req.tty,
                stdout: req.stdout,
                stderr: req.stderr,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(Streaming::Url(r.url))
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<PortForward> {
        let r = self
            .rt
            .clone()
            .port_forward(pb::PortForwardRequest {
                pod_sandbox_id: sandbox_id.into(),
                port: vec![port as i32],
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(PortForward::Url(r.url))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let s = self
            .rt
            .clone()
            .container_stats(pb::ContainerStatsRequest {
                container_id: id.into(),
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .stats
            .ok_or_else(|| Error::Cri("container stats without stats".into()))?;
        Ok(stats_from_pb(s))
    }

    async fn list_container_stats(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStats>> {
        let r = self
            .rt
            .clone()
            .list_container_stats(pb::ListContainerStatsRequest {
                filter: Some(pb::ContainerStatsFilter {
                    id: filter.id.clone().unwrap_or_default(),
                    pod_sandbox_id: filter.pod_sandbox_id.clone().unwrap_or_default(),
                    label_selector: map(&filter.label_selector),
                }),
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(r.stats.into_iter().map(stats_from_pb).collect())
    }
}

#[async_trait]
impl ImageService for CriRuntime {
    async fn pull_image(&self, image: &ImageSpec, auth: Option<&AuthConfig>) -> Result<String> {
        Ok(self
            .img
            .clone()
            .pull_image(pb::PullImageRequest {
                image: Some(pb::ImageSpec {
                    image: image.image.clone(),
                    annotations: HashMap::new(),
                }),
                auth: auth.map(|a| pb::AuthConfig {
                    username: a.username.clone(),
                    password: a.password.clone(),
                    auth: a.auth.clone(),
                    server_address: String::new(),
                    identity_token: a.identity_token.clone(),
                    registry_token: a.registry_token.clone(),
                }),
                sandbox_config: None,
            })
            .await
            .map_err(status_err)?
            .into_inner()
            .image_ref)
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let r = self
            .img
            .clone()
            .list_images(pb::ListImagesRequest { filter: None })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(r.images.into_iter().map(image_from_pb).collect())
    }

    async fn image_status(&self, image: &ImageSpec) -> Result<Option<Image>> {
        let r = self
            .img
            .clone()
            .image_status(pb::ImageStatusRequest {
                image: Some(pb::ImageSpec {
                    image: image.image.clone(),
                    annotations: HashMap::new(),
                }),
                verbose: false,
            })
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(r.image.map(image_from_pb))
    }

    async fn remove_image(&self, image: &ImageSpec) -> Result<()> {
        self.img
            .clone()
            .remove_image(pb::RemoveImageRequest {
                image: Some(pb::ImageSpec {
                    image: image.image.clone(),
                    annotations: HashMap::new(),
                }),
            })
            .await
            .map_err(status_err)?;
        Ok(())
    }

    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>> {
        let r = self
            .img
            .clone()
            .image_fs_info(pb::ImageFsInfoRequest {})
            .await
            .map_err(status_err)?
            .into_inner();
        Ok(r.image_filesystems
            .into_iter()
            .map(|f| FilesystemUsage {
                timestamp: f.timestamp,
                mountpoint: f.fs_id.map(|i| i.mountpoint).unwrap_or_default().into(),
                used_bytes: f.used_bytes.map(|v| v.value).unwrap_or(0),
                inodes_used: f.inodes_used.map(|v| v.value).unwrap_or(0),
            })
            .collect())
    }
}
