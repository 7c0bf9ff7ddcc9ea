//! The image store: which images exist (an index file), their blobs, their unpacked layer
//! snapshots and which containers use them (leases).
//!
//! On disk under the store's root:
//! - `blobs/sha256/<hex>` — manifests, configs and layers ([`BlobStore`]);
//! - `snapshots/<chain-id hex>/` — one unpacked layer each, keyed by the layer's chain id so
//!   images sharing a base share its snapshots;
//! - `images.json` — the index: every image with its tags, digests, layers and config;
//! - `leases/<container id>` — the image id a container uses (images with leases cannot be
//!   removed);
//! - `lock` — an `flock` every index change holds, so `rkube image import` and a running
//!   agent can share one store.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::blobs::{BlobStore, write_atomic};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::unpack::unpack_layer;
use crate::{Error, Result, io, reference};

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub diff_id: Digest,
    pub chain_id: Digest,
    pub media_type: String,
    pub size: u64,
}

/// An image in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest (`sha256:…`), the image's id.
    pub id: String,
    /// Normalised `registry/repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `registry/repo@sha256:…` of the manifest it was pulled or imported by.
    pub repo_digests: Vec<String>,
    pub manifest_digest: Digest,
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
    /// Sum of the layers' (compressed) sizes and the config's.
    pub size: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    images: Vec<ImageRecord>,
}

/// Usage of the store's filesystem.
#[derive(Clone, Debug, Default)]
pub struct FsUsage {
    pub mountpoint: PathBuf,
    pub used_bytes: u64,
    pub inodes_used: u64,
}

/// A manifest, OCI or Docker schema 2 (they share this shape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A content descriptor.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

#[derive(Clone, Deserialize, Serialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// The image store. Cloning shares it.
#[derive(Clone)]
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    snapshots: PathBuf,
    leases: PathBuf,
    /// Chain ids being unpacked by this process (one unpack per snapshot at a time).
    unpacking: Arc<Mutex<HashMap<Digest, Arc<Mutex<()>>>>>,
    pub(crate) pulls: Arc<crate::pull::PullState>,
}

