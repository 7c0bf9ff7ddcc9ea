//! `rkube image import`: loading images from archives, in one pass over the tar stream.
//!
//! Two formats, recognised by their contents (the archive may be gzip-compressed):
//! - an **OCI image layout** (`oci-layout`, `index.json`, `blobs/sha256/…`): every blob is
//!   stored as it streams by and checked against its name; then each manifest the index
//!   names (through nested indexes, choosing linux/amd64) is registered under the name in
//!   its `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotation;
//! - a **`docker save` archive** (`manifest.json` listing Config, RepoTags and Layers):
//!   every file is stored as a blob by its digest, and an OCI manifest is written for each
//!   image so both formats end up the same in the store.

use std::collections::HashMap;
use std::io::Read;

use serde::Deserialize;

use crate::digest::Digest;
use crate::store::{Descriptor, ImageRecord, ImageStore};
use crate::unpack::decompress;
use crate::{Error, Result, io};

/// Largest metadata file (index.json, manifest.json) read into memory.
const MAX_METADATA: u64 = 16 << 20;

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl ImageStore {
    /// Imports every image in an archive; returns them in archive order.
    pub fn import(&self, reader: impl Read) -> Result<Vec<ImageRecord>> {
        let mut archive = tar::Archive::new(decompress(reader)?);
        let mut metadata: HashMap<String, Vec<u8>> = HashMap::new();
        // Path in the archive → digest of the file (docker save).
        let mut files: HashMap<String, Digest> = HashMap::new();
        for entry in archive.entries().map_err(io("reading the archive"))? {
            let mut entry = entry.map_err(io("reading the archive"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(io("reading an archive path"))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            match path.as_str() {
                "index.json" | "manifest.json" | "oci-layout" | "repositories" => {
                    let mut buf = Vec::new();
                    (&mut entry)
                        .take(MAX_METADATA)
                        .read_to_end(&mut buf)
                        .map_err(io(format!("reading {path}")))?;
                    metadata.insert(path, buf);
                }
                _ => {
                    let expected = match path.strip_prefix("blobs/sha256/") {
                        Some(hex) => Some(Digest::parse(&format!("sha256:{hex}"))?),
                        None => None,
                    };
                    let (digest, _) = self.blobs().put(expected.as_ref(), &mut entry)?;
                    files.insert(path, digest);
                }
            }
        }
        if let Some(index) = metadata.get("index.json") {
            self.import_oci(index)
        } else if let Some(manifest) = metadata.get("manifest.json") {
            self.import_docker(manifest, &files)
        } else {
            Err(Error::Invalid(
                "the archive is neither an OCI image layout (no index.json) nor a docker save \
                 archive (no manifest.json)"
                    .into(),
            ))
        }
    }

    fn import_oci(&self, index: &[u8]) -> Result<Vec<ImageRecord>> {
        let index: OciIndex = serde_json::from_slice(index)
            .map_err(|e| Error::Invalid(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = desc.annotations.as_ref().and_then(|a| {
                a.get("io.containerd.image.name")
                    .or_else(|| a.get("org.opencontainers.image.ref.name"))
                    .cloned()
            });
            let manifest = self.resolve_platform(desc, 0)?;
            let tags: Vec<String> = name.into_iter().collect();
            let digests = repo_digests(&tags, &Digest::parse(&desc.digest)?);
            out.push(self.register(&manifest, &tags, &digests)?);
        }
        if out.is_empty() {
            return Err(Error::Invalid("index.json lists no images".into()));
        }
        Ok(out)
    }

    /// Follows indexes down to the linux/amd64 (or only) image manifest.
    pub(crate) fn resolve_platform(&self, desc: &Descriptor, depth: u32) -> Result<Digest> {
        let digest = Digest::parse(&desc.digest)?;
        if !INDEX_TYPES.contains(&desc.media_type.as_str()) {
            return Ok(digest);
        }
        if depth > 4 {
            return Err(Error::Invalid("indexes nested too deeply".into()));
        }
        let index: OciIndex = serde_json::from_slice(&self.blobs().read(&digest)?)
            .map_err(|e| Error::Invalid(format!("index {digest}: {e}")))?;
        let pick = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .or_else(|| (index.manifests.len() == 1).then(|| &index.manifests[0]))
            .ok_or_else(|| {
                Error::Unsupported(format!("index {digest} has no linux/amd64 image"))
            })?;
        self.resolve_platform(pick, depth + 1)
    }

    fn import_docker(
        &self,
        manifest: &[u8],
        files: &HashMap<String, Digest>,
    ) -> Result<Vec<ImageRecord>> {
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(manifest)
            .map_err(|e| Error::Invalid(format!("manifest.json: {e}")))?;
        let lookup = |p: &str| {
            files
                .get(p.trim_start_matches("./"))
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("{p} is named in manifest.json but missing")))
        };
        let mut out = Vec::new();
        for e in &entries {
            let config = lookup(&e.config)?;
            let config_size = std::fs::metadata(self.blobs().path(&config))
                .map(|m| m.len())
                .unwrap_or(0);
            let mut layers = Vec::new();
            for l in &e.layers {
                let d = lookup(l)?;
                let size = std::fs::metadata(self.blobs().path(&d))
                    .map(|m| m.len())
                    .unwrap_or(0);
                layers.push(serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": d.to_string(),
                    "size": size,
                }));
            }
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.to_string(),
                    "size": config_size,
                },
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|e| Error::Invalid(format!("encoding a manifest: {e}")))?;
            let digest = self.blobs().put_bytes(None, &bytes)?;
            let tags = e.repo_tags.clone().unwrap_or_default();
            out.push(self.register(&digest, &tags, &[])?);
        }
        if out.is_empty() {
            return Err(Error::Invalid("manifest.json lists no images".into()));
        }
        Ok(out)
    }
}

/// `registry/repo@digest` for each tag's repository.
fn repo_digests(tags: &[String], digest: &Digest) -> Vec<String> {
    tags.iter()
        .filter_map(|t| crate::reference::parse(t).ok())
        .map(|r| format!("{}@{digest}", crate::reference::repository(&r)))
        .collect()
}
