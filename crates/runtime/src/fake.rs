//! The fake runtime: sandboxes, containers and images kept in memory, no processes. Hollow
//! nodes in scale tests and benchmarks run on it; it keeps the same state machine and error
//! cases as the native runtime (unknown ids are `NotFound`, images in use cannot be removed,
//! only created containers start) so that kubelet code behaves the same on both.
//!
//! Exec and attach succeed with empty output and exit code 0; a container "exits" only when
//! stopped (exit code 0, reason `Completed`), or when a test calls [`FakeRuntime::exit`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::types::*;
use crate::{Error, ImageService, PortForward, Result, RuntimeService, StreamSession, Streaming};

#[derive(Clone)]
struct FakeSandbox {
    config: PodSandboxConfig,
    state: SandboxState,
    created_at: i64,
}

#[derive(Clone)]
struct FakeContainer {
    sandbox_id: String,
    config: ContainerConfig,
    image_ref: String,
    state: ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
}

#[derive(Default)]
struct State {
    next_id: u64,
    sandboxes: HashMap<String, FakeSandbox>,
    containers: HashMap<String, FakeContainer>,
    /// Image id → image.
    images: HashMap<String, Image>,
}

/// An in-memory runtime. Cheap to clone via `Arc`; all methods are thread-safe.
#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

/// The id a fake image gets: a stable digest-shaped string derived from its name.
fn fake_image_id(name: &str) -> String {
    // FNV-1a, repeated to fill 64 hex digits; stable across runs.
    let mut out = String::from("sha256:");
    let mut h: u64 = 0xcbf29ce484222325;
    for round in 0..4u8 {
        for b in name.bytes().chain([round]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a running container exit with `code` (for tests of restart handling).
    pub fn exit(&self, id: &str, code: i32) -> Result<()> {
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        c.state = ContainerState::Exited;
        c.exit_code = code;
        c.finished_at = now_nanos();
        c.reason = if code == 0 { "Completed" } else { "Error" }.into();
        Ok(())
    }

    /// Adds an image as if it had been pulled.
    pub fn add_image(&self, name: &str) -> String {
        let id = fake_image_id(name);
        let mut st = self.lock();
        let img = st.images.entry(id.clone()).or_insert_with(|| Image {
            id: id.clone(),
            size: 1 << 20,
            ..Default::default()
        });
        if !img.repo_tags.iter().any(|t| t == name) {
            img.repo_tags.push(name.to_string());
        }
        id
    }

    fn find_image<'a>(st: &'a State, name: &str) -> Option<&'a Image> {
        st.images
            .values()
            .find(|i| i.id == name || i.repo_tags.iter().any(|t| t == name))
    }

    fn new_id(st: &mut State) -> String {
        st.next_id += 1;
        format!("{:064x}", st.next_id)
    }
}

fn empty_session() -> StreamSession {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Ok(0));
    StreamSession {
        stdin: None,
        stdout: Some(Box::pin(tokio::io::empty())),
        stderr: None,
        resize: None,
        exit: rx,
    }
}

