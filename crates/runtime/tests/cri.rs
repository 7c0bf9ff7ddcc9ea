//! The CRI client against a real containerd (Debian's `containerd` with `runc`), started by
//! the test with its own root, state, socket and a random streaming port. Pods use host
//! networking: no CNI plugin is configured. The sandbox ("pause") image and the test image
//! come from rkube's test images (imported with `ctr`, and pulled from a local registry).
//! Everything the test starts is stopped and checked gone, also after a failure.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{force_cleanup, mounts_under, processes_with};
use rkube_runtime::cri::CriRuntime;
use rkube_runtime::*;
use rkube_testimages::ImageDef;

const PAUSE: &str = "docker.io/rkube/pause:test";

struct Containerd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    cgroup: String,
}

impl Containerd {
    fn start(registry: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let socket = d.join("c.sock");
        for sub in ["cni/bin", "cni/conf", "opt"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{ttrpc}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which not every machine grants root.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni}/bin"
    conf_dir = "{cni}/conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
    endpoint = ["http://{registry}"]
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
            ttrpc = d.join("t.sock").display(),
            opt = d.join("opt").display(),
            cni = d.join("cni").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = std::process::Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting /usr/bin/containerd (Debian package containerd)");
        let cgroup = format!(
            "/rkube-test-cri-{}",
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches('.')
        );
        Self {
            child,
            dir,
            socket,
            cgroup,
        }
    }

