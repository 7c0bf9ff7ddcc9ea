//! Overlay mounts of image snapshots. The classic `mount(2)` call takes all options in one
//! page (4 KiB), which 100+ layers overflow; rkube uses the new mount API instead
//! (`fsopen`/`fsconfig`/`fsmount`/`move_mount`), adding each lower directory on its own with
//! `lowerdir+` (Linux 6.8+), and falls back to `mount(2)` on older kernels when the options
//! fit in a page. The kernel's own error text (read from the filesystem context) is part of
//! the error.
//!
//! Container roots are mounted `volatile` (Linux 5.10+): the overlay skips every sync of its
//! upper layer, above all the `syncfs` of the whole upper filesystem when it is unmounted —
//! on a busy node that waited for all of that filesystem's dirty data (hundreds of
//! milliseconds at the end of a container). A container's writable layer does not outlive
//! the container (a restart is a new container with a new layer), so there is nothing for
//! those syncs to keep.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstr(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid("path contains NUL".into()))
}

fn os_err(what: &str, extra: &str) -> Error {
    let e = std::io::Error::last_os_error();
    let ctx = if extra.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({extra})")
    };
    Error::Io {
        context: ctx,
        source: e,
    }
}

/// Messages the kernel queued on a filesystem context.
fn fs_messages(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: reading into a stack buffer of the given length from a valid fd.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(
            String::from_utf8_lossy(&buf[..n as usize])
                .trim()
                .to_string(),
        );
    }
    out.join("; ")
}

fn fsconfig_string(fd: &OwnedFd, key: &str, value: &[u8]) -> Result<()> {
    fsconfig(fd, key, Some(value))
}

/// Sets `key` to `value`, or the flag `key` when `value` is `None`.
fn fsconfig(fd: &OwnedFd, key: &str, value: Option<&[u8]>) -> Result<()> {
    let k = cstr(key.as_bytes())?;
    let v = value.map(cstr).transpose()?;
    let (cmd, vp) = match &v {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: fsconfig with valid C strings (or a null value for a flag) on a
    // filesystem-context fd.
    let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fd.as_raw_fd(), cmd, k.as_ptr(), vp, 0) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::Io {
            context: format!("overlay option {key} ({})", fs_messages(fd)),
            source: err,
        });
    }
    Ok(())
}

/// The writable layer of an overlay.
#[derive(Clone, Copy, Debug)]
pub struct Writable<'a> {
    pub upper: &'a Path,
    pub work: &'a Path,
    /// Mount with `volatile`: no syncs of the upper layer, none at unmount either (see the
    /// module's documentation). The layer must not be mounted again after a crash.
    pub volatile: bool,
}

/// Mounts an overlay at `target`: `lowers` from top-most to bottom-most, `rw` the writable
/// layer.
pub fn mount_overlay(lowers: &[PathBuf], rw: Writable<'_>, target: &Path) -> Result<()> {
    if lowers.is_empty() {
        return Err(Error::Invalid(
            "an overlay needs at least one lower layer".into(),
        ));
    }
    match mount_new_api(lowers, rw, target) {
        Ok(()) => Ok(()),
        Err(NewApi::Unsupported) => mount_classic(lowers, rw, target),
        Err(NewApi::Failed(e)) => Err(e),
    }
}

enum NewApi {
    Unsupported,
    Failed(Error),
}

fn mount_new_api(
    lowers: &[PathBuf],
    rw: Writable<'_>,
    target: &Path,
) -> std::result::Result<(), NewApi> {
    let fstype = cstr(b"overlay").map_err(NewApi::Failed)?;
    // SAFETY: fsopen with a valid C string.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(NewApi::Unsupported);
    }
    // SAFETY: fsopen returned a new fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    fsconfig_string(&fd, "source", b"overlay").map_err(NewApi::Failed)?;
    for (i, l) in lowers.iter().enumerate() {
        if let Err(e) = fsconfig_string(&fd, "lowerdir+", l.as_os_str().as_bytes()) {
            if i == 0
                && let Error::Io { source, .. } = &e
                && source.raw_os_error() == Some(libc::EINVAL)
            {
                // Kernels before 6.8 do not know "lowerdir+".
                return Err(NewApi::Unsupported);
            }
            return Err(NewApi::Failed(e));
        }
    }
    fsconfig_string(&fd, "upperdir", rw.upper.as_os_str().as_bytes()).map_err(NewApi::Failed)?;
    fsconfig_string(&fd, "workdir", rw.work.as_os_str().as_bytes()).map_err(NewApi::Failed)?;
    if rw.volatile {
        fsconfig(&fd, "volatile", None).map_err(NewApi::Failed)?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(NewApi::Failed(os_err(
            "creating overlay",
            &fs_messages(&fd),
        )));
    }
    // SAFETY: fsmount on a created context.
    let mfd = unsafe { libc::syscall(libc::SYS_fsmount, fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if mfd < 0 {
        return Err(NewApi::Failed(os_err("fsmount overlay", &fs_messages(&fd))));
    }
    // SAFETY: fsmount returned a new fd that we own.
    let mfd = unsafe { OwnedFd::from_raw_fd(mfd as i32) };
    let empty = cstr(b"").map_err(NewApi::Failed)?;
    let tgt = cstr(target.as_os_str().as_bytes()).map_err(NewApi::Failed)?;
    // SAFETY: move_mount from the detached mount fd to an absolute target path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mfd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(NewApi::Failed(os_err(
            &format!("attaching overlay at {}", target.display()),
            "",
        )));
    }
    Ok(())
}

fn mount_classic(lowers: &[PathBuf], rw: Writable<'_>, target: &Path) -> Result<()> {
    let lower: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}{}",
        lower.join(":"),
        rw.upper.display(),
        rw.work.display(),
        if rw.volatile { ",volatile" } else { "" }
    );
    if data.len() >= 4096 {
        return Err(Error::Unsupported(format!(
            "{} layers do not fit in one mount call on this kernel (needs Linux 6.8+ for more)",
            lowers.len()
        )));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::Io {
        context: format!("mounting overlay at {}", target.display()),
        source: e.into(),
    })
}

/// Unmounts `target`; lazily if it is busy; a target that is not mounted is fine.
pub fn unmount(target: &Path) -> Result<()> {
    use nix::mount::{MntFlags, umount2};
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|e| Error::Io {
                context: format!("unmounting {}", target.display()),
                source: e.into(),
            })
        }
        Err(e) => Err(Error::Io {
            context: format!("unmounting {}", target.display()),
            source: e.into(),
        }),
    }
}

/// Whether `path` is a mount point (listed in this process's mount table).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.as_os_str().as_bytes();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp).as_bytes() == want)
    })
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
