//! Small private tmpfs mounts the native runtime keeps under `<run>` while anything lives in
//! them: `<run>/ns` (pinned namespaces) and `<run>/roots` (the mount points of container
//! root filesystems). Private, so that nothing mounted in them propagates anywhere, even on
//! hosts whose mounts are shared.
//!
//! Users hold a [`PrivateTmpfs`] shared while they add an entry (mounting it first if it is
//! not there) and exclusively to unmount it once it is empty, so an entry is never added to
//! a tmpfs that is going away.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::{Error, Result};

/// A private tmpfs at a directory, mounted while it has entries.
pub(crate) struct PrivateTmpfs {
    dir: PathBuf,
    /// tmpfs `size=` option.
    size: &'static str,
    lock: RwLock<()>,
}

/// Whether `dir` is a mount of its own (a tmpfs on it has another device than its parent).
pub fn is_mounted(dir: &Path) -> bool {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

impl PrivateTmpfs {
    pub(crate) fn new(dir: PathBuf, size: &'static str) -> Self {
        Self {
            dir,
            size,
            lock: RwLock::new(()),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes sure the tmpfs is mounted and returns a guard under which entries may be added
    /// (it is not unmounted while the guard lives).
    pub(crate) async fn hold(&self) -> Result<RwLockReadGuard<'_, ()>> {
        loop {
            let shared = self.lock.read().await;
            if is_mounted(&self.dir) {
                return Ok(shared);
            }
            drop(shared);
            let _exclusive = self.lock.write().await;
            self.mount()?;
        }
    }

    /// Unmounts the tmpfs if nothing is left in it.
    pub(crate) async fn release_if_empty(&self) -> Result<()> {
        let _exclusive = self.lock.write().await;
        if !is_mounted(&self.dir) {
            return Ok(());
        }
        let empty = std::fs::read_dir(&self.dir)
            .map(|mut rd| rd.next().is_none())
            .unwrap_or(false);
        if empty {
            rkube_images::mount::unmount(&self.dir)?;
        }
        Ok(())
    }

    fn mount(&self) -> Result<()> {
        if is_mounted(&self.dir) {
            return Ok(());
        }
        let dir = &self.dir;
        let err = |e: nix::errno::Errno| Error::Runtime(format!("mounting {}: {e}", dir.display()));
        std::fs::create_dir_all(dir)
            .map_err(crate::error::io(format!("creating {}", dir.display())))?;
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(format!("mode=0700,size={}", self.size).as_str()),
        )
        .map_err(err)?;
        // Private even where the host's mounts are shared.
        nix::mount::mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(err)
    }
}
