//! The content-addressed blob store: `blobs/sha256/<hex>`, each file's name is the sha256 of
//! its content. Blobs are written to a temporary file, hashed on the way, checked against the
//! digest the caller expects and only then renamed into place, so a blob that exists is
//! always complete and correct.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::{Error, Result, io};

/// Blobs under one directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating) the blob store under `root` (`root/blobs/sha256`, `root/tmp`).
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        for d in [&dir, &tmp] {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        Ok(Self { dir, tmp })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The directory for temporary files on the same filesystem as the store.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Stores what `reader` yields; fails with [`Error::DigestMismatch`] (storing nothing) if
    /// `expected` is given and differs. Returns the digest and size.
    pub fn put(&self, expected: Option<&Digest>, reader: &mut dyn Read) -> Result<(Digest, u64)> {
        if let Some(d) = expected
            && self.exists(d)
        {
            // Already here (verified when it was written): drain the reader and reuse it.
            let n = std::io::copy(reader, &mut std::io::sink()).map_err(io("reading blob"))?;
            return Ok((d.clone(), n));
        }
        let tmp = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(io(format!("creating a file in {}", self.tmp.display())))?;
        let mut w = HashingWriter::new(BufWriter::with_capacity(256 * 1024, tmp));
        std::io::copy(reader, &mut w).map_err(io("writing blob"))?;
        let (buf, digest, size) = w.finish();
        let tmp = buf.into_inner().map_err(|e| Error::Io {
            context: "writing blob".into(),
            source: e.into_error(),
        })?;
        if let Some(exp) = expected
            && *exp != digest
        {
            return Err(Error::DigestMismatch {
                what: "blob".into(),
                expected: exp.to_string(),
                actual: digest.to_string(),
            });
        }
        let dest = self.path(&digest);
        tmp.persist(&dest)
            .map_err(|e| io(format!("storing {}", dest.display()))(e.error))?;
        Ok((digest, size))
    }

    /// Stores bytes; see [`BlobStore::put`].
    pub fn put_bytes(&self, expected: Option<&Digest>, data: &[u8]) -> Result<Digest> {
        self.put(expected, &mut &data[..]).map(|(d, _)| d)
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Invalid(format!("blob {digest} is missing from the store"))
            } else {
                io(format!("opening {}", p.display()))(e)
            }
        })
    }

    /// Reads a small blob (manifests, configs) whole.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut v)
            .map_err(io(format!("reading blob {digest}")))?;
        Ok(v)
    }

    /// Deletes a blob (absent is fine).
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        match std::fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(format!("removing blob {digest}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io("listing blobs"))? {
            let e = e.map_err(io("listing blobs"))?;
            if let Some(name) = e.file_name().to_str()
                && let Ok(d) = Digest::parse(&format!("sha256:{name}"))
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// Writes `data` to `path` atomically (temporary file in the same directory, then rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(io(format!("creating a file in {}", dir.display())))?;
    tmp.write_all(data)
        .map_err(io(format!("writing {}", path.display())))?;
    tmp.as_file()
        .sync_all()
        .map_err(io(format!("syncing {}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| io(format!("replacing {}", path.display()))(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(None, b"abc").unwrap();
        assert_eq!(d, Digest::of(b"abc"));
        assert_eq!(store.read(&d).unwrap(), b"abc");
        let wrong = Digest::of(b"other");
        let err = store.put_bytes(Some(&wrong), b"abc").unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.exists(&wrong));
        // No temporary file is left behind by the failed write.
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        store.remove(&d).unwrap();
        store.remove(&d).unwrap();
        assert!(store.read(&d).is_err());
    }
}
