//! Reading a file of an image as its overlay root would show it, straight from the snapshot
//! directories and without mounting anything (the runtime mounts container roots only inside
//! the shim's own mount namespace, yet reads the image's `/etc/passwd` and `/etc/group` to
//! resolve user names).
//!
//! The rules are overlayfs' for the snapshot format [`crate::unpack`] writes: layers are
//! searched top first; a 0:0 character device (a whiteout) hides the name in every lower
//! layer; a directory marked `trusted.overlay.opaque=y` hides the lower layers' contents of
//! that directory; a non-directory in the middle of the path hides the rest. Symlinks are
//! never followed, so nothing outside the layers is ever read.

use std::ffi::CString;
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::{Result, io};

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let (Ok(p), Ok(name)) = (
        CString::new(dir.as_os_str().as_bytes()),
        CString::new("trusted.overlay.opaque"),
    ) else {
        return false;
    };
    let mut v = [0u8; 2];
    // SAFETY: valid C strings; the buffer and its length describe `v`.
    let n = unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    n == 1 && v[0] == b'y'
}

/// What one layer says about a path.
enum Found {
    /// The layer has the file (a regular file).
    File(PathBuf),
    /// The layer hides the path (whiteout, a non-directory on the way, or not a regular file).
    Hidden,
    /// The layer does not have it; an opaque directory on the way stops the search.
    Absent { opaque: bool },
}

fn look_up(layer: &Path, parts: &[&std::ffi::OsStr]) -> Found {
    let mut p = layer.to_path_buf();
    let mut opaque = false;
    for (i, part) in parts.iter().enumerate() {
        p.push(part);
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => return Found::Absent { opaque },
        };
        if is_whiteout(&m) {
            return Found::Hidden;
        }
        if i + 1 == parts.len() {
            return if m.file_type().is_file() {
                Found::File(p)
            } else {
                Found::Hidden
            };
        }
        if !m.is_dir() {
            return Found::Hidden;
        }
        opaque |= is_opaque(&p);
    }
    Found::Absent { opaque }
}

/// Reads the regular file `path` (absolute in the image) of the image whose snapshot
/// directories are `layers`, top layer first: `None` when the merged view has no such file
/// (or it is not a regular file). At most `limit` bytes are read.
pub fn read_file(layers: &[PathBuf], path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let parts: Vec<&std::ffi::OsStr> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    for layer in layers {
        match look_up(layer, &parts) {
            Found::File(p) => {
                let mut data = Vec::new();
                std::fs::File::open(&p)
                    .and_then(|f| f.take(limit).read_to_end(&mut data))
                    .map_err(io(format!("reading {}", p.display())))?;
                return Ok(Some(data));
            }
            Found::Hidden | Found::Absent { opaque: true } => return Ok(None),
            Found::Absent { opaque: false } => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, data: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn read(layers: &[PathBuf], path: &str) -> Option<String> {
        read_file(layers, path, 1 << 20)
            .unwrap()
            .map(|d| String::from_utf8(d).unwrap())
    }

    #[test]
    fn upper_layers_win_and_lower_layers_show_through() {
        let d = tempfile::tempdir().unwrap();
        let (top, bottom) = (d.path().join("top"), d.path().join("bottom"));
        write(&bottom.join("etc/passwd"), "bottom");
        write(&bottom.join("etc/group"), "group");
        write(&top.join("etc/passwd"), "top");
        let layers = vec![top, bottom];
        assert_eq!(read(&layers, "/etc/passwd").as_deref(), Some("top"));
        assert_eq!(read(&layers, "etc/group").as_deref(), Some("group"));
        assert_eq!(read(&layers, "/etc/shadow"), None);
        assert_eq!(read(&layers, "/"), None);
        // A directory is not a file.
        assert_eq!(read(&layers, "/etc"), None);
        // The limit.
        assert_eq!(
            read_file(&layers, "/etc/passwd", 2).unwrap().unwrap(),
            b"to"
        );
    }

    #[test]
    fn whiteouts_and_non_directories_hide_lower_files() {
        let d = tempfile::tempdir().unwrap();
        let (top, bottom) = (d.path().join("top"), d.path().join("bottom"));
        write(&bottom.join("etc/passwd"), "bottom");
        write(&bottom.join("opt/app/conf"), "conf");
        std::fs::create_dir_all(top.join("etc")).unwrap();
        // Whiteouts are 0:0 character devices (root only; skip the check otherwise).
        let whiteout = nix::sys::stat::mknod(
            &top.join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        );
        // A file where the lower layer has a directory hides the directory's contents.
        write(&top.join("opt/app"), "now a file");
        let layers = vec![top, bottom];
        if whiteout.is_ok() {
            assert_eq!(read(&layers, "/etc/passwd"), None);
        }
        assert_eq!(read(&layers, "/opt/app/conf"), None);
    }

    #[test]
    fn symlinks_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        write(&d.path().join("outside/passwd"), "host");
        std::os::unix::fs::symlink(d.path().join("outside"), top.join("etc")).unwrap();
        std::os::unix::fs::symlink(d.path().join("outside/passwd"), top.join("passwd")).unwrap();
        let layers = vec![top];
        assert_eq!(read(&layers, "/etc/passwd"), None);
        assert_eq!(read(&layers, "/passwd"), None);
    }

    #[test]
    fn opaque_directories_hide_lower_contents() {
        let d = tempfile::tempdir().unwrap();
        let (top, bottom) = (d.path().join("top"), d.path().join("bottom"));
        write(&bottom.join("etc/passwd"), "bottom");
        write(&top.join("etc/group"), "top");
        if crate::unpack::set_xattr(&top.join("etc"), "trusted.overlay.opaque", b"y").is_err() {
            // trusted.* needs CAP_SYS_ADMIN: nothing to check without it.
            return;
        }
        let layers = vec![top, bottom];
        assert_eq!(read(&layers, "/etc/passwd"), None);
        assert_eq!(read(&layers, "/etc/group").as_deref(), Some("top"));
    }
}
