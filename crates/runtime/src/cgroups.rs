//! cgroups as the native runtime uses them, on cgroup v1 (including the hybrid layout with a
//! v2 mount beside the v1 controllers) and on v2: a pod-level parent, per-container groups
//! (created by `libcontainer` from the OCI spec), resource updates, usage figures, the OOM
//! kill counter, and removal bottom-up.
//!
//! A cgroup is named by its path below the hierarchy root (`/rkube/pod-<id>/<ctr>`); on v1 it
//! exists once per controller mount (`/sys/fs/cgroup/<controller>/<path>`).
//!
//! Moving a process into a cgroup write-locks a kernel-wide lock whose default mode makes
//! each writer wait for an RCU grace period (5–25 ms here, once per container created);
//! [`favor_dynamic_modifications`] switches the kernel to the mode made for runtimes that
//! move processes often.

use std::path::{Path, PathBuf};

use crate::types::LinuxResources;

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup layout of this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Which layout `/sys/fs/cgroup` has: v2 only if it is itself a cgroup2 mount (as
/// `libcontainer` decides).
pub fn version() -> Version {
    match nix::sys::statfs::statfs(ROOT) {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Version::V2,
        _ => Version::V1,
    }
}

/// Turns on cgroup2's `favordynmods` (Linux 6.0+) by remounting the cgroup2 hierarchy with
/// its current options plus that one. It puts the kernel's threadgroup lock — taken for
/// writing by every move of a process into a cgroup, on v1 hierarchies too — in the mode
/// that spares writers an RCU grace period, at the price of a slightly slower fork and exit
/// ("favor dynamic modifications", as the kernel's documentation puts it). The setting is
/// kernel-wide; a kubelet likewise tunes the kernel for its workload.
///
/// Returns whether it was changed: `false` when it was on already or there is no cgroup2
/// mount (a v1-only host, whose hierarchies cannot change this on remount).
pub fn favor_dynamic_modifications() -> std::io::Result<bool> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let Some((target, source, options)) = mountinfo.lines().find_map(cgroup2_mount) else {
        return Ok(false);
    };
    if options.split(',').any(|o| o == "favordynmods") {
        return Ok(false);
    }
    let mut data: Vec<&str> = options
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro" && !o.is_empty())
        .collect();
    data.push("favordynmods");
    nix::mount::mount(
        Some(source),
        target.as_str(),
        Some("cgroup2"),
        nix::mount::MsFlags::MS_REMOUNT,
        Some(data.join(",").as_str()),
    )
    .map_err(std::io::Error::from)?;
    Ok(true)
}

/// The mount point, source and superblock options of a cgroup2 line of `mountinfo`.
fn cgroup2_mount(line: &str) -> Option<(String, &str, &str)> {
    let (left, right) = line.split_once(" - ")?;
    let mut r = right.split(' ');
    if r.next()? != "cgroup2" {
        return None;
    }
    let source = r.next()?;
    let options = r.next().unwrap_or("");
    let target = left.split(' ').nth(4)?;
    Some((
        rkube_images::mount::unescape_mountinfo(target),
        source,
        options,
    ))
}

/// Every directory that holds the cgroup `path` (one per v1 controller mount, the unified
/// directory on v2), whether or not it exists.
pub fn dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    match version() {
        Version::V2 => vec![Path::new(ROOT).join(rel)],
        Version::V1 => {
            let mut out = Vec::new();
            if let Ok(rd) = std::fs::read_dir(ROOT) {
                for e in rd.flatten() {
                    let p = e.path();
                    // Symlinks like cpu,cpuacct → cpu point at a mount listed on its own.
                    if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                        out.push(p.join(rel));
                    }
                }
            }
            out
        }
    }
}

/// The directory of `path` in one v1 controller (or the unified directory on v2).
pub fn controller_dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    match version() {
        Version::V2 => Path::new(ROOT).join(rel),
        Version::V1 => Path::new(ROOT).join(controller).join(rel),
    }
}

/// Whether any directory of the cgroup exists.
pub fn exists(path: &str) -> bool {
    dirs(path).iter().any(|d| d.is_dir())
}

/// Creates the cgroup (in the cpu and memory controllers on v1, which is where the pod
/// limits go) and applies `resources`.
pub fn create(path: &str, resources: Option<&LinuxResources>) -> std::io::Result<()> {
    match version() {
        Version::V2 => std::fs::create_dir_all(controller_dir("", path))?,
        Version::V1 => {
            for c in ["cpu", "cpuacct", "memory", "pids"] {
                let d = controller_dir(c, path);
                if Path::new(ROOT).join(c).is_dir() {
                    std::fs::create_dir_all(d)?;
                }
            }
        }
    }
    if let Some(r) = resources {
        update(path, r)?;
    }
    Ok(())
}

