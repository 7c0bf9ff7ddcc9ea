//! The OCI runtime spec (`config.json`) of a container, from the kubelet's container config,
//! the image config and the sandbox: process (args per Kubernetes' command rules, env, cwd,
//! user and groups resolved in the image's `/etc/passwd` and `/etc/group`), capabilities
//! (containerd's default set, then add/drop), mounts (proc, dev, sys, the sandbox's hosts
//! files, `/dev/termination-log`, the kubelet's mounts with their propagation), namespaces
//! (the sandbox's pinned network/IPC/UTS ones), cgroup and resources, masked and read-only
//! paths, and the RuntimeDefault seccomp filter.

use std::path::{Path, PathBuf};

use rkube_images::RunConfig;
use serde_json::{Value, json};

use crate::types::*;
use crate::{Error, Result};

/// containerd's default capabilities.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this process may hand on (its bounding set): what privileged containers
/// and `ALL` get, as upstream runtimes do.
fn all_capabilities() -> Vec<String> {
    let mut v: Vec<String> = caps::read(None, caps::CapSet::Bounding)
        .map(|set| set.into_iter().map(|c| c.to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Syscalls the RuntimeDefault profile refuses with EPERM: those Docker's and containerd's
/// default profiles do not allow to a container without extra capabilities.
const SECCOMP_DENY: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// The parts of a sandbox a container's spec refers to.
pub struct SandboxRef<'a> {
    pub config: &'a PodSandboxConfig,
    /// Pinned namespaces (`None` when shared with the host).
    pub netns: Option<PathBuf>,
    pub ipcns: Option<PathBuf>,
    pub utsns: Option<PathBuf>,
    /// The sandbox's `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`.
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

/// Inputs for one container's spec.
pub struct SpecInput<'a> {
    pub config: &'a ContainerConfig,
    pub image: &'a RunConfig,
    pub sandbox: SandboxRef<'a>,
    /// Where the shim mounts the root filesystem.
    pub rootfs: &'a Path,
    /// The image's snapshot directories, top first (the root filesystem's lower layers).
    pub layers: &'a [PathBuf],
    pub termination_log: &'a Path,
    pub cgroup: &'a str,
}

/// Parses a capability name (`NET_ADMIN` or `CAP_NET_ADMIN`, any case).
fn cap_name(s: &str) -> Result<String> {
    let up = s.trim().to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    full.parse::<caps::Capability>()
        .map(|c| c.to_string())
        .map_err(|_| Error::InvalidArgument(format!("unknown capability {s:?}")))
}

/// The capability set after `add` and `drop` (`ALL` allowed in both, as upstream).
pub fn capabilities(sc: &LinuxContainerSecurityContext) -> Result<Vec<String>> {
    if sc.privileged {
        return Ok(all_capabilities());
    }
    let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    if let Some(c) = &sc.capabilities {
        if c.add_capabilities
            .iter()
            .any(|a| a.eq_ignore_ascii_case("ALL"))
        {
            set = all_capabilities();
        } else {
            for a in &c.add_capabilities {
                let n = cap_name(a)?;
                if !set.contains(&n) {
                    set.push(n);
                }
            }
        }
        if c.drop_capabilities
            .iter()
            .any(|d| d.eq_ignore_ascii_case("ALL"))
        {
            set.retain(|s| {
                c.add_capabilities
                    .iter()
                    .any(|a| cap_name(a).ok().as_deref() == Some(s.as_str()))
            });
        } else {
            for d in &c.drop_capabilities {
                let n = cap_name(d)?;
                set.retain(|s| *s != n);
            }
        }
    }
    Ok(set)
}

/// Reads a file of the image (its merged layers, never following a symlink); empty when
/// there is none or it cannot be read.
fn read_image_file(layers: &[PathBuf], path: &str) -> String {
    match rkube_images::merged::read_file(layers, path, 4 << 20) {
        Ok(Some(d)) => String::from_utf8_lossy(&d).into_owned(),
        _ => String::new(),
    }
}

/// uid, gid and additional groups of the process, from the image's `/etc/passwd` and
/// `/etc/group` (`layers`: its snapshot directories, top first).
pub fn resolve_user(
    layers: &[PathBuf],
    image_user: Option<&str>,
    sc: &LinuxContainerSecurityContext,
) -> Result<(u32, u32, Vec<u32>)> {
    let passwd = read_image_file(layers, "/etc/passwd");
    let group = read_image_file(layers, "/etc/group");
    let lookup_user = |u: &str| -> Option<(u32, u32, String)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let matches = f[0] == u || f[2] == u;
            matches
                .then(|| (f[2].parse().ok(), f[3].parse().ok(), f[0].to_string()))
                .and_then(|(uid, gid, name)| Some((uid?, gid?, name)))
        })
    };
    let lookup_group = |g: &str| -> Option<u32> {
        group.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && (f[0] == g || f[2] == g)).then(|| f[2].parse().ok())?
        })
    };
    let mut uid = 0u32;
    let mut gid = 0u32;
    let mut name = String::from("root");
    let mut explicit_group = false;
    let spec_user = if !sc.run_as_username.is_empty() {
        Some(sc.run_as_username.clone())
    } else {
        image_user.filter(|u| !u.is_empty()).map(str::to_string)
    };
    if let Some(u) = spec_user {
        let (user_part, group_part) = match u.split_once(':') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (u.clone(), None),
        };
        match lookup_user(&user_part) {
            Some((i, g, n)) => {
                uid = i;
                gid = g;
                name = n;
            }
            None => {
                uid = user_part.parse().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "user {user_part:?} is not in the image's /etc/passwd"
                    ))
                })?;
                gid = 0;
                name = String::new();
            }
        }
        if let Some(g) = group_part {
            gid = match lookup_group(&g) {
                Some(id) => id,
                None => g.parse().map_err(|_| {
                    Error::InvalidArgument(format!("group {g:?} is not in the image's /etc/group"))
                })?,
            };
            explicit_group = true;
        }
    }
    if let Some(u) = sc.run_as_user {
        uid = u32::try_from(u).map_err(|_| Error::InvalidArgument(format!("runAsUser {u}")))?;
        if !explicit_group {
            gid = lookup_user(&uid.to_string())
                .map(|(_, g, _)| g)
                .unwrap_or(0);
        }
        name = lookup_user(&uid.to_string())
            .map(|(_, _, n)| n)
            .unwrap_or_default();
    }
    if let Some(g) = sc.run_as_group {
        gid = u32::try_from(g).map_err(|_| Error::InvalidArgument(format!("runAsGroup {g}")))?;
    }
    let mut extra: Vec<u32> = Vec::new();
    if !name.is_empty() {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
                && !extra.contains(&id)
            {
                extra.push(id);
            }
        }
    }
    for g in &sc.supplemental_groups {
        let g = u32::try_from(*g)
            .map_err(|_| Error::InvalidArgument(format!("supplemental group {g}")))?;
        if !extra.contains(&g) {
            extra.push(g);
        }
    }
    Ok((uid, gid, extra))
}