#[async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self) -> Result<VersionInfo> {
        Ok(VersionInfo {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let mut st = self.lock();
        let id = Self::new_id(&mut st);
        st.sandboxes.insert(
            id.clone(),
            FakeSandbox {
                config: config.clone(),
                state: SandboxState::Ready,
                created_at: now_nanos(),
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        let Some(sb) = st.sandboxes.get_mut(id) else {
            return Err(Error::NotFound(format!("pod sandbox {id}")));
        };
        sb.state = SandboxState::NotReady;
        let now = now_nanos();
        for c in st.containers.values_mut().filter(|c| c.sandbox_id == id) {
            if c.state == ContainerState::Running {
                c.state = ContainerState::Exited;
                c.exit_code = 137;
                c.reason = "Error".into();
                c.finished_at = now;
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        st.containers.retain(|_, c| c.sandbox_id != id);
        st.sandboxes.remove(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let st = self.lock();
        let sb = st
            .sandboxes
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("pod sandbox {id}")))?;
        Ok(PodSandboxStatus {
            id: id.to_string(),
            metadata: sb.config.metadata.clone(),
            state: sb.state,
            created_at: sb.created_at,
            ip: sb.config.pod_ip.clone(),
            network_namespace: None,
            labels: sb.config.labels.clone(),
            annotations: sb.config.annotations.clone(),
        })
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandbox>> {
        let st = self.lock();
        let mut out: Vec<PodSandbox> = st
            .sandboxes
            .iter()
            .filter(|(id, sb)| {
                filter.id.as_ref().is_none_or(|f| f == *id)
                    && filter.state.is_none_or(|s| s == sb.state)
                    && labels_match(&filter.label_selector, &sb.config.labels)
            })
            .map(|(id, sb)| PodSandbox {
                id: id.clone(),
                metadata: sb.config.metadata.clone(),
                state: sb.state,
                created_at: sb.created_at,
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
            })
            .collect();
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let mut st = self.lock();
        match st.sandboxes.get(sandbox_id) {
            None => return Err(Error::NotFound(format!("pod sandbox {sandbox_id}"))),
            Some(sb) if sb.state != SandboxState::Ready => {
                return Err(Error::FailedPrecondition(format!(
                    "pod sandbox {sandbox_id} is not ready"
                )));
            }
            Some(_) => {}
        }
        let image_ref = Self::find_image(&st, &config.image.image)
            .map(|i| i.id.clone())
            .ok_or_else(|| Error::NotFound(format!("image {:?}", config.image.image)))?;
        let name = &config.metadata;
        if st.containers.values().any(|c| {
            c.sandbox_id == sandbox_id
                && c.config.metadata.name == name.name
                && c.config.metadata.attempt == name.attempt
        }) {
            return Err(Error::AlreadyExists(format!(
                "container {:?} attempt {} in pod sandbox {sandbox_id}",
                name.name, name.attempt
            )));
        }
        let id = Self::new_id(&mut st);
        st.containers.insert(
            id.clone(),
            FakeContainer {
                sandbox_id: sandbox_id.to_string(),
                config: config.clone(),
                image_ref,
                state: ContainerState::Created,
                created_at: now_nanos(),
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        if c.state != ContainerState::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {:?}, not created",
                c.state
            )));
        }
        c.state = ContainerState::Running;
        c.started_at = now_nanos();
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<()> {
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        if c.state == ContainerState::Running || c.state == ContainerState::Created {
            c.state = ContainerState::Exited;
            c.exit_code = 0;
            c.reason = "Completed".into();
            c.finished_at = now_nanos();
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.lock().containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>> {
        let st = self.lock();
        let mut out: Vec<Container> = st
            .containers
            .iter()
            .filter(|(id, c)| {
                filter.id.as_ref().is_none_or(|f| f == *id)
                    && filter.state.is_none_or(|s| s == c.state)
                    && filter
                        .pod_sandbox_id
                        .as_ref()
                        .is_none_or(|s| *s == c.sandbox_id)
                    && labels_match(&filter.label_selector, &c.config.labels)
            })
            .map(|(id, c)| Container {
                id: id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                image_ref: c.image_ref.clone(),
                state: c.state,
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
            })
            .collect();
        out.sort_by_key(|c| c.created_at);
        Ok(out)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let st = self.lock();
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        Ok(ContainerStatus {
            id: id.to_string(),
            metadata: c.config.metadata.clone(),
            state: c.state,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: c.config.image.clone(),
            image_ref: c.image_ref.clone(),
            reason: c.reason.clone(),
            message: String::new(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            mounts: c.config.mounts.clone(),
            log_path: None,
            pid: None,
        })
    }

    async fn update_container_resources(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        c.config.resources = Some(resources.clone());
        Ok(())
    }

    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.running(id)
    }

    async fn exec_sync(
        &self,
        id: &str,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        self.running(id)?;
        Ok(ExecSyncResponse::default())
    }

    async fn exec(&self, id: &str, _req: &ExecRequest) -> Result<Streaming> {
        self.running(id)?;
        Ok(Streaming::Session(empty_session()))
    }

    async fn attach(&self, id: &str, _req: &AttachRequest) -> Result<Streaming> {
        self.running(id)?;
        Ok(Streaming::Session(empty_session()))
    }

    async fn port_forward(&self, sandbox_id: &str, _port: u16) -> Result<PortForward> {
        if !self.lock().sandboxes.contains_key(sandbox_id) {
            return Err(Error::NotFound(format!("pod sandbox {sandbox_id}")));
        }
        let (a, _b) = tokio::io::duplex(64);
        Ok(PortForward::Connected(Box::new(a)))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let st = self.lock();
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        Ok(ContainerStats {
            id: id.to_string(),
            metadata: c.config.metadata.clone(),
            timestamp: now_nanos(),
            ..Default::default()
        })
    }

    async fn list_container_stats(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStats>> {
        let ids: Vec<String> = self
            .list_containers(filter)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.container_stats(&id).await?);
        }
        Ok(out)
    }
}

impl FakeRuntime {
    fn running(&self, id: &str) -> Result<()> {
        let st = self.lock();
        match st.containers.get(id) {
            None => Err(Error::NotFound(format!("container {id}"))),
            Some(c) if c.state != ContainerState::Running => Err(Error::FailedPrecondition(
                format!("container {id} is not running"),
            )),
            Some(_) => Ok(()),
        }
    }
}

#[async_trait]
impl ImageService for FakeRuntime {
    async fn pull_image(&self, image: &ImageSpec, _auth: Option<&AuthConfig>) -> Result<String> {
        if image.image.trim().is_empty() {
            return Err(Error::InvalidArgument("image name is empty".into()));
        }
        Ok(self.add_image(&image.image))
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let mut v: Vec<Image> = self.lock().images.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    async fn image_status(&self, image: &ImageSpec) -> Result<Option<Image>> {
        Ok(Self::find_image(&self.lock(), &image.image).cloned())
    }

    async fn remove_image(&self, image: &ImageSpec) -> Result<()> {
        let mut st = self.lock();
        let Some(id) = Self::find_image(&st, &image.image).map(|i| i.id.clone()) else {
            return Ok(());
        };
        if let Some(c) = st.containers.values().find(|c| c.image_ref == id) {
            return Err(Error::FailedPrecondition(format!(
                "image {} is in use by container {:?}",
                image.image, c.config.metadata.name
            )));
        }
        st.images.remove(&id);
        Ok(())
    }

    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>> {
        let st = self.lock();
        Ok(vec![FilesystemUsage {
            timestamp: now_nanos(),
            mountpoint: "/var/lib/rkube/images".into(),
            used_bytes: st.images.values().map(|i| i.size).sum(),
            inodes_used: st.images.len() as u64,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_config(name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            },
            labels: [("app".to_string(), name.to_string())].into(),
            ..Default::default()
        }
    }

    fn container_config(name: &str, image: &str) -> ContainerConfig {
        ContainerConfig {
            metadata: ContainerMetadata {
                name: name.into(),
                attempt: 0,
            },
            image: ImageSpec {
                image: image.into(),
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn lifecycle_and_errors() {
        let rt = FakeRuntime::new();
        let img = rt
            .pull_image(
                &ImageSpec {
                    image: "busybox".into(),
                },
                None,
            )
            .await
            .unwrap();
        assert!(img.starts_with("sha256:") && img.len() == 71);
        let sb_cfg = sandbox_config("web");
        let sb = rt.run_pod_sandbox(&sb_cfg).await.unwrap();
        let c = rt
            .create_container(&sb, &container_config("app", "busybox"), &sb_cfg)
            .await
            .unwrap();
        // The same name and attempt twice in one sandbox is refused.
        let dup = rt
            .create_container(&sb, &container_config("app", "busybox"), &sb_cfg)
            .await;
        assert!(matches!(dup, Err(Error::AlreadyExists(_))), "{dup:?}");
        // Unknown image and unknown sandbox.
        let missing = rt
            .create_container(&sb, &container_config("x", "nope"), &sb_cfg)
            .await;
        assert!(matches!(missing, Err(Error::NotFound(_))));
        assert!(matches!(
            rt.create_container("zzz", &container_config("x", "busybox"), &sb_cfg)
                .await,
            Err(Error::NotFound(_))
        ));
        // Exec needs a running container.
        assert!(matches!(
            rt.exec_sync(&c, &["true".into()], Duration::ZERO).await,
            Err(Error::FailedPrecondition(_))
        ));
        rt.start_container(&c).await.unwrap();
        assert!(matches!(
            rt.start_container(&c).await,
            Err(Error::FailedPrecondition(_))
        ));
        assert_eq!(
            rt.container_status(&c).await.unwrap().state,
            ContainerState::Running
        );
        // The image is in use.
        assert!(matches!(
            rt.remove_image(&ImageSpec {
                image: "busybox".into()
            })
            .await,
            Err(Error::FailedPrecondition(_))
        ));
        rt.exit(&c, 3).unwrap();
        let st = rt.container_status(&c).await.unwrap();
        assert_eq!(
            (st.state, st.exit_code, st.reason.as_str()),
            (ContainerState::Exited, 3, "Error")
        );
        // Filters.
        let running = rt
            .list_containers(&ContainerFilter {
                state: Some(ContainerState::Running),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(running.is_empty());
        let by_label = rt
            .list_pod_sandboxes(&PodSandboxFilter {
                label_selector: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_label.len(), 1);
        rt.stop_pod_sandbox(&sb).await.unwrap();
        assert_eq!(
            rt.pod_sandbox_status(&sb).await.unwrap().state,
            SandboxState::NotReady
        );
        rt.remove_pod_sandbox(&sb).await.unwrap();
        assert!(
            rt.list_containers(&ContainerFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            rt.container_status(&c).await,
            Err(Error::NotFound(_))
        ));
        // Removing twice is fine; now the image can go.
        rt.remove_pod_sandbox(&sb).await.unwrap();
        rt.remove_image(&ImageSpec {
            image: "busybox".into(),
        })
        .await
        .unwrap();
        assert!(rt.list_images().await.unwrap().is_empty());
    }
}