fn write(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", dir.join(file).display()),
        )
    })
}

/// Applies CPU and memory settings to an existing cgroup.
pub fn update(path: &str, r: &LinuxResources) -> std::io::Result<()> {
    match version() {
        Version::V1 => {
            let cpu = controller_dir("cpu", path);
            if r.cpu_shares > 0 {
                write(&cpu, "cpu.shares", &r.cpu_shares.to_string())?;
            }
            if r.cpu_period > 0 {
                write(&cpu, "cpu.cfs_period_us", &r.cpu_period.to_string())?;
            }
            if r.cpu_quota != 0 {
                let q = if r.cpu_quota > 0 { r.cpu_quota } else { -1 };
                write(&cpu, "cpu.cfs_quota_us", &q.to_string())?;
            }
            if r.memory_limit_in_bytes > 0 {
                let mem = controller_dir("memory", path);
                write(
                    &mem,
                    "memory.limit_in_bytes",
                    &r.memory_limit_in_bytes.to_string(),
                )?;
            }
        }
        Version::V2 => {
            let d = controller_dir("", path);
            if r.cpu_shares > 0 {
                write(
                    &d,
                    "cpu.weight",
                    &shares_to_weight(r.cpu_shares).to_string(),
                )?;
            }
            if r.cpu_quota != 0 || r.cpu_period > 0 {
                let period = if r.cpu_period > 0 {
                    r.cpu_period
                } else {
                    100_000
                };
                let quota = if r.cpu_quota > 0 {
                    r.cpu_quota.to_string()
                } else {
                    "max".to_string()
                };
                write(&d, "cpu.max", &format!("{quota} {period}"))?;
            }
            if r.memory_limit_in_bytes > 0 {
                write(&d, "memory.max", &r.memory_limit_in_bytes.to_string())?;
            }
        }
    }
    Ok(())
}

/// The cgroup v2 weight for v1 shares, as runc converts them.
pub fn shares_to_weight(shares: i64) -> u64 {
    if shares <= 0 {
        return 100;
    }
    let s = shares.clamp(2, 262_144) as u64;
    1 + ((s - 2) * 9999) / 262_142
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// How many processes the kernel's OOM killer killed in the cgroup.
pub fn oom_kills(path: &str) -> u64 {
    match version() {
        Version::V1 => keyed(
            &controller_dir("memory", path).join("memory.oom_control"),
            "oom_kill",
        ),
        Version::V2 => keyed(&controller_dir("", path).join("memory.events"), "oom_kill"),
    }
    .unwrap_or(0)
}

/// CPU time used (ns), memory usage and working set (bytes) of a cgroup.
pub fn usage(path: &str) -> (u64, u64, u64) {
    match version() {
        Version::V1 => {
            let cpu = read_u64(&controller_dir("cpuacct", path).join("cpuacct.usage")).unwrap_or(0);
            let mem = controller_dir("memory", path);
            let used = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
            let inactive = keyed(&mem.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            (cpu, used, used.saturating_sub(inactive))
        }
        Version::V2 => {
            let d = controller_dir("", path);
            let cpu = keyed(&d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000;
            let used = read_u64(&d.join("memory.current")).unwrap_or(0);
            let inactive = keyed(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
            (cpu, used, used.saturating_sub(inactive))
        }
    }
}

/// Removes the cgroup and everything below it in every controller. Processes must be gone;
/// a busy group is retried briefly (the kernel frees it a moment after its last process).
pub fn remove(path: &str) -> std::io::Result<()> {
    for d in dirs(path) {
        remove_tree(&d)?;
    }
    Ok(())
}

fn remove_tree(d: &Path) -> std::io::Result<()> {
    let Ok(rd) = std::fs::read_dir(d) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("removing cgroup {}: {e}", d.display()),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }
}

#[cfg(test)]
mod mountinfo_tests {
    use super::*;

    #[test]
    fn cgroup2_lines_are_found_and_unescaped() {
        let line = "35 24 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            cgroup2_mount(line),
            Some((
                "/sys/fs/cgroup/unified".to_string(),
                "cgroup2",
                "rw,nsdelegate"
            ))
        );
        let v1 = "36 24 0:31 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu";
        assert_eq!(cgroup2_mount(v1), None);
    }
}
