//! The container runtime as the pod worker sees it: a small CRI-shaped trait
//! ([`Runtime`]: sandboxes, containers, their status, and container events), and
//! [`FakeRuntime`], which runs no processes, for hollow nodes.
//!
//! The full CRI-shaped runtime (`rkube-runtime`, with native, CRI and fake implementations)
//! is being built separately; once it lands, an adapter from its `RuntimeService` to this
//! trait lets the same pod worker drive real containers.
//!
//! The fake's containers run until stopped, unless the pod says otherwise with annotations
//! (copied from a Job's template like any other):
//! - `fake.rkube.io/run-seconds` (decimal seconds): containers exit after this long;
//! - `fake.rkube.io/exit-code` (default 0): the code they exit with;
//! - `…/run-seconds.<container>` and `…/exit-code.<container>` override one container.
//!
//! Init containers exit 0 at once unless a per-container annotation says otherwise.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;

/// Annotation: seconds a fake container runs before it exits.
pub const RUN_SECONDS: &str = "fake.rkube.io/run-seconds";
/// Annotation: the exit code of a fake container that exits.
pub const EXIT_CODE: &str = "fake.rkube.io/exit-code";

/// A runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// What a pod sandbox is made from.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The pod's IP on the pod network.
    pub ip: Option<IpAddr>,
    pub annotations: BTreeMap<String, String>,
}

/// What a container is made from.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    /// How many times this container was created before in this pod (the restart count).
    pub attempt: u32,
    /// An init container (runs to completion before the regular ones).
    pub init: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
}

/// A container as the runtime reports it.
#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub exit_code: i32,
    /// `Completed` or `Error` once exited.
    pub reason: String,
    /// The image's digest reference (`repo@sha256:…`).
    pub image_ref: String,
}

/// Something changed in a container (it exited); names the pod it belongs to.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub container_id: String,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
}

/// Pod sandboxes and containers, shaped like the parts of the CRI the pod worker uses.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `name://version` as nodeInfo.containerRuntimeVersion shows it.
    fn version(&self) -> String;
    /// The URI scheme of container ids in pod status (`containerd`, `fake`).
    fn id_scheme(&self) -> &'static str;
    /// Container events; the first caller gets the stream, later ones `None`.
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<ContainerEvent>>;

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String>;
    /// Stops every container of the sandbox (each within `timeout`) and removes it all;
    /// idempotent.
    async fn remove_pod_sandbox(&self, id: &str, timeout: Duration) -> Result<()>;
    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Stops a container, forcibly after `timeout`; a no-op once it has exited.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
}

struct FakeContainer {
    sandbox: String,
    config: ContainerConfig,
    state: ContainerState,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    exit_code: i32,
    /// When started: run this long, then exit with this code.
    plan: Option<(Duration, i32)>,
}

#[derive(Default)]
struct FakeState {
    next: u64,
    sandboxes: HashMap<String, SandboxConfig>,
    containers: HashMap<String, FakeContainer>,
}

/// An in-memory runtime: no processes, containers exit on a timer when told to.
pub struct FakeRuntime {
    state: Arc<Mutex<FakeState>>,
    events: mpsc::UnboundedSender<ContainerEvent>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<ContainerEvent>>>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

/// A stable digest-shaped id derived from `s` (FNV-1a, 64 hex digits).
pub fn fake_digest(s: &str) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf29ce484222325;
    for round in 0..4u8 {
        for b in s.bytes().chain([round]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// `repo@sha256:…` for an image reference, as runtimes report imageID.
fn image_ref(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repo = match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    };
    format!("{repo}@sha256:{}", fake_digest(image))
}

fn lock(m: &Mutex<FakeState>) -> std::sync::MutexGuard<'_, FakeState> {
    // Poisoning only means another task panicked; the maps are still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a container behaves, from the pod's annotations; `Err` for unreadable values.
fn plan_for(
    annotations: &BTreeMap<String, String>,
    config: &ContainerConfig,
) -> Result<Option<(Duration, i32)>> {
    let pick = |key: &str| {
        annotations
            .get(&format!("{key}.{}", config.name))
            .or_else(|| annotations.get(key))
    };
    let per_container = |key: &str| annotations.get(&format!("{key}.{}", config.name));
    let secs = if config.init {
        per_container(RUN_SECONDS).map(String::as_str).or(Some("0"))
    } else {
        pick(RUN_SECONDS).map(String::as_str)
    };
    let Some(secs) = secs else {
        return Ok(None);
    };
    let secs: f64 = secs
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            RuntimeError::Invalid(format!("{RUN_SECONDS}: not a number of seconds: {secs:?}"))
        })?;
    let code_text = if config.init {
        per_container(EXIT_CODE)
    } else {
        pick(EXIT_CODE)
    };
    let code = match code_text {
        None => 0,
        Some(c) => c
            .trim()
            .parse()
            .map_err(|_| RuntimeError::Invalid(format!("{EXIT_CODE}: not an exit code: {c:?}")))?,
    };
    Ok(Some((Duration::from_secs_f64(secs), code)))
}