    fn ctr(&self, args: &[&str]) {
        let out = std::process::Command::new("/usr/bin/ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn client(&self) -> CriRuntime {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.socket.exists()
                && let Ok(c) =
                    CriRuntime::connect(&format!("unix://{}", self.socket.display())).await
                && c.version().await.is_ok()
            {
                return c;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("containerd.log"))
                    .unwrap_or_default();
                panic!("containerd did not answer in 60 s:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill with a pid and a signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let failed = std::thread::panicking();
        if failed {
            let log =
                std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!(
                "containerd's log (last lines, newest first):\n{}",
                tail.join("\n")
            );
            force_cleanup(self.dir.path(), &self.cgroup);
        }
        // containerd keeps its content and snapshots mounted nowhere once containers are
        // gone; what remains must be nothing.
        let m = mounts_under(self.dir.path());
        let p = processes_with(&self.dir.path().to_string_lossy());
        let _ = rkube_runtime::cgroups::remove(&self.cgroup);
        if !failed {
            assert!(m.is_empty(), "mounts left behind: {m:?}");
            assert!(p.is_empty(), "processes left behind: {p:?}");
            assert!(!rkube_runtime::cgroups::exists(&self.cgroup));
        }
    }
}

fn image_archive(dir: &Path) -> PathBuf {
    let mut pause = ImageDef::testapp(PAUSE).unwrap();
    pause.cmd = Some(vec!["sleep".into()]);
    let path = dir.join("pause.tar");
    rkube_testimages::write_oci_archive(&[pause], &path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn drives_containerd_over_cri() {
    let reg = rkube_testimages::Registry::start(false).unwrap();
    let app = ImageDef::testapp("x").unwrap();
    rkube_testimages::push(&app, &reg.host, "cri/testapp", "v1", None)
        .await
        .unwrap();
    let cd = Containerd::start(&reg.host);
    let cri = cd.client().await;

    let v = cri.version().await.unwrap();
    assert_eq!(
        (v.runtime_name.as_str(), v.runtime_api_version.as_str()),
        ("containerd", "v1")
    );

    // Images: one imported with ctr (the sandbox image), one pulled over CRI.
    cd.ctr(&[
        "images",
        "import",
        image_archive(cd.dir.path()).to_str().unwrap(),
    ]);
    let pause = cri
        .image_status(&ImageSpec {
            image: PAUSE.into(),
        })
        .await
        .unwrap();
    assert!(pause.is_some(), "the imported image is listed");
    let name = format!("{}/cri/testapp:v1", reg.host);
    let id = cri
        .pull_image(
            &ImageSpec {
                image: name.clone(),
            },
            None,
        )
        .await
        .unwrap();
    let img = cri
        .image_status(&ImageSpec {
            image: name.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(img.id, id);
    assert!(img.repo_tags.contains(&name));
    assert!(cri.list_images().await.unwrap().iter().any(|i| i.id == id));
    // containerd measures usage in the background; the filesystem is named at once.
    let fs = cri.image_fs_info().await.unwrap();
    assert!(
        fs[0].mountpoint.to_string_lossy().contains("overlayfs"),
        "{fs:?}"
    );
    assert!(
        cri.image_status(&ImageSpec {
            image: "nope:1".into()
        })
        .await
        .unwrap()
        .is_none()
    );

    // A pod with host networking (no CNI here).
    let sb_cfg = PodSandboxConfig {
        metadata: PodSandboxMetadata {
            name: "cri-pod".into(),
            uid: "uid-cri".into(),
            namespace: "default".into(),
            attempt: 0,
        },
        // As the kubelet sends it for host networking: no hostname of the pod's own.
        hostname: String::new(),
        log_directory: Some(cd.dir.path().join("logs")),
        namespaces: NamespaceOptions {
            host_network: true,
            ..Default::default()
        },
        labels: [("app".to_string(), "cri".to_string())].into(),
        cgroup_parent: cd.cgroup.clone(),
        ..Default::default()
    };
    let sb = cri.run_pod_sandbox(&sb_cfg).await.unwrap();
    assert_eq!(
        cri.pod_sandbox_status(&sb).await.unwrap().state,
        SandboxState::Ready
    );
    let listed = cri
        .list_pod_sandboxes(&PodSandboxFilter {
            label_selector: [("app".to_string(), "cri".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    let mut cfg = common::container(
        "printer",
        &name,
        &["/testapp", "print", "hello from containerd"],
    );
    cfg.log_path = "printer/0.log".into();
    let c = cri.create_container(&sb, &cfg, &sb_cfg).await.unwrap();
    assert_eq!(
        cri.container_status(&c).await.unwrap().state,
        ContainerState::Created
    );
    cri.start_container(&c).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = cri.container_status(&c).await.unwrap();
        if st.state == ContainerState::Exited {
            break st;
        }
        assert!(Instant::now() < deadline, "{st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((st.exit_code, st.reason.as_str()), (0, "Completed"));
    let log = std::fs::read_to_string(cd.dir.path().join("logs/printer/0.log")).unwrap();
    assert!(log.contains(" stdout F hello from containerd"), "{log}");

    // A long-running container: exec, streaming URL, stop with SIGTERM.
    let cfg = common::container("sleeper", &name, &["/testapp", "sleep"]);
    let s = cri.create_container(&sb, &cfg, &sb_cfg).await.unwrap();
    cri.start_container(&s).await.unwrap();
    let r = cri
        .exec_sync(
            &s,
            &["/testapp".into(), "exit".into(), "6".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(r.exit_code, 6);
    let r = cri
        .exec_sync(
            &s,
            &["sh".into(), "-c".into(), "echo via-cri".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "via-cri\n");
    match cri
        .exec(
            &s,
            &ExecRequest {
                cmd: vec!["sh".into()],
                stdout: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
    {
        Streaming::Url(u) => assert!(u.starts_with("http://127.0.0.1:"), "{u}"),
        Streaming::Session(_) => panic!("CRI runtimes answer with a URL"),
    }
    let running = cri
        .list_containers(&ContainerFilter {
            state: Some(ContainerState::Running),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, s);
    cri.stop_container(&s, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(cri.container_status(&s).await.unwrap().exit_code, 143);
    assert!(matches!(
        cri.container_status("no-such-container").await,
        Err(Error::NotFound(_))
    ));

    cri.remove_container(&c).await.unwrap();
    cri.remove_container(&s).await.unwrap();
    cri.stop_pod_sandbox(&sb).await.unwrap();
    cri.remove_pod_sandbox(&sb).await.unwrap();
    assert!(
        cri.list_pod_sandboxes(&PodSandboxFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    cri.remove_image(&ImageSpec { image: name }).await.unwrap();
    drop(cd);
    drop(reg);
}