fn propagation(p: MountPropagation) -> &'static str {
    match p {
        MountPropagation::Private => "rprivate",
        MountPropagation::HostToContainer => "rslave",
        MountPropagation::Bidirectional => "rshared",
    }
}

/// The process's arguments; an error if there is nothing to run.
pub fn args(cfg: &ContainerConfig, image: &RunConfig) -> Result<Vec<String>> {
    let a = rkube_images::config::process_args(image, &cfg.command, &cfg.args);
    if a.is_empty() {
        return Err(Error::InvalidArgument(
            "no command specified: neither the container nor the image names one".into(),
        ));
    }
    Ok(a)
}

/// Builds `config.json`.
/// `shared` when any mount is `Bidirectional`, else `slave`.
pub fn rootfs_propagation(cfg: &ContainerConfig) -> &'static str {
    if has_bidirectional(cfg) {
        "shared"
    } else {
        "slave"
    }
}

/// Whether the container has a `Bidirectional` mount (its shim then keeps the host's mounts
/// shared in its mount namespace).
pub fn has_bidirectional(cfg: &ContainerConfig) -> bool {
    cfg.mounts
        .iter()
        .any(|m| m.propagation == MountPropagation::Bidirectional)
}

pub fn build(input: &SpecInput) -> Result<Value> {
    let cfg = input.config;
    let sc = &cfg.security_context;
    let sb = &input.sandbox;
    let args = args(cfg, input.image)?;
    let mut env = input.image.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let mut env = rkube_images::config::merge_env(
        &env,
        &[("HOSTNAME".to_string(), sb.config.hostname.clone())],
    );
    env = rkube_images::config::merge_env(&env, &cfg.envs);
    let cwd = if !cfg.working_dir.is_empty() {
        cfg.working_dir.clone()
    } else {
        input
            .image
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if !cwd.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "workingDir {cwd:?} is not an absolute path"
        )));
    }
    let (uid, gid, extra_gids) = resolve_user(input.layers, input.image.user.as_deref(), sc)?;
    let caps = capabilities(sc)?;

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if sc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if sc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/termination-log", "type": "bind", "source": input.termination_log, "options": ["rbind", "rprivate", "rw"]}),
    ];
    let user_paths: Vec<&str> = cfg
        .mounts
        .iter()
        .map(|m| m.container_path.as_str())
        .collect();
    for (dest, src) in [
        ("/etc/hosts", &sb.hosts),
        ("/etc/resolv.conf", &sb.resolv_conf),
        ("/etc/hostname", &sb.hostname),
    ] {
        if !user_paths.contains(&dest) {
            let ro = if sc.readonly_rootfs { "ro" } else { "rw" };
            mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate", ro]}));
        }
    }
    for m in &cfg.mounts {
        if !m.container_path.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "mount path {:?} is not absolute",
                m.container_path
            )));
        }
        if !m.host_path.exists() {
            return Err(Error::InvalidArgument(format!(
                "mount source {} does not exist",
                m.host_path.display()
            )));
        }
        mounts.push(json!({
            "destination": m.container_path,
            "type": "bind",
            "source": m.host_path,
            "options": ["rbind", propagation(m.propagation), if m.readonly { "ro" } else { "rw" }],
        }));
    }

    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "cgroup"})];
    if !sb.config.namespaces.host_pid {
        namespaces.push(json!({"type": "pid"}));
    }
    for (kind, path) in [
        ("network", &sb.netns),
        ("ipc", &sb.ipcns),
        ("uts", &sb.utsns),
    ] {
        if let Some(p) = path {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }

    let mut resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
    });
    if sc.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    if let Some(r) = &cfg.resources {
        let mut cpu = serde_json::Map::new();
        if r.cpu_shares > 0 {
            cpu.insert("shares".into(), json!(r.cpu_shares));
        }
        if r.cpu_quota > 0 {
            cpu.insert("quota".into(), json!(r.cpu_quota));
        }
        if r.cpu_period > 0 {
            cpu.insert("period".into(), json!(r.cpu_period));
        }
        if !r.cpuset_cpus.is_empty() {
            cpu.insert("cpus".into(), json!(r.cpuset_cpus));
        }
        if !r.cpuset_mems.is_empty() {
            cpu.insert("mems".into(), json!(r.cpuset_mems));
        }
        if !cpu.is_empty() {
            resources["cpu"] = Value::Object(cpu);
        }
        if r.memory_limit_in_bytes > 0 {
            resources["memory"] = json!({
                "limit": r.memory_limit_in_bytes,
            });
        }
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroup,
        "resources": resources,
        // As containerd: a Bidirectional mount needs the container's mounts to stay shared
        // (its bind of the volume then joins the host's peer group); otherwise the host's
        // mounts reach the container but nothing goes back.
        "rootfsPropagation": rootfs_propagation(cfg),
    });
    if !sc.privileged {
        linux["maskedPaths"] = json!(sc.masked_paths.clone().unwrap_or_else(|| {
            let mut v = oci_spec::runtime::get_default_maskedpaths();
            v.push("/sys/devices/virtual/powercap".into());
            v
        }));
        linux["readonlyPaths"] = json!(
            sc.readonly_paths
                .clone()
                .unwrap_or_else(oci_spec::runtime::get_default_readonly_paths)
        );
        if sc.seccomp == SeccompProfile::RuntimeDefault {
            let deny: Vec<&str> = if caps.iter().any(|c| c == "CAP_SYS_ADMIN") {
                SECCOMP_DENY
                    .iter()
                    .copied()
                    .filter(|s| {
                        !matches!(
                            *s,
                            "mount" | "umount" | "umount2" | "unshare" | "setns" | "pivot_root"
                        )
                    })
                    .collect()
            } else {
                SECCOMP_DENY.to_vec()
            };
            linux["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": deny, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            });
        }
    }
    let mut sysctl = serde_json::Map::new();
    for (k, v) in &sb.config.sysctls {
        sysctl.insert(k.clone(), json!(v));
    }
    if !sysctl.is_empty() {
        linux["sysctl"] = Value::Object(sysctl);
    }

    let mut process = json!({
        "terminal": false,
        "user": {"uid": uid, "gid": gid, "additionalGids": extra_gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": sc.no_new_privs,
    });
    if let Some(r) = &cfg.resources
        && r.oom_score_adj != 0
    {
        process["oomScoreAdj"] = json!(oom_score_adj(r.oom_score_adj));
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs, "readonly": sc.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    }))
}

