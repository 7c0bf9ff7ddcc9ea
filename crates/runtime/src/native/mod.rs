//! The native runtime: real Linux containers made by youki's `libcontainer`, one shim
//! process per container (see [`crate::shim`]).
//!
//! All state lives on disk, so a new runtime (after an agent restart) sees exactly what the
//! old one left, including containers still running under their shims:
//!
//! - `<root>/sandboxes/<id>/` — `sandbox.json`, the pod's `hosts`, `resolv.conf`,
//!   `hostname`;
//! - `<root>/containers/<id>/` — `container.json` (what was asked for), `status.json`
//!   (kept by the shim), `config.json` (the OCI spec; the directory is the bundle),
//!   `upper/` and `work/`, `termination-log`, `shim.json`, `shim.log`;
//! - `<run>/ns/<sandbox>/{net,ipc,uts}` — pinned namespaces; `<run>/roots/<id>` — where the
//!   shim mounts the container's root filesystem (in its own mount namespace only; both are
//!   private tmpfs mounts, see [`tmpfs`]); `<run>/shims/<id>.sock` — shim
//!   sockets; `<run>/lc/` — libcontainer's state (short paths: unix sockets have a 108-byte
//!   limit);
//! - `<root>/images/` — the [`rkube_images::ImageStore`].
//!
//! How a container is made: `create_container` takes a lease on the image, writes the OCI
//! spec (joining the sandbox's namespaces, in the cgroup
//! `<cgroup root>/pod-<sandbox>/<container>`; user names resolved from the image's layers)
//! and starts a shim, which mounts the image's snapshots and `upper/` as an overlay at
//! `<run>/roots/<id>` in a mount namespace of its own, creates the container with libcontainer and
//! waits; `start_container` asks the shim to start it; the shim records its exit;
//! `remove_container` deletes what is left.

pub(crate) mod sandbox;
mod shim_client;
pub mod spec;
pub(crate) mod tmpfs;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rkube_images::{Credentials, ImageRecord, ImageStore, PullOptions};
use serde::{Deserialize, Serialize};

use crate::error::io;
use crate::shim::protocol::{Request, RootfsConfig, ShimConfig, ShimState, ShimStatus};
use crate::types::*;
use crate::{Error, ImageService, PortForward, Result, RuntimeService, Streaming};

/// Where the native runtime keeps things and how it behaves.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// Persistent state (images, sandboxes, containers).
    pub root: PathBuf,
    /// Runtime state with short paths (sockets, namespace pins, libcontainer state).
    pub run_root: PathBuf,
    /// The `rkube` binary the shims run as.
    pub shim_binary: PathBuf,
    /// The cgroup under which pod cgroups are made (`/rkube`).
    pub cgroup_root: String,
    /// Log rotation: bytes per file and files kept.
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// Registries, mirrors and credentials for pulls.
    pub pull: PullOptions,
    /// Turn on the kernel's `favordynmods` cgroup mode when the runtime opens (as root):
    /// see [`crate::cgroups::favor_dynamic_modifications`].
    pub favor_dynamic_cgroups: bool,
}

impl NativeConfig {
    /// Defaults for a data directory: state in `<data-dir>/agent`, runtime state in
    /// `/run/rkube` (as root), shims run by this executable.
    pub fn new(data_dir: &Path) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        let run_root = if unsafe { libc::geteuid() } == 0 {
            PathBuf::from("/run/rkube")
        } else {
            data_dir.join("run")
        };
        Ok(Self {
            root: data_dir.join("agent"),
            run_root,
            shim_binary: std::env::current_exe().map_err(io("finding the rkube binary"))?,
            cgroup_root: "/rkube".into(),
            log_max_bytes: 10 << 20,
            log_max_files: 5,
            pull: PullOptions::default(),
            favor_dynamic_cgroups: true,
        })
    }
}

/// What the runtime records about a sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SandboxRecord {
    id: String,
    config: PodSandboxConfig,
    created_at: i64,
    state: SandboxState,
}

/// What the runtime records about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ContainerRecord {
    id: String,
    sandbox_id: String,
    config: ContainerConfig,
    image_id: String,
    created_at: i64,
    log_path: PathBuf,
    stop_signal: i32,
    cgroup: String,
}

