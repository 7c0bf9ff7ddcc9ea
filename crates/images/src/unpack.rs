//! Unpacking one layer (a tar stream, plain, gzip or zstd — recognised by its first bytes)
//! into a snapshot directory in overlayfs' own format: a whiteout `.wh.NAME` becomes a 0:0
//! character device `NAME`, an opaque-directory marker `.wh..wh..opq` becomes the
//! `trusted.overlay.opaque=y` attribute of its directory. The uncompressed stream is hashed
//! on the way and must match the layer's diff id from the image config. Needs root (device
//! nodes, ownership, trusted.* attributes).

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::digest::{Digest, HashingReader};
use crate::{Error, Result, io};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Compression of a layer stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Recognises gzip and zstd by their magic numbers; anything else is taken as a plain tar.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decompressor its first bytes call for.
pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(io("reading layer"))?.to_vec();
    Ok(match detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(br).map_err(io("starting zstd decoder"))?,
        ),
        Compression::None => Box::new(br),
    })
}

/// Unpacks the layer in `blob` into `dest` (which must exist). Returns the uncompressed
/// size. Fails with [`Error::DigestMismatch`] if the uncompressed stream's digest is not
/// `diff_id`.
pub fn unpack_layer(blob: File, dest: &Path, diff_id: Option<&Digest>) -> Result<u64> {
    let reader = HashingReader::new(decompress(blob)?);
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(io("reading layer"))? {
        let mut entry = entry.map_err(io("reading layer entry"))?;
        let path = entry.path().map_err(io("reading entry path"))?.into_owned();
        let rel = clean_relative(&path)?;
        let Some(name) = rel.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            // The root directory itself ("./").
            continue;
        };
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if name == OPAQUE_MARKER {
            std::fs::create_dir_all(&parent)
                .map_err(io(format!("creating {}", parent.display())))?;
            set_xattr(&parent, "trusted.overlay.opaque", b"y")?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            std::fs::create_dir_all(&parent)
                .map_err(io(format!("creating {}", parent.display())))?;
            let target = parent.join(hidden);
            remove_any(&target)?;
            nix::sys::stat::mknod(
                &target,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .map_err(|e| io(format!("creating whiteout {}", target.display()))(e.into()))?;
            continue;
        }
        // A file replacing a directory (or the reverse) in this same layer.
        let target = dest.join(&rel);
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            let entry_is_dir = entry.header().entry_type().is_dir();
            if meta.is_dir() != entry_is_dir || meta.file_type().is_symlink() {
                remove_any(&target)?;
            }
        }
        entry
            .unpack_in(dest)
            .map_err(io(format!("unpacking {}", rel.display())))?;
    }
    let (digest, size) = archive.into_inner().finish().map_err(io("reading layer"))?;
    if let Some(expected) = diff_id
        && *expected != digest
    {
        return Err(Error::DigestMismatch {
            what: "layer (diff id)".into(),
            expected: expected.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok(size)
}

/// The entry's path made relative, refusing `..` escapes.
fn clean_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Invalid(format!(
                    "layer entry {} leaves the layer",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

fn remove_any(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(p).map_err(io(format!("removing {}", p.display())))
        }
        Ok(_) => std::fs::remove_file(p).map_err(io(format!("removing {}", p.display()))),
        Err(_) => Ok(()),
    }
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("path {} contains NUL", path.display())))?;
    let n = CString::new(name).map_err(|_| Error::Invalid(format!("xattr {name}")))?;
    // SAFETY: both strings are valid NUL-terminated C strings; value/len describe a slice.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io(format!("setting {name} on {}", path.display()))(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(detect(b"usr/"), Compression::None);
    }

    #[test]
    fn refuses_escapes() {
        assert!(clean_relative(Path::new("../etc/passwd")).is_err());
        assert_eq!(
            clean_relative(Path::new("./a/./b")).unwrap(),
            PathBuf::from("a/b")
        );
    }
}
