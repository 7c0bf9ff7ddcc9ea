//! A native runtime in a temporary directory with the test images imported, and the check
//! that a test left nothing behind: no mount under its directory (overlays, pinned
//! namespaces), no cgroup under its cgroup root, no process started from its directory.
//! Cleanup also runs when a test fails (on drop), before the temporary directory goes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rkube_runtime::native::{NativeConfig, NativeRuntime};
use rkube_runtime::*;
use rkube_testimages::ImageDef;

/// The test images as one OCI archive, built once per test binary.
pub fn images_archive() -> &'static Path {
    static ARCHIVE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ARCHIVE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("images.tar");
            let mut usr1 = ImageDef::busybox("busybox-usr1").unwrap();
            usr1.stop_signal = Some("SIGUSR1".into());
            rkube_testimages::write_oci_archive(
                &[
                    ImageDef::testapp("testapp").unwrap(),
                    ImageDef::busybox("busybox").unwrap(),
                    usr1,
                ],
                &path,
            )
            .unwrap();
            (dir, path)
        })
        .1
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub rt: Arc<NativeRuntime>,
    pub cgroup_root: String,
}

pub fn config(dir: &Path, cgroup_root: &str) -> NativeConfig {
    NativeConfig {
        root: dir.join("root"),
        run_root: dir.join("run"),
        shim_binary: PathBuf::from(env!("CARGO_BIN_EXE_rkube-shim")),
        cgroup_root: cgroup_root.to_string(),
        log_max_bytes: 10 << 20,
        log_max_files: 3,
        pull: Default::default(),
        favor_dynamic_cgroups: true,
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(tune: impl FnOnce(&mut NativeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cgroup_root = format!(
            "/rkube-test-{}",
            dir.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches('.')
        );
        let mut cfg = config(dir.path(), &cgroup_root);
        tune(&mut cfg);
        let rt = NativeRuntime::new(cfg).unwrap();
        rt.images()
            .import(std::fs::File::open(images_archive()).unwrap())
            .unwrap();
        Self {
            dir,
            rt: Arc::new(rt),
            cgroup_root,
        }
    }

    pub fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            },
            hostname: name.into(),
            log_directory: Some(self.dir.path().join("logs").join(name)),
            ..Default::default()
        }
    }

    pub async fn sandbox(&self, name: &str) -> (String, PodSandboxConfig) {
        let cfg = self.sandbox_config(name);
        (self.rt.run_pod_sandbox(&cfg).await.unwrap(), cfg)
    }

    /// Creates and starts a container.
    pub async fn run(&self, sandbox: &(String, PodSandboxConfig), cfg: ContainerConfig) -> String {
        let id = self
            .rt
            .create_container(&sandbox.0, &cfg, &sandbox.1)
            .await
            .unwrap();
        self.rt.start_container(&id).await.unwrap();
        id
    }

    pub async fn wait_exited(&self, id: &str) -> ContainerStatus {
        wait_exited(&self.rt, id).await
    }

    /// Removes everything through the runtime, then checks nothing is left.
    pub async fn finish(self) {
        for s in self
            .rt
            .list_pod_sandboxes(&PodSandboxFilter::default())
            .await
            .unwrap()
        {
            self.rt.stop_pod_sandbox(&s.id).await.unwrap();
            self.rt.remove_pod_sandbox(&s.id).await.unwrap();
        }
        assert!(
            self.rt
                .list_containers(&ContainerFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        // Dropping runs the forced cleanup (a no-op now) and asserts the machine is clean.
    }
}

pub async fn wait_exited(rt: &NativeRuntime, id: &str) -> ContainerStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = rt.container_status(id).await.unwrap();
        if st.state == ContainerState::Exited {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn container(name: &str, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: ContainerMetadata {
            name: name.into(),
            attempt: 0,
        },
        image: ImageSpec {
            image: image.into(),
        },
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

/// The text of a container's log (all CRI lines' text parts, joined by newlines).
pub fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(rkube_images::mount::unescape_mountinfo)
        .filter(|m| m.starts_with(&d))
        .collect()
}

/// Pids of processes whose command line mentions `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// Kills what a failed test left running and undoes its mounts and cgroups.
pub fn force_cleanup(dir: &Path, cgroup_root: &str) {
    let containers = dir.join("root/containers");
    if let Ok(rd) = std::fs::read_dir(&containers) {
        for e in rd.flatten() {
            if let Ok(data) = std::fs::read(e.path().join("status.json"))
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data)
            {
                for key in ["pid", "shim_pid"] {
                    if let Some(pid) = v[key].as_i64().filter(|p| *p > 0) {
                        // SAFETY: kill with a pid and signal.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    }
                }
            }
        }
    }
    for pid in processes_with(&dir.to_string_lossy()) {
        // SAFETY: kill with a pid and signal.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&dir.to_string_lossy()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut m = mounts_under(dir);
    m.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in m {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = rkube_runtime::cgroups::remove(cgroup_root);
}

pub fn assert_clean(dir: &Path, cgroup_root: &str) {
    let m = mounts_under(dir);
    assert!(m.is_empty(), "mounts left behind: {m:?}");
    assert!(
        !rkube_runtime::cgroups::exists(cgroup_root),
        "cgroup {cgroup_root} left behind"
    );
    let p = processes_with(&dir.to_string_lossy());
    assert!(p.is_empty(), "processes left behind: {p:?}");
}

impl Drop for Harness {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            force_cleanup(self.dir.path(), &self.cgroup_root);
        } else {
            // The pod cgroups are gone; the test's cgroup root is the harness's to remove.
            let _ = rkube_runtime::cgroups::remove(&self.cgroup_root);
            assert_clean(self.dir.path(), &self.cgroup_root);
        }
    }
}