/// The native runtime. Cheap to share behind an `Arc`.
pub struct NativeRuntime {
    cfg: NativeConfig,
    images: ImageStore,
    /// One lock per sandbox, held while a container of it is created: names are claimed
    /// one at a time (the kubelet creates a pod's containers one after another anyway).
    creating: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// `<run>/ns`: the sandboxes' pinned namespaces.
    ns_root: tmpfs::PrivateTmpfs,
    /// `<run>/roots`: where shims mount container root filesystems (in their own mount
    /// namespaces), on a mount of its own that propagates nowhere — so a shim can keep the
    /// host's other mounts shared, as `Bidirectional` volumes need.
    roots: tmpfs::PrivateTmpfs,
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io("reading /dev/urandom"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn check_id(id: &str, what: &str) -> Result<()> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::NotFound(format!("{what} {id:?}")));
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<Option<T>> {
    match std::fs::read(p) {
        Ok(d) => serde_json::from_slice(&d)
            .map(Some)
            .map_err(|e| Error::Runtime(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", p.display()))(e)),
    }
}

fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(v).map_err(|e| Error::Runtime(e.to_string()))?;
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, p).map_err(io(format!("writing {}", p.display())))
}

fn write_file(p: &Path, data: &str) -> Result<()> {
    std::fs::write(p, data).map_err(io(format!("writing {}", p.display())))
}

fn image_to_cri(img: &ImageRecord) -> Image {
    let user = img.config.run.user.clone().unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default().to_string();
    let (uid, username) = match user.parse::<i64>() {
        Ok(u) => (Some(u), String::new()),
        Err(_) if user.is_empty() => (None, String::new()),
        Err(_) => (None, user),
    };
    Image {
        id: img.id.clone(),
        repo_tags: img.repo_tags.clone(),
        repo_digests: img.repo_digests.clone(),
        size: img.size,
        uid,
        username,
        pinned: false,
    }
}

impl NativeRuntime {
    /// Opens the runtime's state (creating directories); sees every sandbox and container an
    /// earlier runtime left, running or not.
    pub fn new(cfg: NativeConfig) -> Result<Self> {
        for d in [
            cfg.root.join("sandboxes"),
            cfg.root.join("containers"),
            cfg.run_root.join("ns"),
            cfg.run_root.join("shims"),
            cfg.run_root.join("lc"),
        ] {
            std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        let images = ImageStore::open(cfg.root.join("images"))?;
        // SAFETY: geteuid has no preconditions.
        if cfg.favor_dynamic_cgroups && unsafe { libc::geteuid() } == 0 {
            match crate::cgroups::favor_dynamic_modifications() {
                Ok(true) => tracing::info!(
                    "cgroup2 remounted with favordynmods: moving a container's process into its cgroups no longer waits for an RCU grace period"
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    "could not turn on cgroup2 favordynmods (Linux 6.0+), container creation waits for RCU grace periods: {e}"
                ),
            }
        }
        let ns_root = tmpfs::PrivateTmpfs::new(cfg.run_root.join("ns"), "1m");
        let roots = tmpfs::PrivateTmpfs::new(cfg.run_root.join("roots"), "64k");
        Ok(Self {
            cfg,
            images,
            creating: Default::default(),
            ns_root,
            roots,
        })
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn config(&self) -> &NativeConfig {
        &self.cfg
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("sandboxes").join(id)
    }

    fn ns_dir(&self, id: &str) -> PathBuf {
        self.ns_root_dir().join(id)
    }

    fn ns_root_dir(&self) -> PathBuf {
        self.ns_root.dir().to_path_buf()
    }

    /// Pins a new sandbox's namespaces, mounting the tmpfs at `<run>/ns` first if needed.
    async fn pin(&self, id: &str, hostname: String, pins: sandbox::Pins) -> Result<()> {
        let _held = self.ns_root.hold().await?;
        let nsdir = self.ns_dir(id);
        tokio::task::spawn_blocking(move || sandbox::pin(&nsdir, &hostname, pins))
            .await
            .map_err(|e| Error::Runtime(format!("namespace task: {e}")))?
    }

    /// Unpins a sandbox's namespaces; the last one out unmounts the tmpfs at `<run>/ns`.
    async fn unpin(&self, id: &str) -> Result<()> {
        sandbox::unpin(&self.ns_dir(id))?;
        self.ns_root.release_if_empty().await
    }

    /// Where a container's root filesystem is mounted (in its shim's mount namespace).
    fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.roots.dir().join(id)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    fn socket(&self, id: &str) -> PathBuf {
        self.cfg
            .run_root
            .join("shims")
            .join(format!("{}.sock", &id[..id.len().min(32)]))
    }

    fn lc_id(id: &str) -> String {
        id[..id.len().min(32)].to_string()
    }

    /// The pid of a container's shim while it runs.
    pub fn shim_pid(&self, id: &str) -> Option<i32> {
        check_id(id, "container").ok()?;
        let st: ShimStatus = read_json(&self.container_dir(id).join("status.json")).ok()??;
        (st.state != ShimState::Exited && st.shim_pid > 0).then_some(st.shim_pid)
    }

    /// The pod cgroup of a sandbox.
    pub fn pod_cgroup(&self, sandbox_id: &str) -> String {
        format!(
            "{}/pod-{}",
            self.cfg.cgroup_root.trim_end_matches('/'),
            &sandbox_id[..sandbox_id.len().min(16)]
        )
    }

    /// The file that claims a container name (and attempt) in a sandbox; it holds the id.
    fn name_file(&self, sandbox_id: &str, m: &ContainerMetadata) -> PathBuf {
        self.sandbox_dir(sandbox_id)
            .join("names")
            .join(format!("{}-{}", m.attempt, m.name))
    }

    /// The ids of a sandbox's containers (from its name files).
    fn sandbox_container_ids(&self, sandbox_id: &str) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.sandbox_dir(sandbox_id).join("names")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|id| check_id(id, "container").is_ok())
            .collect()
    }

