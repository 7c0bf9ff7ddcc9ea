//! The shim's own mount namespace and the container's root filesystem in it.
//!
//! The shim unshares a mount namespace before creating its container and mounts the
//! container's overlay there, so container roots never appear in the host's mount table:
//!
//! - creating a container reads the mount table many times (libcontainer's cgroup v1 lookups
//!   read `/proc/self/mountinfo` once per controller), which with one overlay per container
//!   in the host's table grew with the number of containers;
//! - the overlay goes away with the shim's namespace when the shim ends, however it ends, so
//!   it cannot be left behind.
//!
//! The namespace is a slave of the host's: mounts the host makes later (volumes with
//! `HostToContainer` propagation) still reach the container, and nothing the shim mounts
//! reaches the host. A container with a `Bidirectional` volume needs the host's mounts to
//! stay shared (so that what it mounts in the volume reaches the host): its shim makes only
//! the mount under `<run>/ns` a slave, and mounts the root filesystem on a private tmpfs.
//!
//! The copy of the host's mount table holds every pod's pinned namespaces (`<run>/ns`). The
//! shim keeps only its own pod's: it opens them, lazily unmounts its copy of the whole
//! `<run>/ns` tmpfs and binds the ones it opened onto a fresh tmpfs at the same paths (where
//! the container's spec names them). So the shim's mount table stays the same size however
//! many pods run, and no shim keeps another pod's namespaces alive.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::protocol::RootfsConfig;

/// Moves the (single-threaded) shim into a mount namespace of its own, keeps only the
/// pinned namespaces `pins` under `pins_root` there, and mounts the container's root
/// filesystem. `keep_shared`: the container has a `Bidirectional` mount, so the host's
/// mounts stay shared here (its bind of the volume must join the host's peer group); only
/// the mount holding `pins_root` is made a slave, so that replacing `pins_root` below
/// cannot reach the host. The root filesystem's mount point lies on a private tmpfs
/// (`<run>/roots`), so mounting it propagates nowhere either way.
pub fn setup(
    r: &RootfsConfig,
    pins_root: &Path,
    pins: &[PathBuf],
    keep_shared: bool,
) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("creating the shim's mount namespace: {e}"))?;
    if keep_shared {
        let parent = pins_root.parent().unwrap_or(Path::new("/"));
        let holder = mount_point_of(parent)?;
        nix::mount::mount(
            None::<&str>,
            holder.as_str(),
            None::<&str>,
            MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| format!("making {holder} a slave of the host's mount: {e}"))?;
    } else {
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| format!("making the shim's mounts slaves of the host's: {e}"))?;
    }
    if !pins.is_empty() && crate::native::tmpfs::is_mounted(pins_root) {
        keep_only(pins_root, pins)?;
    }
    let rw = rkube_images::mount::Writable {
        upper: &r.upper,
        work: &r.work,
        volatile: true,
    };
    rkube_images::mount::mount_overlay(&r.lowers, rw, &r.target)
        .map_err(|e| format!("mounting the container's root filesystem: {e}"))?;
    if let Some(d) = &r.make_dir {
        make_dir_in_rootfs(&r.target, d);
    }
    Ok(())
}

/// The mount point of the mount that holds `path` (the longest mount point above it).
fn mount_point_of(path: &Path) -> Result<String, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let path = path.to_string_lossy();
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(rkube_images::mount::unescape_mountinfo)
        .filter(|mp| {
            mp == "/"
                || path.as_ref() == mp.as_str()
                || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
        })
        .max_by_key(|mp| mp.len())
        .ok_or_else(|| format!("no mount holds {path}"))
}

/// Replaces the tmpfs at `root` (in the shim's namespace) by one holding only `pins`.
fn keep_only(root: &Path, pins: &[PathBuf]) -> Result<(), String> {
    let mut open = Vec::new();
    for p in pins {
        let f = std::fs::File::open(p).map_err(|e| format!("opening {}: {e}", p.display()))?;
        open.push((p, f));
    }
    nix::mount::umount2(root, MntFlags::MNT_DETACH)
        .map_err(|e| format!("unmounting the shim's copy of {}: {e}", root.display()))?;
    nix::mount::mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=64k"),
    )
    .map_err(|e| format!("mounting a tmpfs at {}: {e}", root.display()))?;
    for (p, f) in open {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        let src = format!("/proc/self/fd/{}", f.as_raw_fd());
        nix::mount::mount(
            Some(src.as_str()),
            p.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("binding {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Creates `rel` (absolute in the container) below `rootfs`, never through a symlink; stops
/// quietly where it cannot (the container's start then reports a missing directory).
fn make_dir_in_rootfs(rootfs: &Path, rel: &str) {
    let mut p = rootfs.to_path_buf();
    for c in Path::new(rel).components() {
        if let std::path::Component::Normal(name) = c {
            p.push(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => return,
                Err(_) => {
                    if std::fs::create_dir(&p).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_directories_are_made_but_never_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        make_dir_in_rootfs(d.path(), "/srv/app/data");
        assert!(d.path().join("srv/app/data").is_dir());
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        make_dir_in_rootfs(d.path(), "/link/escape");
        assert!(!outside.path().join("escape").exists());
    }
}