impl FakeRuntime {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        FakeRuntime {
            state: Arc::default(),
            events: tx,
            receiver: Mutex::new(Some(rx)),
        }
    }

    /// Number of sandboxes and containers held (for tests).
    pub fn counts(&self) -> (usize, usize) {
        let st = lock(&self.state);
        (st.sandboxes.len(), st.containers.len())
    }

    fn exit(state: &Mutex<FakeState>, id: &str, code: i32) -> Option<ContainerEvent> {
        let mut st = lock(state);
        let c = st.containers.get_mut(id)?;
        if c.state != ContainerState::Running {
            return None;
        }
        c.state = ContainerState::Exited;
        c.exit_code = code;
        c.finished_at = Some(Timestamp::now());
        let sandbox = st.containers.get(id)?.sandbox.clone();
        let sb = st.sandboxes.get(&sandbox)?;
        Some(ContainerEvent {
            container_id: id.to_string(),
            pod_namespace: sb.namespace.clone(),
            pod_name: sb.name.clone(),
            pod_uid: sb.uid.clone(),
        })
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn version(&self) -> String {
        format!("fake://{}", env!("CARGO_PKG_VERSION"))
    }

    fn id_scheme(&self) -> &'static str {
        "fake"
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<ContainerEvent>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        let mut st = lock(&self.state);
        st.next += 1;
        let id = fake_digest(&format!("sandbox/{}/{}", config.uid, st.next));
        st.sandboxes.insert(id.clone(), config.clone());
        Ok(id)
    }

    async fn remove_pod_sandbox(&self, id: &str, _timeout: Duration) -> Result<()> {
        let mut st = lock(&self.state);
        st.sandboxes.remove(id);
        st.containers.retain(|_, c| c.sandbox != id);
        Ok(())
    }

    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig) -> Result<String> {
        let mut st = lock(&self.state);
        let sandbox = st
            .sandboxes
            .get(sandbox_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("sandbox {sandbox_id}")))?;
        let plan = plan_for(&sandbox.annotations, config)?;
        st.next += 1;
        let id = fake_digest(&format!(
            "container/{sandbox_id}/{}/{}",
            config.name, st.next
        ));
        st.containers.insert(
            id.clone(),
            FakeContainer {
                sandbox: sandbox_id.to_string(),
                config: config.clone(),
                state: ContainerState::Created,
                started_at: None,
                finished_at: None,
                exit_code: 0,
                plan,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let plan = {
            let mut st = lock(&self.state);
            let c = st
                .containers
                .get_mut(id)
                .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
            if c.state != ContainerState::Created {
                return Err(RuntimeError::Invalid(format!(
                    "container {id} is not in created state"
                )));
            }
            c.state = ContainerState::Running;
            c.started_at = Some(Timestamp::now());
            c.plan
        };
        if let Some((after, code)) = plan {
            let state = self.state.clone();
            let events = self.events.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                if !after.is_zero() {
                    tokio::time::sleep(after).await;
                }
                if let Some(ev) = FakeRuntime::exit(&state, &id, code) {
                    let _ = events.send(ev);
                }
            });
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<()> {
        // A fake process exits on its stop signal at once, with 0.
        FakeRuntime::exit(&self.state, id, 0);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        lock(&self.state).containers.remove(id);
        Ok(())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let st = lock(&self.state);
        let c = st
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
        Ok(ContainerStatus {
            id: id.to_string(),
            name: c.config.name.clone(),
            state: c.state,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            reason: match (c.state, c.exit_code) {
                (ContainerState::Exited, 0) => "Completed".into(),
                (ContainerState::Exited, _) => "Error".into(),
                _ => String::new(),
            },
            image_ref: image_ref(&c.config.image),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(annotations: &[(&str, &str)]) -> SandboxConfig {
        SandboxConfig {
            name: "p".into(),
            namespace: "default".into(),
            uid: "u1".into(),
            ip: None,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn container(name: &str, init: bool) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: "nginx:1.27".into(),
            attempt: 0,
            init,
        }
    }

    #[tokio::test]
    async fn containers_run_until_stopped_without_annotations() {
        let rt = FakeRuntime::new();
        let sb = rt.run_pod_sandbox(&sandbox(&[])).await.unwrap();
        let c = rt
            .create_container(&sb, &container("web", false))
            .await
            .unwrap();
        assert_eq!(
            rt.container_status(&c).await.unwrap().state,
            ContainerState::Created
        );
        rt.start_container(&c).await.unwrap();
        assert!(
            rt.start_container(&c).await.is_err(),
            "only created containers start"
        );
        let s = rt.container_status(&c).await.unwrap();
        assert_eq!(s.state, ContainerState::Running);
        assert_eq!(
            s.image_ref,
            format!("nginx@sha256:{}", fake_digest("nginx:1.27"))
        );
        rt.stop_container(&c, Duration::from_secs(30))
            .await
            .unwrap();
        let s = rt.container_status(&c).await.unwrap();
        assert_eq!(
            (s.state, s.exit_code, s.reason.as_str()),
            (ContainerState::Exited, 0, "Completed")
        );
        rt.remove_pod_sandbox(&sb, Duration::ZERO).await.unwrap();
        assert_eq!(rt.counts(), (0, 0));
        assert!(rt.container_status(&c).await.is_err());
    }

    #[tokio::test]
    async fn annotated_containers_exit_on_time_with_their_code_and_an_event() {
        let rt = FakeRuntime::new();
        let mut events = rt.take_events().unwrap();
        assert!(rt.take_events().is_none());
        let sb = rt
            .run_pod_sandbox(&sandbox(&[
                (RUN_SECONDS, "0.05"),
                (EXIT_CODE, "3"),
                ("fake.rkube.io/exit-code.side", "0"),
            ]))
            .await
            .unwrap();
        let init = rt
            .create_container(&sb, &container("setup", true))
            .await
            .unwrap();
        let main = rt
            .create_container(&sb, &container("main", false))
            .await
            .unwrap();
        let side = rt
            .create_container(&sb, &container("side", false))
            .await
            .unwrap();
        for c in [&init, &main, &side] {
            rt.start_container(c).await.unwrap();
        }
        let mut exited = Vec::new();
        for _ in 0..3 {
            let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!((ev.pod_name.as_str(), ev.pod_uid.as_str()), ("p", "u1"));
            exited.push(ev.container_id);
        }
        assert_eq!(exited[0], init, "init containers exit at once");
        let m = rt.container_status(&main).await.unwrap();
        assert_eq!((m.exit_code, m.reason.as_str()), (3, "Error"));
        assert_eq!(rt.container_status(&side).await.unwrap().exit_code, 0);
    }

    #[tokio::test]
    async fn bad_annotations_are_errors() {
        let rt = FakeRuntime::new();
        let sb = rt
            .run_pod_sandbox(&sandbox(&[(RUN_SECONDS, "soon")]))
            .await
            .unwrap();
        let err = rt
            .create_container(&sb, &container("web", false))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a number of seconds"), "{err}");
        assert!(
            rt.create_container("nope", &container("web", false))
                .await
                .is_err()
        );
    }
}