    fn creation_lock(&self, sandbox_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.creating.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(sandbox_id.to_string()).or_default().clone()
    }

    /// Claims a container name in a sandbox for `id`; refuses a name a container holds. A
    /// claim whose container never got its `container.json` (its creation failed, or the
    /// agent stopped during it) is stale and taken over: creations of one sandbox's
    /// containers do not overlap (see `creating`).
    fn claim_name(&self, sandbox_id: &str, m: &ContainerMetadata, id: &str) -> Result<()> {
        let p = self.name_file(sandbox_id, m);
        if let Ok(holder) = std::fs::read_to_string(&p)
            && check_id(&holder, "container").is_ok()
            && self.container_dir(&holder).join("container.json").exists()
        {
            return Err(Error::AlreadyExists(format!(
                "container {:?} attempt {} in pod sandbox {sandbox_id}",
                m.name, m.attempt
            )));
        }
        write_file(&p, id)
    }

    fn load_sandbox(&self, id: &str) -> Result<SandboxRecord> {
        check_id(id, "pod sandbox")?;
        read_json(&self.sandbox_dir(id).join("sandbox.json"))?
            .ok_or_else(|| Error::NotFound(format!("pod sandbox {id}")))
    }

    fn load_container(&self, id: &str) -> Result<ContainerRecord> {
        check_id(id, "container")?;
        read_json(&self.container_dir(id).join("container.json"))?
            .ok_or_else(|| Error::NotFound(format!("container {id}")))
    }

