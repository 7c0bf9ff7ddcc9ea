//! The native runtime with real containers (needs root, as CI runs). Every test ends with
//! the harness checking that no mount, cgroup or process it made is left behind, and cleans
//! up by force when it fails.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rkube_runtime::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

async fn exec_ok(h: &Harness, id: &str, cmd: &[&str]) -> String {
    let r =
        h.rt.exec_sync(id, &s(cmd), Duration::from_secs(20))
            .await
            .unwrap();
    assert_eq!(
        r.exit_code,
        0,
        "{cmd:?}: {} {}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn command_args_env_working_dir_and_user() {
    let h = Harness::new();
    let sb = h.sandbox("basics").await;
    // The image's entrypoint with Kubernetes args replacing its Cmd.
    let mut c = container("args", "testapp", &[]);
    c.args = s(&["args", "one", "two words"]);
    let a = h.run(&sb, c).await;
    // command replaces the entrypoint; env merges over the image's.
    let mut c = container("env", "testapp", &["/testapp", "env"]);
    c.envs = vec![
        ("GREETING".into(), "hello".into()),
        ("PATH".into(), "/bin".into()),
    ];
    let e = h.run(&sb, c).await;
    let mut c = container("cwd", "busybox", &["sh", "-c", "pwd; id -u; id -g; id -G"]);
    c.working_dir = "/work/dir".into();
    c.security_context.run_as_user = Some(1000);
    c.security_context.supplemental_groups = vec![3000];
    let w = h.run(&sb, c).await;
    // The kubelet's bind mounts, writable and read-only.
    let host = h.dir.path().join("volume");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from the host").unwrap();
    let mut c = container(
        "mounts",
        "busybox",
        &[
            "sh",
            "-c",
            "cat /ro/in; echo; echo written > /rw/out; echo x > /ro/y || echo ro-refused",
        ],
    );
    c.mounts = vec![
        Mount {
            container_path: "/rw".into(),
            host_path: host.clone(),
            readonly: false,
            propagation: MountPropagation::Private,
        },
        Mount {
            container_path: "/ro".into(),
            host_path: host.clone(),
            readonly: true,
            propagation: MountPropagation::HostToContainer,
        },
    ];
    let m = h.run(&sb, c).await;
    let st = h.wait_exited(&m).await;
    assert_eq!(st.mounts.len(), 2);
    let text = log_text(st.log_path.as_ref().unwrap());
    for want in ["from the host", "ro-refused", "Read-only file system"] {
        assert!(text.contains(want), "{want:?} not in {text}");
    }
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "written\n"
    );
    assert!(!host.join("y").exists());
    // A mount whose source is missing is refused at create.
    let mut c = container("bad-mount", "busybox", &["true"]);
    c.mounts = vec![Mount {
        container_path: "/x".into(),
        host_path: h.dir.path().join("missing"),
        ..Default::default()
    }];
    let err = h.rt.create_container(&sb.0, &c, &sb.1).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    for id in [&a, &e, &w] {
        let st = h.wait_exited(id).await;
        assert_eq!(
            (st.exit_code, st.reason.as_str()),
            (0, "Completed"),
            "{st:?}"
        );
    }
    let log = |id: &String| {
        log_text(&h.dir.path().join("logs/basics").join(match id {
            x if x == &a => "args/0.log",
            x if x == &e => "env/0.log",
            _ => "cwd/0.log",
        }))
    };
    assert_eq!(log(&a), "one\ntwo words");
    let env = log(&e);
    assert!(env.contains("GREETING=hello"), "{env}");
    assert!(
        env.contains("PATH=/bin\n") || env.ends_with("PATH=/bin"),
        "{env}"
    );
    assert!(env.contains("HOSTNAME=basics"), "{env}");
    // uid 1000 is `app` in the image: its group 1000, `extra` (2000) from /etc/group, and
    // the pod's supplemental group.
    assert_eq!(log(&w), "/work/dir\n1000\n1000\n1000 2000 3000");
    h.finish().await;
}