/// The OOM score adjustment to apply: lowering it below this process's own needs
/// CAP_SYS_RESOURCE, and without it the request is raised to what is allowed (as
/// containerd's `restrict_oom_score_adj` does).
fn oom_score_adj(requested: i64) -> i64 {
    let may_lower = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if may_lower {
        return requested;
    }
    let current: i64 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    requested.max(current)
}

/// The signal that stops a container: the image's STOPSIGNAL (`SIGQUIT`, `QUIT`, `3`) or
/// SIGTERM.
pub fn stop_signal(image: &RunConfig) -> Result<i32> {
    let Some(s) = image.stop_signal.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(libc::SIGTERM);
    };
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::InvalidArgument(format!("unknown stop signal {s:?} in the image")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets() {
        let mut sc = LinuxContainerSecurityContext::default();
        assert_eq!(capabilities(&sc).unwrap().len(), DEFAULT_CAPABILITIES.len());
        sc.capabilities = Some(Capabilities {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["cap_chown".into(), "KILL".into()],
        });
        let c = capabilities(&sc).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
        sc.capabilities = Some(Capabilities {
            add_capabilities: vec!["NET_BIND_SERVICE".into()],
            drop_capabilities: vec!["ALL".into()],
        });
        assert_eq!(
            capabilities(&sc).unwrap(),
            vec!["CAP_NET_BIND_SERVICE".to_string()]
        );
        sc.capabilities = Some(Capabilities {
            add_capabilities: vec!["NOT_A_CAP".into()],
            drop_capabilities: vec![],
        });
        assert!(matches!(capabilities(&sc), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn users_and_groups_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
        )
        .unwrap();
        let layers = [dir.path().to_path_buf()];
        let sc = LinuxContainerSecurityContext::default();
        assert_eq!(resolve_user(&layers, None, &sc).unwrap(), (0, 0, vec![]));
        assert_eq!(
            resolve_user(&layers, Some("app"), &sc).unwrap(),
            (1000, 1000, vec![2000])
        );
        assert_eq!(
            resolve_user(&layers, Some("1000:extra"), &sc).unwrap(),
            (1000, 2000, vec![])
        );
        assert_eq!(
            resolve_user(&layers, Some("4242"), &sc).unwrap(),
            (4242, 0, vec![])
        );
        assert!(resolve_user(&layers, Some("nobody-here"), &sc).is_err());
        let sc = LinuxContainerSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            supplemental_groups: vec![4000],
            ..Default::default()
        };
        assert_eq!(
            resolve_user(&layers, Some("root"), &sc).unwrap(),
            (1000, 3000, vec![2000, 4000])
        );
    }

    #[test]
    fn stop_signals() {
        let mut r = RunConfig::default();
        assert_eq!(stop_signal(&r).unwrap(), libc::SIGTERM);
        for s in ["SIGQUIT", "quit", "3"] {
            r.stop_signal = Some(s.into());
            assert_eq!(stop_signal(&r).unwrap(), libc::SIGQUIT);
        }
        r.stop_signal = Some("SIGNOPE".into());
        assert!(stop_signal(&r).is_err());
    }
}