    fn ids(&self, kind: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let dir = self.cfg.root.join(kind);
        for e in std::fs::read_dir(&dir).map_err(io(format!("listing {}", dir.display())))? {
            let e = e.map_err(io(format!("listing {}", dir.display())))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// The shim's view of a container, corrected when the shim is gone without recording an
    /// exit (it was killed, or the machine restarted).
    async fn shim_status(&self, id: &str) -> ShimStatus {
        let st: Option<ShimStatus> = read_json(&self.container_dir(id).join("status.json"))
            .ok()
            .flatten();
        match st {
            Some(s) if s.state == ShimState::Exited => s,
            Some(s) if shim_client::alive(&self.socket(id)).await => s,
            // Read again: the shim may have finished between the two looks.
            _ => match read_json::<ShimStatus>(&self.container_dir(id).join("status.json"))
                .ok()
                .flatten()
            {
                Some(s) if s.state == ShimState::Exited => s,
                other => ShimStatus {
                    state: ShimState::Exited,
                    pid: other.as_ref().map(|s| s.pid).unwrap_or(0),
                    shim_pid: 0,
                    started_at: other.as_ref().map(|s| s.started_at).unwrap_or(0),
                    finished_at: other.as_ref().map(|s| s.finished_at).unwrap_or(0),
                    exit_code: 255,
                    reason: "Unknown".into(),
                    message: "the container's shim is gone".into(),
                },
            },
        }
    }

    fn cri_state(s: ShimState) -> ContainerState {
        match s {
            ShimState::Created => ContainerState::Created,
            ShimState::Running => ContainerState::Running,
            ShimState::Exited => ContainerState::Exited,
        }
    }

    async fn running_socket(&self, id: &str) -> Result<PathBuf> {
        self.load_container(id)?;
        let st = self.shim_status(id).await;
        if st.state != ShimState::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        Ok(self.socket(id))
    }

    /// Kills a container (SIGKILL) if it still runs and waits for its shim to finish.
    async fn kill_and_wait(&self, id: &str) -> Result<()> {
        let sock = self.socket(id);
        if self.shim_status(id).await.state == ShimState::Exited {
            return Ok(());
        }
        let _ = shim_client::request(
            &sock,
            &Request::Kill {
                signal: libc::SIGKILL,
            },
        )
        .await;
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            shim_client::request(&sock, &Request::Wait),
        )
        .await;
        Ok(())
    }

    /// Waits until a container's shim process is gone (after its container exited the shim
    /// still lets clients read the end, then its mount namespace goes with it).
    async fn wait_shim_gone(&self, id: &str) {
        let dir = self.container_dir(id);
        if let Ok(Some(st)) = read_json::<ShimStatus>(&dir.join("status.json")) {
            shim_client::wait_gone(st.shim_pid, &dir.join("shim.json"), Duration::from_secs(10))
                .await;
        }
    }

    /// Tears down what a container left on the machine: libcontainer state, cgroup, lease,
    /// socket, directory. (Its root filesystem was mounted only in its shim's mount
    /// namespace, which ended with the shim.)
    async fn cleanup_container(&self, id: &str, cgroup: Option<&str>) -> Result<()> {
        let dir = self.container_dir(id);
        let lc = self.cfg.run_root.join("lc").join(Self::lc_id(id));
        if lc.exists() {
            std::fs::remove_dir_all(&lc).map_err(io(format!("removing {}", lc.display())))?;
        }
        if let Some(cg) = cgroup {
            crate::cgroups::remove(cg).map_err(io("removing the container cgroup"))?;
        }
        self.images.release_lease(id)?;
        let _ = std::fs::remove_file(self.socket(id));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
        }
        let rootfs = self.rootfs_dir(id);
        if rootfs.exists() {
            std::fs::remove_dir(&rootfs).map_err(io(format!("removing {}", rootfs.display())))?;
        }
        self.roots.release_if_empty().await
    }