impl ImageStore {
    /// Opens (creating) a store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = BlobStore::open(&root)?;
        let snapshots = root.join("snapshots");
        let leases = root.join("leases");
        for d in [&snapshots, &leases] {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        Ok(Self {
            root,
            blobs,
            snapshots,
            leases,
            unpacking: Default::default(),
            pulls: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn lock(&self) -> Result<File> {
        let p = self.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(format!("opening {}", p.display())))?;
        // SAFETY: flock on a valid fd; released when the file is dropped.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io("locking the image store")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(f)
    }

    fn read_index(&self) -> Result<Index> {
        let p = self.root.join("images.json");
        match std::fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io(format!("reading {}", p.display()))(e)),
        }
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let data = serde_json::to_vec_pretty(index)
            .map_err(|e| Error::Invalid(format!("encoding the image index: {e}")))?;
        write_atomic(&self.root.join("images.json"), &data)
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.read_index()?.images)
    }

    /// Finds an image by id (with or without `sha256:`), by a unique id prefix of at least
    /// 12 hex digits, by name (normalised) or by repo digest.
    pub fn get(&self, name: &str) -> Result<Option<ImageRecord>> {
        Ok(find(&self.read_index()?.images, name).cloned())
    }

    /// Registers an image whose manifest, config and layer blobs are in the blob store:
    /// unpacks its snapshots, adds it to the index and points `tags` at it (moving them
    /// from any other image).
    pub fn register(
        &self,
        manifest_digest: &Digest,
        tags: &[String],
        repo_digests: &[String],
    ) -> Result<ImageRecord> {
        let manifest: Manifest = serde_json::from_slice(&self.blobs.read(manifest_digest)?)
            .map_err(|e| Error::Invalid(format!("manifest {manifest_digest}: {e}")))?;
        if manifest
            .media_type
            .as_deref()
            .is_some_and(|mt| mt.contains("index") || mt.contains("manifest.list"))
        {
            return Err(Error::Invalid(format!(
                "{manifest_digest} is an index, not an image manifest"
            )));
        }
        let config_digest = Digest::parse(&manifest.config.digest)?;
        let config_bytes = self.blobs.read(&config_digest)?;
        let config = ImageConfig::parse(&config_bytes)?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Invalid(format!(
                "manifest {manifest_digest} has {} layers but its config lists {} diff ids",
                manifest.layers.len(),
                config.diff_ids.len()
            )));
        }
        let chain = Digest::chain_ids(&config.diff_ids);
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (i, l) in manifest.layers.iter().enumerate() {
            let digest = Digest::parse(&l.digest)?;
            if !self.blobs.exists(&digest) {
                return Err(Error::Invalid(format!("layer {digest} is missing")));
            }
            layers.push(LayerRecord {
                digest,
                diff_id: config.diff_ids[i].clone(),
                chain_id: chain[i].clone(),
                media_type: l.media_type.clone(),
                size: l.size,
            });
        }
        for l in &layers {
            self.ensure_snapshot(l)?;
        }
        let tags: Vec<String> = tags
            .iter()
            .map(|t| reference::normalize(t))
            .collect::<Result<_>>()?;
        let size = layers.iter().map(|l| l.size).sum::<u64>() + config_bytes.len() as u64;
        let record = ImageRecord {
            id: config_digest.to_string(),
            repo_tags: tags.clone(),
            repo_digests: repo_digests.to_vec(),
            manifest_digest: manifest_digest.clone(),
            layers,
            config,
            size,
        };
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        for img in &mut index.images {
            img.repo_tags.retain(|t| !tags.contains(t));
        }
        let merged = match index.images.iter_mut().find(|i| i.id == record.id) {
            Some(existing) => {
                for t in &record.repo_tags {
                    if !existing.repo_tags.contains(t) {
                        existing.repo_tags.push(t.clone());
                    }
                }
                for d in &record.repo_digests {
                    if !existing.repo_digests.contains(d) {
                        existing.repo_digests.push(d.clone());
                    }
                }
                existing.clone()
            }
            None => {
                index.images.push(record.clone());
                record
            }
        };
        self.write_index(&index)?;
        Ok(merged)
    }

    fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots.join(chain_id.hex())
    }

    /// The snapshot directories of an image for an overlay, top-most layer first.
    pub fn lower_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        image
            .layers
            .iter()
            .rev()
            .map(|l| self.snapshot_path(&l.chain_id).join("fs"))
            .collect()
    }

    /// Unpacks a layer into its snapshot unless it is there already.
    fn ensure_snapshot(&self, layer: &LayerRecord) -> Result<()> {
        let dir = self.snapshot_path(&layer.chain_id);
        if dir.join("fs").is_dir() {
            return Ok(());
        }
        let gate = {
            let mut map = self.unpacking.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(layer.chain_id.clone()).or_default().clone()
        };
        let _g = gate.lock().unwrap_or_else(|e| e.into_inner());
        if dir.join("fs").is_dir() {
            return Ok(());
        }
        let tmp = tempfile::Builder::new()
            .prefix("unpack-")
            .tempdir_in(self.blobs.tmp_dir())
            .map_err(io("creating an unpack directory"))?;
        let fs = tmp.path().join("fs");
        std::fs::create_dir(&fs).map_err(io("creating an unpack directory"))?;
        let blob = self.blobs.open_blob(&layer.digest)?;
        unpack_layer(blob, &fs, Some(&layer.diff_id))?;
        let tmp = tmp.keep();
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            if !dir.join("fs").is_dir() {
                return Err(io(format!("storing snapshot {}", dir.display()))(e));
            }
        }
        Ok(())
    }

    /// Records that `container_id` uses `image_id`.
    pub fn add_lease(&self, container_id: &str, image_id: &str) -> Result<()> {
        check_plain_name(container_id)?;
        // Not synced to disk (one fsync per container creation is slow): a lease lost in a
        // crash only guards a container that the crash has ended anyway.
        let path = self.leases.join(container_id);
        let tmp = self.leases.join(format!(".{container_id}.tmp"));
        std::fs::write(&tmp, image_id.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(io(format!("writing {}", path.display())))
    }

    /// Drops a container's lease (absent is fine).
    pub fn release_lease(&self, container_id: &str) -> Result<()> {
        check_plain_name(container_id)?;
        match std::fs::remove_file(self.leases.join(container_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io("removing an image lease")(e))
            }
            _ => Ok(()),
        }
    }

    /// The containers holding leases on `image_id`.
    pub fn users(&self, image_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.leases).map_err(io("listing image leases"))? {
            let e = e.map_err(io("listing image leases"))?;
            // `.<id>.tmp`: a lease being written (or one a crash interrupted).
            if e.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            if std::fs::read_to_string(e.path()).is_ok_and(|s| s == image_id) {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }

    /// Removes an image (all its tags) and then whatever blobs and snapshots no image needs
    /// any more. Refuses with [`Error::InUse`] while a container holds a lease on it.
    /// Returns the removed image, or `None` if there was none by that name.
    pub fn remove(&self, name: &str) -> Result<Option<ImageRecord>> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let Some(img) = find(&index.images, name).cloned() else {
            return Ok(None);
        };
        if let Some(c) = self.users(&img.id)?.into_iter().next() {
            return Err(Error::InUse {
                image: name.to_string(),
                container: c,
            });
        }
        index.images.retain(|i| i.id != img.id);
        self.write_index(&index)?;
        self.collect_garbage(&index)?;
        Ok(Some(img))
    }

    /// Deletes blobs and snapshots no image in `index` refers to.
    fn collect_garbage(&self, index: &Index) -> Result<()> {
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut snaps: BTreeSet<String> = BTreeSet::new();
        for img in &index.images {
            blobs.insert(img.manifest_digest.clone());
            if let Ok(d) = Digest::parse(&img.id) {
                blobs.insert(d);
            }
            for l in &img.layers {
                blobs.insert(l.digest.clone());
                snaps.insert(l.chain_id.hex().to_string());
            }
        }
        // Index manifests of pulled multi-platform images are kept only while an image
        // needs them; nothing refers to them after that.
        for d in self.blobs.list()? {
            if !blobs.contains(&d) {
                self.blobs.remove(&d)?;
            }
        }
        for e in std::fs::read_dir(&self.snapshots).map_err(io("listing snapshots"))? {
            let e = e.map_err(io("listing snapshots"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !snaps.contains(&name) {
                std::fs::remove_dir_all(e.path())
                    .map_err(io(format!("removing snapshot {name}")))?;
            }
        }
        Ok(())
    }

    /// Bytes and inodes the store uses.
    pub fn fs_usage(&self) -> Result<FsUsage> {
        let mut used = 0u64;
        let mut inodes = 0u64;
        du(&self.root, &mut used, &mut inodes);
        Ok(FsUsage {
            mountpoint: self.root.clone(),
            used_bytes: used,
            inodes_used: inodes,
        })
    }
}

/// Disk usage (allocated blocks) and inode count under `p`, not following symlinks or
/// crossing into mounts' contents beyond what `read_dir` shows.
pub fn du(p: &Path, bytes: &mut u64, inodes: &mut u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return;
    };
    *bytes += meta.blocks() * 512;
    *inodes += 1;
    if meta.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        for e in rd.flatten() {
            du(&e.path(), bytes, inodes);
        }
    }
}

fn check_plain_name(s: &str) -> Result<()> {
    if s.is_empty() || s.contains('/') || s == "." || s == ".." {
        return Err(Error::Invalid(format!("invalid container id {s:?}")));
    }
    Ok(())
}

fn find<'a>(images: &'a [ImageRecord], name: &str) -> Option<&'a ImageRecord> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let hex = |i: &ImageRecord| i.id.strip_prefix("sha256:").unwrap_or_default().to_string();
    if let Some(i) = images.iter().find(|i| i.id == name || hex(i) == name) {
        return Some(i);
    }
    if name.len() >= 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut it = images.iter().filter(|i| hex(i).starts_with(name));
        if let (Some(first), None) = (it.next(), it.next()) {
            return Some(first);
        }
    }
    let normalized = reference::normalize(name).ok()?;
    images
        .iter()
        .find(|i| i.repo_tags.contains(&normalized) || i.repo_digests.contains(&normalized))
}
