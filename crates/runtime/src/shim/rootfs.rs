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
//! reaches the host. Copies of other pods' pinned namespaces go away when the runtime
//! unpins them (it unmounts and deletes the pin file, which detaches the copies in every
//! other mount namespace).

use std::path::Path;

use nix::mount::MsFlags;

use super::protocol::RootfsConfig;

/// Moves the (single-threaded) shim into a mount namespace of its own and mounts the
/// container's root filesystem there.
pub fn setup(r: &RootfsConfig) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("creating the shim's mount namespace: {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| format!("making the shim's mounts slaves of the host's: {e}"))?;
    rkube_images::mount::mount_overlay(&r.lowers, &r.upper, &r.work, &r.target)
        .map_err(|e| format!("mounting the container's root filesystem: {e}"))?;
    if let Some(d) = &r.make_dir {
        make_dir_in_rootfs(&r.target, d);
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