    async fn create_inner(
        &self,
        id: &str,
        sb: &SandboxRecord,
        config: &ContainerConfig,
        image: &ImageRecord,
    ) -> Result<()> {
        let dir = self.container_dir(id);
        for d in [&dir.join("upper"), &dir.join("work")] {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        let rootfs = self.rootfs_dir(id);
        {
            let _held = self.roots.hold().await?;
            std::fs::create_dir_all(&rootfs)
                .map_err(io(format!("creating {}", rootfs.display())))?;
        }
        self.images.add_lease(id, &image.id)?;
        let lowers = self.images.lower_dirs(image);
        let cwd = if config.working_dir.is_empty() {
            image.config.run.working_dir.clone().unwrap_or_default()
        } else {
            config.working_dir.clone()
        };
        let termination_log = dir.join("termination-log");
        write_file(&termination_log, "")?;
        // Any user the container runs as may write its termination message.
        std::fs::set_permissions(
            &termination_log,
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .map_err(io("making the termination log writable"))?;
        let sdir = self.sandbox_dir(&sb.id);
        let nsdir = self.ns_dir(&sb.id);
        let pins = sandbox::Pins::for_config(&sb.config);
        let cgroup = format!("{}/{}", self.pod_cgroup(&sb.id), &id[..16]);
        let spec = spec::build(&spec::SpecInput {
            config,
            image: &image.config.run,
            sandbox: spec::SandboxRef {
                config: &sb.config,
                netns: pins.net.then(|| nsdir.join("net")),
                ipcns: pins.ipc.then(|| nsdir.join("ipc")),
                utsns: pins.uts.then(|| nsdir.join("uts")),
                hosts: sdir.join("hosts"),
                resolv_conf: sdir.join("resolv.conf"),
                hostname: sdir.join("hostname"),
            },
            rootfs: &rootfs,
            layers: &lowers,
            termination_log: &termination_log,
            cgroup: &cgroup,
        })?;
        write_json(&dir.join("config.json"), &spec)?;
        let log_path = match &sb.config.log_directory {
            Some(d) if !config.log_path.is_empty() => d.join(&config.log_path),
            _ => dir.join(format!("{}.log", config.metadata.name)),
        };
        let record = ContainerRecord {
            id: id.to_string(),
            sandbox_id: sb.id.clone(),
            config: config.clone(),
            image_id: image.id.clone(),
            created_at: now_nanos(),
            log_path: log_path.clone(),
            stop_signal: spec::stop_signal(&image.config.run)?,
            cgroup: cgroup.clone(),
        };
        write_json(&dir.join("container.json"), &record)?;
        let shim_cfg = ShimConfig {
            id: Self::lc_id(id),
            state_root: self.cfg.run_root.join("lc"),
            bundle: dir.clone(),
            socket: self.socket(id),
            status_file: dir.join("status.json"),
            log_path,
            log_max_bytes: self.cfg.log_max_bytes,
            log_max_files: self.cfg.log_max_files,
            tty: config.tty,
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            cgroup,
            pins_root: self.ns_root_dir(),
            keep_mounts_shared: spec::has_bidirectional(config),
            pins: [(pins.net, "net"), (pins.ipc, "ipc"), (pins.uts, "uts")]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| nsdir.join(name))
                .collect(),
            rootfs: RootfsConfig {
                lowers,
                upper: dir.join("upper"),
                work: dir.join("work"),
                target: rootfs,
                make_dir: (!cwd.is_empty()).then_some(cwd),
            },
        };
        write_json(&dir.join("shim.json"), &shim_cfg)?;
        shim_client::spawn(
            &self.cfg.shim_binary,
            &dir.join("shim.json"),
            &dir.join("shim.log"),
        )
        .await
    }

    fn stats_of(&self, rec: &ContainerRecord) -> ContainerStats {
        let (cpu, mem, ws) = crate::cgroups::usage(&rec.cgroup);
        let mut bytes = 0;
        let mut inodes = 0;
        rkube_images::store::du(
            &self.container_dir(&rec.id).join("upper"),
            &mut bytes,
            &mut inodes,
        );
        ContainerStats {
            id: rec.id.clone(),
            metadata: rec.config.metadata.clone(),
            timestamp: now_nanos(),
            cpu_usage_core_nano_seconds: cpu,
            memory_working_set_bytes: ws,
            memory_usage_bytes: mem,
            writable_layer_used_bytes: bytes,
        }
    }
}

#[async_trait]
impl RuntimeService for NativeRuntime {
    async fn version(&self) -> Result<VersionInfo> {
        Ok(VersionInfo {
            version: "0.1.0".into(),
            runtime_name: "rkube".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let id = random_id()?;
        let dir = self.sandbox_dir(&id);
        std::fs::create_dir_all(dir.join("names"))
            .map_err(io(format!("creating {}", dir.display())))?;
        let result = async {
            let hostname = if config.hostname.is_empty() {
                config.metadata.name.clone()
            } else {
                config.hostname.clone()
            };
            write_file(&dir.join("hosts"), &sandbox::hosts_file(config))?;
            write_file(&dir.join("resolv.conf"), &sandbox::resolv_conf(config))?;
            let host_name = if config.namespaces.host_network {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                hostname.clone()
            };
            write_file(&dir.join("hostname"), &format!("{host_name}\n"))?;
            crate::cgroups::create(&self.pod_cgroup(&id), config.resources.as_ref())
                .map_err(io("creating the pod cgroup"))?;
            self.pin(&id, hostname, sandbox::Pins::for_config(config))
                .await?;
            write_json(
                &dir.join("sandbox.json"),
                &SandboxRecord {
                    id: id.clone(),
                    config: config.clone(),
                    created_at: now_nanos(),
                    state: SandboxState::Ready,
                },
            )
        }
        .await;
        if let Err(e) = result {
            let _ = self.unpin(&id).await;
            let _ = crate::cgroups::remove(&self.pod_cgroup(&id));
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut sb = self.load_sandbox(id)?;
        for c in self
            .list_containers(&ContainerFilter {
                pod_sandbox_id: Some(id.to_string()),
                ..Default::default()
            })
            .await?
        {
            self.kill_and_wait(&c.id).await?;
        }
        self.unpin(id).await?;
        if sb.state != SandboxState::NotReady {
            sb.state = SandboxState::NotReady;
            write_json(&self.sandbox_dir(id).join("sandbox.json"), &sb)?;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        match self.load_sandbox(id) {
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // Every container that claimed a name here, half-made ones included.
        for c in self.sandbox_container_ids(id) {
            self.remove_container(&c).await?;
        }
        self.unpin(id).await?;
        crate::cgroups::remove(&self.pod_cgroup(id)).map_err(io("removing the pod cgroup"))?;
        let dir = self.sandbox_dir(id);
        std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
        self.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let sb = self.load_sandbox(id)?;
        let netns = self.ns_dir(id).join("net");
        Ok(PodSandboxStatus {
            id: sb.id,
            metadata: sb.config.metadata.clone(),
            state: sb.state,
            created_at: sb.created_at,
            ip: sb.config.pod_ip.clone(),
            network_namespace: netns.exists().then_some(netns),
            labels: sb.config.labels.clone(),
            annotations: sb.config.annotations.clone(),
        })
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandbox>> {
        let mut out = Vec::new();
        for id in self.ids("sandboxes")? {
            if filter.id.as_ref().is_some_and(|f| *f != id) {
                continue;
            }
            let Ok(sb) = self.load_sandbox(&id) else {
                continue;
            };
            if filter.state.is_some_and(|s| s != sb.state)
                || !labels_match(&filter.label_selector, &sb.config.labels)
            {
                continue;
            }
            out.push(PodSandbox {
                id: sb.id,
                metadata: sb.config.metadata.clone(),
                state: sb.state,
                created_at: sb.created_at,
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
            });
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let sb = self.load_sandbox(sandbox_id)?;
        if sb.state != SandboxState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {sandbox_id} is not ready"
            )));
        }
        if config.metadata.name.is_empty() || config.metadata.name.contains('/') {
            return Err(Error::InvalidArgument(format!(
                "invalid container name {:?}",
                config.metadata.name
            )));
        }
        let image = self
            .images
            .get(&config.image.image)?
            .ok_or_else(|| Error::NotFound(format!("image {:?}", config.image.image)))?;
        let lock = self.creation_lock(sandbox_id);
        let _creating = lock.lock().await;
        let id = random_id()?;
        self.claim_name(sandbox_id, &config.metadata, &id)?;
        if let Err(e) = self.create_inner(&id, &sb, config, &image).await {
            let _ = std::fs::remove_file(self.name_file(sandbox_id, &config.metadata));
            let cgroup = format!("{}/{}", self.pod_cgroup(sandbox_id), &id[..16]);
            // The shim may have been started and failed; make sure nothing of it stays.
            self.kill_and_wait(&id).await.ok();
            self.wait_shim_gone(&id).await;
            if let Err(c) = self.cleanup_container(&id, Some(&cgroup)).await {
                tracing::warn!(container = %id, error = %c, "cleaning up a failed create");
            }
            return Err(e);
        }
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.load_container(id)?;
        let st = self.shim_status(id).await;
        if st.state != ShimState::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {:?}, not created",
                Self::cri_state(st.state)
            )));
        }
        shim_client::request(&self.socket(id), &Request::Start).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let rec = self.load_container(id)?;
        if self.shim_status(id).await.state == ShimState::Exited {
            return Ok(());
        }
        let sock = self.socket(id);
        if !timeout.is_zero() {
            shim_client::request(
                &sock,
                &Request::Kill {
                    signal: rec.stop_signal,
                },
            )
            .await?;
            if tokio::time::timeout(timeout, shim_client::request(&sock, &Request::Wait))
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.kill_and_wait(id).await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let rec = match self.load_container(id) {
            Ok(r) => r,
            Err(Error::NotFound(_)) => {
                // A half-made container directory (a crash during create) goes too.
                if check_id(id, "container").is_ok() && self.container_dir(id).exists() {
                    self.cleanup_container(id, None).await?;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.kill_and_wait(id).await?;
        self.wait_shim_gone(id).await;
        self.cleanup_container(id, Some(&rec.cgroup)).await?;
        let name = self.name_file(&rec.sandbox_id, &rec.config.metadata);
        if std::fs::read_to_string(&name).is_ok_and(|holder| holder == id) {
            let _ = std::fs::remove_file(&name);
        }
        Ok(())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        let ids = match &filter.pod_sandbox_id {
            // A sandbox's own containers, without reading every container's record.
            Some(sb) if check_id(sb, "pod sandbox").is_ok() => self.sandbox_container_ids(sb),
            _ => self.ids("containers")?,
        };
        for id in ids {
            if filter.id.as_ref().is_some_and(|f| *f != id) {
                continue;
            }
            let Ok(rec) = self.load_container(&id) else {
                continue;
            };
            if filter
                .pod_sandbox_id
                .as_ref()
                .is_some_and(|s| *s != rec.sandbox_id)
                || !labels_match(&filter.label_selector, &rec.config.labels)
            {
                continue;
            }
            let state = Self::cri_state(self.shim_status(&id).await.state);
            if filter.state.is_some_and(|s| s != state) {
                continue;
            }
            out.push(Container {
                id: rec.id,
                pod_sandbox_id: rec.sandbox_id,
                metadata: rec.config.metadata.clone(),
                image: rec.config.image.clone(),
                image_ref: rec.image_id,
                state,
                created_at: rec.created_at,
                labels: rec.config.labels.clone(),
                annotations: rec.config.annotations.clone(),
            });
        }
        out.sort_by_key(|c| c.created_at);
        Ok(out)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let rec = self.load_container(id)?;
        let st = self.shim_status(id).await;
        let mut message = st.message.clone();
        if st.state == ShimState::Exited
            && let Ok(t) = std::fs::read_to_string(self.container_dir(id).join("termination-log"))
            && !t.is_empty()
        {
            message = t;
        }
        Ok(ContainerStatus {
            id: rec.id.clone(),
            metadata: rec.config.metadata.clone(),
            state: Self::cri_state(st.state),
            created_at: rec.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            image: rec.config.image.clone(),
            image_ref: rec.image_id.clone(),
            reason: st.reason.clone(),
            message,
            labels: rec.config.labels.clone(),
            annotations: rec.config.annotations.clone(),
            mounts: rec.config.mounts.clone(),
            log_path: Some(rec.log_path.clone()),
            pid: (st.state != ShimState::Exited && st.pid > 0).then_some(st.pid),
        })
    }

    async fn update_container_resources(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let mut rec = self.load_container(id)?;
        crate::cgroups::update(&rec.cgroup, resources).map_err(io("updating resources"))?;
        rec.config.resources = Some(resources.clone());
        write_json(&self.container_dir(id).join("container.json"), &rec)
    }

    async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let sock = self.running_socket(id).await?;
        shim_client::request(&sock, &Request::ReopenLog).await
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecSyncResponse> {
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command".into()));
        }
        let sock = self.running_socket(id).await?;
        shim_client::exec_sync(&sock, cmd, timeout).await
    }

    async fn exec(&self, id: &str, req: &ExecRequest) -> Result<Streaming> {
        if req.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command".into()));
        }
        let sock = self.running_socket(id).await?;
        let s = shim_client::stream(
            &sock,
            &Request::Exec {
                args: req.cmd.clone(),
                tty: req.tty,
                stdin: req.stdin,
            },
            req.stdin,
            req.stdout || req.tty,
            req.stderr,
            req.tty,
        )
        .await?;
        Ok(Streaming::Session(s))
    }

    async fn attach(&self, id: &str, req: &AttachRequest) -> Result<Streaming> {
        let rec = self.load_container(id)?;
        let sock = self.running_socket(id).await?;
        if req.stdin && !rec.config.stdin {
            return Err(Error::InvalidArgument(format!(
                "container {id} was not created with stdin"
            )));
        }
        let s = shim_client::stream(
            &sock,
            &Request::Attach { stdin: req.stdin },
            req.stdin,
            req.stdout || rec.config.tty,
            req.stderr,
            rec.config.tty,
        )
        .await?;
        Ok(Streaming::Session(s))
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<PortForward> {
        let sb = self.load_sandbox(sandbox_id)?;
        let netns =
            (!sb.config.namespaces.host_network).then(|| self.ns_dir(sandbox_id).join("net"));
        let stream = tokio::task::spawn_blocking(move || -> Result<std::net::TcpStream> {
            // A thread of its own, which enters the pod's network namespace and ends.
            std::thread::spawn(move || -> Result<std::net::TcpStream> {
                if let Some(ns) = netns {
                    let f = std::fs::File::open(&ns)
                        .map_err(io(format!("opening {}", ns.display())))?;
                    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::Runtime(format!("entering the pod network: {e}")))?;
                }
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map_err(io(format!("connecting to port {port} in the pod")))
            })
            .join()
            .map_err(|_| Error::Runtime("port-forward thread panicked".into()))?
        })
        .await
        .map_err(|e| Error::Runtime(format!("port-forward task: {e}")))??;
        stream
            .set_nonblocking(true)
            .map_err(io("port-forward socket"))?;
        let s = tokio::net::TcpStream::from_std(stream).map_err(io("port-forward socket"))?;
        Ok(PortForward::Connected(Box::new(s)))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let rec = self.load_container(id)?;
        Ok(self.stats_of(&rec))
    }

    async fn list_container_stats(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStats>> {
        let mut out = Vec::new();
        for c in self.list_containers(filter).await? {
            if let Ok(rec) = self.load_container(&c.id) {
                out.push(self.stats_of(&rec));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ImageService for NativeRuntime {
    async fn pull_image(&self, image: &ImageSpec, auth: Option<&AuthConfig>) -> Result<String> {
        let creds = match auth {
            None => None,
            Some(a) if !a.username.is_empty() => Some(Credentials {
                username: a.username.clone(),
                password: a.password.clone(),
            }),
            Some(a) if !a.auth.is_empty() => Some(Credentials::from_auth(&a.auth)?),
            Some(_) => None,
        };
        let img = self
            .images
            .pull(&image.image, creds.as_ref(), &self.cfg.pull)
            .await?;
        Ok(img.id)
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        Ok(self.images.list()?.iter().map(image_to_cri).collect())
    }

    async fn image_status(&self, image: &ImageSpec) -> Result<Option<Image>> {
        Ok(self.images.get(&image.image)?.as_ref().map(image_to_cri))
    }

    async fn remove_image(&self, image: &ImageSpec) -> Result<()> {
        let store = self.images.clone();
        let name = image.image.clone();
        match tokio::task::spawn_blocking(move || store.remove(&name))
            .await
            .map_err(|e| Error::Runtime(format!("image removal task: {e}")))?
        {
            Ok(_) => Ok(()),
            Err(e @ rkube_images::Error::InUse { .. }) => {
                Err(Error::FailedPrecondition(e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>> {
        let store = self.images.clone();
        let u = tokio::task::spawn_blocking(move || store.fs_usage())
            .await
            .map_err(|e| Error::Runtime(format!("usage task: {e}")))??;
        Ok(vec![FilesystemUsage {
            timestamp: now_nanos(),
            mountpoint: u.mountpoint,
            used_bytes: u.used_bytes,
            inodes_used: u.inodes_used,
        }])
    }
}