/// Mounts a tmpfs at `dir` (in the test's, i.e. the host's, mount namespace).
fn host_tmpfs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_propagation_both_ways() {
    let h = Harness::new();
    let sb = h.sandbox("propagation").await;
    // A shared mount on the host, as Bidirectional volumes need.
    let shared = h.dir.path().join("shared");
    host_tmpfs(&shared);
    nix::mount::mount(
        None::<&str>,
        &shared,
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    let volume = |propagation| Mount {
        container_path: "/vol".into(),
        host_path: shared.clone(),
        readonly: false,
        propagation,
    };
    // Bidirectional: what the (privileged) container mounts in the volume reaches the host.
    let mut c = container(
        "bidirectional",
        "busybox",
        &[
            "sh",
            "-c",
            "mkdir -p /vol/inner && mount -t tmpfs none /vol/inner && echo from-container > /vol/inner/f && sleep 3600",
        ],
    );
    c.security_context.privileged = true;
    c.mounts = vec![volume(MountPropagation::Bidirectional)];
    let bidi = h.run(&sb, c).await;
    // HostToContainer: what the host mounts later reaches the container.
    let mut c = container("host-to-container", "busybox", &["sleep", "3600"]);
    c.mounts = vec![volume(MountPropagation::HostToContainer)];
    let h2c = h.run(&sb, c).await;
    let inner = shared.join("inner");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(inner.join("f")).is_err() {
        assert!(
            Instant::now() < deadline,
            "the container's mount did not reach the host"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(inner.join("f")).unwrap(),
        "from-container\n"
    );
    assert!(mounts_under(&shared).contains(&inner.to_string_lossy().to_string()));
    let from_host = shared.join("from-host");
    host_tmpfs(&from_host);
    std::fs::write(from_host.join("g"), "from-host").unwrap();
    for id in [&h2c, &bidi] {
        assert_eq!(
            exec_ok(&h, id, &["cat", "/vol/from-host/g", "/vol/inner/f"]).await,
            "from-hostfrom-container\n"
        );
    }
    // The containers' root filesystems never appear in the host's mount table.
    let overlays: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.contains(&*h.dir.path().to_string_lossy()))
        .map(String::from)
        .collect();
    assert!(overlays.is_empty(), "{overlays:?}");
    for id in [&bidi, &h2c] {
        h.rt.stop_container(id, Duration::ZERO).await.unwrap();
    }
    for m in [&inner, &from_host, &shared] {
        nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn isolation_inside_and_across_sandboxes() {
    let h = Harness::new();
    let a = h.sandbox("pod-a").await;
    let b = h.sandbox("pod-b").await;
    let server = h
        .run(
            &a,
            container("server", "testapp", &["/testapp", "serve", "8080"]),
        )
        .await;
    let peer = h
        .run(&a, container("peer", "busybox", &["sleep", "3600"]))
        .await;
    let other = h
        .run(&b, container("other", "busybox", &["sleep", "3600"]))
        .await;
    // PID 1 is the container's own process.
    assert_eq!(
        exec_ok(&h, &peer, &["cat", "/proc/1/comm"]).await.trim(),
        "sleep"
    );
    assert_eq!(
        exec_ok(&h, &server, &["cat", "/proc/1/comm"]).await.trim(),
        "testapp"
    );
    // The sandbox's hostname and files.
    assert_eq!(exec_ok(&h, &peer, &["hostname"]).await.trim(), "pod-a");
    assert_eq!(
        exec_ok(&h, &other, &["cat", "/etc/hostname"]).await.trim(),
        "pod-b"
    );
    assert!(
        exec_ok(&h, &peer, &["cat", "/etc/hosts"])
            .await
            .contains("localhost")
    );
    // Its own mount table: the overlay root, none of the host's mounts.
    let mounts = exec_ok(&h, &peer, &["cat", "/proc/self/mounts"]).await;
    assert!(
        mounts.lines().any(|l| l.starts_with("overlay / overlay")),
        "{mounts}"
    );
    for l in mounts.lines() {
        let mp = l.split(' ').nth(1).unwrap();
        assert!(
            mp == "/"
                || ["/proc", "/dev", "/sys", "/etc/"]
                    .iter()
                    .any(|p| mp.starts_with(p)),
            "a host mount in the container: {l}"
        );
    }
    // The root filesystem is mounted in the shim's own mount namespace only, never in the
    // host's (where mounts of other pods would pile up).
    let roots = h.dir.path().join("run/roots");
    assert_eq!(
        mounts_under(&h.dir.path().join("root/containers")),
        Vec::<String>::new()
    );
    // (The host holds only the private tmpfs the roots' mount points live on.)
    assert_eq!(
        mounts_under(&roots),
        vec![roots.to_string_lossy().to_string()]
    );
    let shim = h.rt.shim_pid(&peer).expect("the shim runs");
    let shim_mounts = std::fs::read_to_string(format!("/proc/{shim}/mountinfo")).unwrap();
    let rootfs = roots.join(&peer);
    assert!(
        shim_mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(rootfs.to_str().unwrap())),
        "{shim_mounts}"
    );
    // Its mount namespace holds its own pod's pinned namespaces and not the other pod's.
    let ns = h.dir.path().join("run/ns");
    let pinned = |sb: &str| {
        shim_mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.starts_with(ns.join(sb).to_str().unwrap()))
            .count()
    };
    assert_eq!((pinned(&a.0), pinned(&b.0)), (3, 0), "{shim_mounts}");
    // The network namespace is shared inside the pod …
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r =
            h.rt.exec_sync(
                &peer,
                &s(&["wget", "-q", "-O", "-", "http://127.0.0.1:8080/healthz"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        if r.exit_code == 0 {
            assert_eq!(String::from_utf8_lossy(&r.stdout), "ok");
            break;
        }
        assert!(Instant::now() < deadline, "server never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // … and not across pods.
    let r =
        h.rt.exec_sync(
            &other,
            &s(&[
                "wget",
                "-q",
                "-T",
                "2",
                "-O",
                "-",
                "http://127.0.0.1:8080/healthz",
            ]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_ne!(r.exit_code, 0);
    let net = |id: String| {
        let h = &h;
        async move { exec_ok(h, &id, &["readlink", "/proc/self/ns/net"]).await }
    };
    assert_eq!(net(server.clone()).await, net(peer.clone()).await);
    assert_ne!(net(peer.clone()).await, net(other.clone()).await);
    // So are the IPC and UTS namespaces; the PID and mount namespaces are each container's.
    for (ns, shared) in [("ipc", true), ("uts", true), ("pid", false), ("mnt", false)] {
        let link = format!("/proc/self/ns/{ns}");
        let in_peer = exec_ok(&h, &peer, &["readlink", &link]).await;
        let in_server = exec_ok(&h, &server, &["readlink", &link]).await;
        let in_other = exec_ok(&h, &other, &["readlink", &link]).await;
        assert_eq!(in_peer == in_server, shared, "{ns}: {in_peer} {in_server}");
        assert_ne!(in_peer, in_other, "{ns}");
    }
    // Port-forwarding reaches the pod's port.
    let PortForward::Connected(mut conn) = h.rt.port_forward(&a.0, 8080).await.unwrap() else {
        panic!("the native runtime connects itself");
    };
    conn.write_all(b"GET /hostname HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).await.unwrap();
    assert!(resp.ends_with("pod-a"), "{resp}");
    // Stats come from the container's cgroup.
    let stats = h.rt.container_stats(&server).await.unwrap();
    assert!(
        stats.memory_usage_bytes > 0 && stats.cpu_usage_core_nano_seconds > 0,
        "{stats:?}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_stop_signals() {
    let h = Harness::new();
    let sb = h.sandbox("stop").await;
    let three = h
        .run(
            &sb,
            container("three", "testapp", &["/testapp", "exit", "3"]),
        )
        .await;
    let st = h.wait_exited(&three).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"));
    assert!(st.finished_at >= st.started_at && st.started_at >= st.created_at);
    // A missing executable fails at create with the reason.
    let err =
        h.rt.create_container(&sb.0, &container("missing", "busybox", &["/nope"]), &sb.1)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    // SIGTERM honoured.
    let term = h
        .run(&sb, container("term", "testapp", &["/testapp", "sleep"]))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    h.rt.stop_container(&term, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let st = h.rt.container_status(&term).await.unwrap();
    assert_eq!(st.exit_code, 143, "{st:?}");
    assert_eq!(log_text(st.log_path.as_ref().unwrap()), "term");
    // Stopping again is fine.
    h.rt.stop_container(&term, Duration::from_secs(1))
        .await
        .unwrap();

    // A signal sent to the shim is forwarded to the container.
    let fwd = h
        .run(&sb, container("fwd", "testapp", &["/testapp", "sleep"]))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shim = h.rt.shim_pid(&fwd).expect("the shim runs");
    // SAFETY: kill with a pid and a signal.
    assert_eq!(unsafe { libc::kill(shim, libc::SIGTERM) }, 0);
    let st = h.wait_exited(&fwd).await;
    assert_eq!(st.exit_code, 143, "{st:?}");
    assert_eq!(log_text(st.log_path.as_ref().unwrap()), "term");

    // SIGTERM ignored: SIGKILL after the timeout.
    let stubborn = h
        .run(
            &sb,
            container(
                "stubborn",
                "testapp",
                &["/testapp", "sleep", "--ignore-term"],
            ),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    h.rt.stop_container(&stubborn, Duration::from_millis(700))
        .await
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(700));
    let st = h.rt.container_status(&stubborn).await.unwrap();
    assert_eq!((st.state, st.exit_code), (ContainerState::Exited, 137));

    // The image's STOPSIGNAL (SIGUSR1) instead of SIGTERM.
    let usr1 = h
        .run(
            &sb,
            container(
                "usr1",
                "busybox-usr1",
                &[
                    "sh",
                    "-c",
                    "trap 'echo got-usr1; exit 7' USR1; while true; do sleep 0.05; done",
                ],
            ),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.rt.stop_container(&usr1, Duration::from_secs(20))
        .await
        .unwrap();
    let st = h.rt.container_status(&usr1).await.unwrap();
    assert_eq!(st.exit_code, 7);
    assert_eq!(log_text(st.log_path.as_ref().unwrap()), "got-usr1");

    // A created, never started container can be removed.
    let idle =
        h.rt.create_container(&sb.0, &container("idle", "busybox", &["true"]), &sb.1)
            .await
            .unwrap();
    assert_eq!(
        h.rt.container_status(&idle).await.unwrap().state,
        ContainerState::Created
    );
    h.rt.remove_container(&idle).await.unwrap();
    assert!(matches!(
        h.rt.container_status(&idle).await,
        Err(Error::NotFound(_))
    ));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_root_and_security_context() {
    let h = Harness::new();
    let sb = h.sandbox("secure").await;
    let mut c = container("ro", "busybox", &["sleep", "3600"]);
    c.security_context.readonly_rootfs = true;
    c.security_context.no_new_privs = true;
    c.security_context.seccomp = SeccompProfile::RuntimeDefault;
    c.security_context.capabilities = Some(Capabilities {
        add_capabilities: vec![],
        drop_capabilities: vec!["ALL".into()],
    });
    c.security_context.run_as_user = Some(65534);
    let ro = h.run(&sb, c).await;
    let r =
        h.rt.exec_sync(&ro, &s(&["touch", "/newfile"]), Duration::from_secs(10))
            .await
            .unwrap();
    assert_ne!(r.exit_code, 0);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("Read-only file system"),
        "{r:?}"
    );
    let status = exec_ok(&h, &ro, &["cat", "/proc/self/status"]).await;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("Uid:"), "65534");
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapBnd:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    // The container's own process runs under the RuntimeDefault filter.
    let init = exec_ok(&h, &ro, &["cat", "/proc/1/status"]).await;
    assert!(init.contains("Seccomp:\t2"), "{init}");
    assert!(init.contains("NoNewPrivs:\t1"), "{init}");
    // Masked and read-only /proc paths.
    let masked = ["/proc/keys", "/proc/timer_list", "/proc/kcore"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a masked /proc file on this host");
    assert!(
        !std::fs::read_to_string(masked)
            .unwrap_or_default()
            .is_empty()
            || masked == "/proc/kcore"
    );
    assert_eq!(exec_ok(&h, &ro, &["cat", masked]).await, "");
    let r =
        h.rt.exec_sync(
            &ro,
            &s(&["sh", "-c", "echo 1 > /proc/sysrq-trigger"]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_ne!(r.exit_code, 0);
    // /dev/shm and the termination log are writable.
    exec_ok(
        &h,
        &ro,
        &[
            "sh",
            "-c",
            "echo x > /dev/shm/x && echo done > /dev/termination-log",
        ],
    )
    .await;

    // Default: containerd's capability set, writable root, no seccomp.
    let plain = h
        .run(&sb, container("plain", "busybox", &["sleep", "3600"]))
        .await;
    let status = exec_ok(&h, &plain, &["cat", "/proc/self/status"]).await;
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("Seccomp:\t0"), "{status}");
    exec_ok(&h, &plain, &["touch", "/newfile"]).await;
    // Privileged: every capability.
    let mut c = container("priv", "busybox", &["sleep", "3600"]);
    c.security_context.privileged = true;
    let p = h.run(&sb, c).await;
    let status = exec_ok(&h, &p, &["cat", "/proc/self/status"]).await;
    assert!(!status.contains("CapEff:\t00000000a80425fb"), "{status}");
    h.rt.stop_container(&ro, Duration::ZERO).await.unwrap();
    // The termination message becomes the status message.
    assert_eq!(h.rt.container_status(&ro).await.unwrap().message, "done\n");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_oom_and_cpu_quota() {
    let h = Harness::new();
    let sb = h.sandbox("limits").await;
    let mut c = container("hog", "testapp", &["/testapp", "alloc", "256"]);
    c.resources = Some(LinuxResources {
        memory_limit_in_bytes: 64 << 20,
        ..Default::default()
    });
    let hog = h.run(&sb, c).await;
    let st = h.wait_exited(&hog).await;
    assert_eq!(
        (st.exit_code, st.reason.as_str()),
        (137, "OOMKilled"),
        "{st:?}"
    );

    let mut c = container("quota", "busybox", &["sleep", "3600"]);
    c.resources = Some(LinuxResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 128 << 20,
        // What the kubelet asks for Guaranteed pods; raised to the shim's own score where
        // lowering it is not allowed (no CAP_SYS_RESOURCE).
        oom_score_adj: -997,
        ..Default::default()
    });
    let q = h.run(&sb, c).await;
    let own: i64 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let adj: i64 = exec_ok(&h, &q, &["cat", "/proc/1/oom_score_adj"])
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(adj == -997 || adj == own, "{adj}");
    let cgroup = format!("{}/{}", h.rt.pod_cgroup(&sb.0), &q[..16]);
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(rkube_runtime::cgroups::controller_dir(ctrl, &cgroup).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    match rkube_runtime::cgroups::version() {
        rkube_runtime::cgroups::Version::V1 => {
            assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(read("cpu", "cpu.shares"), "512");
            assert_eq!(
                read("memory", "memory.limit_in_bytes"),
                (128u64 << 20).to_string()
            );
        }
        rkube_runtime::cgroups::Version::V2 => {
            assert_eq!(read("", "cpu.max"), "50000 100000");
            assert_eq!(read("", "memory.max"), (128u64 << 20).to_string());
        }
    }
    h.rt.update_container_resources(
        &q,
        &LinuxResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    if rkube_runtime::cgroups::version() == rkube_runtime::cgroups::Version::V1 {
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "20000");
    } else {
        assert_eq!(read("", "cpu.max"), "20000 100000");
    }
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_rotate_and_reopen() {
    let h = Harness::with(|c| {
        c.log_max_bytes = 4096;
        c.log_max_files = 3;
    });
    let sb = h.sandbox("logs").await;
    let mut c = container("many", "testapp", &["/testapp", "lines", "2000"]);
    c.log_path = "many.log".into();
    let id = h.run(&sb, c).await;
    let st = h.wait_exited(&id).await;
    let log = st.log_path.clone().unwrap();
    assert!(std::fs::metadata(&log).unwrap().len() <= 4096);
    assert!(log.with_extension("log.1").exists() && log.with_extension("log.2").exists());
    assert!(!log.with_extension("log.3").exists());
    let text = log_text(&log);
    assert!(text.ends_with("line 2000"), "{text}");
    for l in std::fs::read_to_string(&log).unwrap().lines() {
        let f: Vec<&str> = l.splitn(4, ' ').collect();
        assert!(chrono_like(f[0]) && f[1] == "stdout" && f[2] == "F", "{l}");
    }
    // stderr lines and a last line without newline.
    let out = h
        .run(
            &sb,
            container(
                "mixed",
                "busybox",
                &["sh", "-c", "echo out; echo err >&2; printf tail"],
            ),
        )
        .await;
    let st = h.wait_exited(&out).await;
    let raw = std::fs::read_to_string(st.log_path.as_ref().unwrap()).unwrap();
    assert!(
        raw.contains(" stdout F out\n") && raw.contains(" stderr F err\n"),
        "{raw}"
    );
    assert!(raw.ends_with(" stdout F tail\n"), "{raw}");

    // Reopen after the kubelet moved the file away.
    let talker = h
        .run(
            &sb,
            container(
                "talker",
                "busybox",
                &["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
            ),
        )
        .await;
    let log =
        h.rt.container_status(&talker)
            .await
            .unwrap()
            .log_path
            .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::rename(&log, log.with_extension("moved")).unwrap();
    h.rt.reopen_container_log(&talker).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(log_text(&log).contains("tick"));
    h.finish().await;
}

fn chrono_like(ts: &str) -> bool {
    ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.'
}

async fn read_until(r: &mut ReadStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = tokio::time::timeout_at(deadline.into(), r.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&got)))
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_and_attach() {
    let h = Harness::new();
    let sb = h.sandbox("exec").await;
    let id = h
        .run(&sb, container("main", "busybox", &["sleep", "3600"]))
        .await;
    // exec-sync with output on both streams and an exit code.
    let r =
        h.rt.exec_sync(
            &id,
            &s(&["sh", "-c", "echo out; echo err >&2; exit 5"]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 5)
    );
    // A command that does not exist, and one that runs too long.
    let err =
        h.rt.exec_sync(&id, &s(&["/no/such"]), Duration::from_secs(10))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("/no/such"), "{err}");
    let err =
        h.rt.exec_sync(&id, &s(&["sleep", "30"]), Duration::from_millis(300))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");

    // Streaming exec without a TTY: stdin in, stdout out, exit code.
    let Streaming::Session(mut sess) =
        h.rt.exec(
            &id,
            &ExecRequest {
                cmd: s(&["sh", "-c", "cat; exit 4"]),
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
            },
        )
        .await
        .unwrap()
    else {
        panic!("native exec streams itself")
    };
    let mut stdin = sess.stdin.take().unwrap();
    stdin.write_all(b"hello through cat\n").await.unwrap();
    drop(stdin);
    let mut out = sess.stdout.take().unwrap();
    assert_eq!(read_until(&mut out, "cat\n").await, "hello through cat\n");
    assert_eq!(sess.exit.await.unwrap().unwrap(), 4);

    // With a TTY: the terminal size follows resizes.
    let Streaming::Session(mut sess) =
        h.rt.exec(
            &id,
            &ExecRequest {
                cmd: s(&["sh"]),
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true,
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(sess.stderr.is_none());
    sess.resize
        .as_ref()
        .unwrap()
        .send(TerminalSize {
            width: 123,
            height: 45,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stdin = sess.stdin.take().unwrap();
    stdin.write_all(b"stty size; tty; exit 3\n").await.unwrap();
    let mut out = sess.stdout.take().unwrap();
    let text = read_until(&mut out, "/dev/pts/").await;
    assert!(text.contains("45 123"), "{text}");
    assert_eq!(sess.exit.await.unwrap().unwrap(), 3);

    // Attach to a container's stdin and stdout.
    let mut c = container(
        "reader",
        "busybox",
        &["sh", "-c", "read line; echo got:$line"],
    );
    c.stdin = true;
    c.stdin_once = true;
    let reader = h.run(&sb, c).await;
    let Streaming::Session(mut sess) =
        h.rt.attach(
            &reader,
            &AttachRequest {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    sess.stdin
        .take()
        .unwrap()
        .write_all(b"attached\n")
        .await
        .unwrap();
    let mut out = sess.stdout.take().unwrap();
    assert_eq!(read_until(&mut out, "\n").await, "got:attached\n");
    assert_eq!(sess.exit.await.unwrap().unwrap(), 0);
    assert_eq!(h.wait_exited(&reader).await.exit_code, 0);
    // Exec into an exited container is refused.
    assert!(matches!(
        h.rt.exec_sync(&reader, &s(&["true"]), Duration::from_secs(1))
            .await,
        Err(Error::FailedPrecondition(_))
    ));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_lifecycle_and_image_use() {
    let h = Harness::new();
    // Opening the runtime turned on favordynmods where the host has a cgroup2 mount (the
    // option exists since Linux 6.0).
    let release = nix::sys::utsname::uname().unwrap();
    let version: Vec<u32> = release
        .release()
        .to_string_lossy()
        .split(['.', '-'])
        .take(2)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    if version >= vec![6, 0] {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in mountinfo.lines().filter(|l| l.contains(" - cgroup2 ")) {
            assert!(line.contains("favordynmods"), "{line}");
        }
    }
    let sb = h.sandbox("life").await;
    let id = h
        .run(&sb, container("main", "busybox", &["sleep", "3600"]))
        .await;
    // Names are unique per sandbox and attempt.
    let err =
        h.rt.create_container(&sb.0, &container("main", "busybox", &["true"]), &sb.1)
            .await
            .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    let err =
        h.rt.create_container(&sb.0, &container("x", "no-such-image", &["true"]), &sb.1)
            .await
            .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    // The image is in use.
    let err =
        h.rt.remove_image(&ImageSpec {
            image: "busybox".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    let listed =
        h.rt.list_containers(&ContainerFilter {
            state: Some(ContainerState::Running),
            pod_sandbox_id: Some(sb.0.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // A creation that fails does not keep its name.
    let mut bad = container("retry", "busybox", &["sleep", "3600"]);
    bad.working_dir = "relative".into();
    let err = h.rt.create_container(&sb.0, &bad, &sb.1).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    h.run(&sb, container("retry", "busybox", &["sleep", "3600"]))
        .await;
    let status = h.rt.pod_sandbox_status(&sb.0).await.unwrap();
    assert_eq!(status.state, SandboxState::Ready);
    assert!(status.network_namespace.as_ref().unwrap().exists());
    // Stopping the sandbox kills its containers and releases the namespaces.
    h.rt.stop_pod_sandbox(&sb.0).await.unwrap();
    assert_eq!(
        h.rt.container_status(&id).await.unwrap().state,
        ContainerState::Exited
    );
    let status = h.rt.pod_sandbox_status(&sb.0).await.unwrap();
    assert_eq!(
        (status.state, status.network_namespace),
        (SandboxState::NotReady, None)
    );
    assert!(matches!(
        h.rt.create_container(&sb.0, &container("late", "busybox", &["true"]), &sb.1)
            .await,
        Err(Error::FailedPrecondition(_))
    ));
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    assert!(matches!(
        h.rt.pod_sandbox_status(&sb.0).await,
        Err(Error::NotFound(_))
    ));
    // Now the image can go.
    h.rt.remove_image(&ImageSpec {
        image: "busybox".into(),
    })
    .await
    .unwrap();
    assert!(
        h.rt.image_status(&ImageSpec {
            image: "busybox".into()
        })
        .await
        .unwrap()
        .is_none()
    );
    let fs = h.rt.image_fs_info().await.unwrap();
    assert!(fs[0].used_bytes > 0);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_from_a_registry_and_runs_it() {
    let reg = rkube_testimages::Registry::start(false).unwrap();
    let img = rkube_testimages::ImageDef::testapp("x").unwrap();
    rkube_testimages::push(&img, &reg.host, "team/app", "1.0", None)
        .await
        .unwrap();
    let host = reg.host.clone();
    let h = Harness::with(move |c| c.pull.insecure = vec![host]);
    let name = format!("{}/team/app:1.0", reg.host);
    let id =
        h.rt.pull_image(
            &ImageSpec {
                image: name.clone(),
            },
            None,
        )
        .await
        .unwrap();
    let listed =
        h.rt.image_status(&ImageSpec {
            image: name.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.id, id);
    assert!(listed.repo_tags.contains(&name), "{listed:?}");
    let sb = h.sandbox("pulled").await;
    let c = h
        .run(
            &sb,
            container("app", &name, &["/testapp", "print", "from the registry"]),
        )
        .await;
    let st = h.wait_exited(&c).await;
    assert_eq!(st.image_ref, id);
    assert_eq!(log_text(st.log_path.as_ref().unwrap()), "from the registry");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_an_image_with_a_hundred_and_one_layers_and_whiteouts() {
    use rkube_testimages::{ImageDef, LayerBuilder};
    let h = Harness::new();
    // busybox, then 100 layers: each adds /data/fN; layer 10 adds /data/gone and
    // /etc/old/x, layer 20 deletes the first (whiteout) and makes /etc/old opaque with a
    // new file; the image's user comes from /etc/passwd of a layer that replaced busybox's.
    let mut layers = vec![rkube_testimages::busybox_layer().unwrap()];
    for i in 1..=100 {
        let mut l = LayerBuilder::new().file(&format!("data/f{i}"), b"x", 0o644);
        match i {
            10 => {
                l = l
                    .file("data/gone", b"gone", 0o644)
                    .file("etc/old/x", b"old", 0o644)
            }
            20 => {
                l = l
                    .whiteout("data/gone")
                    .opaque("etc/old")
                    .file("etc/old/y", b"new", 0o644)
            }
            30 => {
                l = l.file(
                    "etc/passwd",
                    b"root:x:0:0::/root:/bin/sh\nlayered:x:4321:4321::/:/bin/sh\n",
                    0o644,
                )
            }
            _ => {}
        }
        layers.push(l.finish());
    }
    let mut img = ImageDef::new("many-layers", layers);
    img.user = Some("layered".into());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("many.tar");
    rkube_testimages::write_oci_archive(&[img], &archive).unwrap();
    h.rt.images()
        .import(std::fs::File::open(&archive).unwrap())
        .unwrap();
    let sb = h.sandbox("layers").await;
    let c = h
        .run(
            &sb,
            container(
                "main",
                "many-layers",
                &[
                    "sh",
                    "-c",
                    "ls /data | wc -l; ls /etc/old; test -e /data/gone || echo gone; id -u",
                ],
            ),
        )
        .await;
    let st = h.wait_exited(&c).await;
    assert_eq!(st.exit_code, 0);
    assert_eq!(
        log_text(st.log_path.as_ref().unwrap()),
        "100\ny\ngone\n4321"
    );
    h.finish().await;
}

/// Stands in for an agent process in `agent_restart_keeps_containers`: creates a sandbox and
/// a running container with the runtime at `RKUBE_TEST_AGENT_DIR`, writes their ids, then
/// waits to be killed. Does nothing when run on its own.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "helper process of agent_restart_keeps_containers"]
async fn helper_agent_process() {
    let Ok(dir) = std::env::var("RKUBE_TEST_AGENT_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let cgroup_root = std::env::var("RKUBE_TEST_AGENT_CGROUP").unwrap();
    let rt = rkube_runtime::native::NativeRuntime::new(config(&dir, &cgroup_root)).unwrap();
    rt.images()
        .import(std::fs::File::open(images_archive()).unwrap())
        .unwrap();
    let sb_cfg = PodSandboxConfig {
        metadata: PodSandboxMetadata {
            name: "survivor".into(),
            ..Default::default()
        },
        hostname: "survivor".into(),
        ..Default::default()
    };
    let sb = rt.run_pod_sandbox(&sb_cfg).await.unwrap();
    let c = rt
        .create_container(
            &sb,
            &container("main", "testapp", &["/testapp", "sleep"]),
            &sb_cfg,
        )
        .await
        .unwrap();
    rt.start_container(&c).await.unwrap();
    // Written whole and then renamed: the test polls for the file and reads it at once.
    std::fs::write(dir.join("ids.tmp"), format!("{sb} {c}")).unwrap();
    std::fs::rename(dir.join("ids.tmp"), dir.join("ids")).unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_restart_keeps_containers() {
    let dir = tempfile::tempdir().unwrap();
    let cgroup_root = format!(
        "/rkube-test-{}",
        dir.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('.')
    );
    struct Guard<'a>(&'a std::path::Path, &'a str);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                force_cleanup(self.0, self.1);
            }
        }
    }
    let _guard = Guard(dir.path(), &cgroup_root);
    // An "agent" in another process starts a container, then is killed.
    let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_agent_process",
            "--nocapture",
        ])
        .env("RKUBE_TEST_AGENT_DIR", dir.path())
        .env("RKUBE_TEST_AGENT_CGROUP", &cgroup_root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ids_file = dir.path().join("ids");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the agent did not start its container"
        );
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the agent process ended early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = std::fs::read_to_string(&ids_file).unwrap();
    let (sb, c) = ids.split_once(' ').unwrap();
    agent.kill().unwrap();
    agent.wait().unwrap();

    // A new agent finds the container still running …
    let rt = rkube_runtime::native::NativeRuntime::new(config(dir.path(), &cgroup_root)).unwrap();
    let list = rt
        .list_containers(&ContainerFilter::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].state),
        (c, ContainerState::Running)
    );
    let st = rt.container_status(c).await.unwrap();
    let pid = st.pid.unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        rt.list_pod_sandboxes(&PodSandboxFilter::default())
            .await
            .unwrap()[0]
            .id,
        sb
    );
    // … and can stop it (SIGTERM: the testapp prints and exits 143) and remove everything.
    rt.stop_container(c, Duration::from_secs(20)).await.unwrap();
    let st = rt.container_status(c).await.unwrap();
    assert_eq!((st.state, st.exit_code), (ContainerState::Exited, 143));
    rt.stop_pod_sandbox(sb).await.unwrap();
    rt.remove_pod_sandbox(sb).await.unwrap();
    let _ = rkube_runtime::cgroups::remove(&cgroup_root);
    assert_clean(dir.path(), &cgroup_root);
}
