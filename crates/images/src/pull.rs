//! Pulling images from OCI registries with the `oci-client` crate.
//!
//! - Multi-platform indexes resolve to the linux/amd64 manifest.
//! - Credentials: the pull's own (from a pull secret), else `configs.<host>.auth` of
//!   `registries.yaml`, else the docker config JSON (`auths.<host>.auth`); the client does
//!   the bearer-token dance itself when a registry asks for it.
//! - Mirrors are configured like k3s' `registries.yaml`: `mirrors.<registry>.endpoint` is
//!   tried in order (a `*` entry applies to every registry), then the registry itself. An
//!   `http://` endpoint, or a host listed as insecure, is spoken to in plain HTTP.
//! - Concurrent pulls of one name share one download: the second waits for the first and
//!   takes its result.
//! - Every blob is written to the store through its digest check.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::digest::Digest;
use crate::store::{Descriptor, ImageRecord, ImageStore};
use crate::{Error, Result, io, reference};

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Credentials for one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// Decodes a docker-config `auth` value (base64 of `user:password`).
    pub fn from_auth(auth: &str) -> Result<Self> {
        let raw = base64_decode(auth.trim())
            .ok_or_else(|| Error::Invalid("auth is not valid base64".into()))?;
        let s = String::from_utf8(raw).map_err(|_| Error::Invalid("auth is not UTF-8".into()))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Error::Invalid("auth is not user:password".into()))?;
        Ok(Self {
            username: u.into(),
            password: p.into(),
        })
    }
}

/// A mirror entry of `registries.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

/// `configs.<host>.auth` of `registries.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub auth: String,
}

/// `configs.<host>.tls` of `registries.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TlsEntry {
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `configs.<host>` of `registries.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<AuthEntry>,
    #[serde(default)]
    pub tls: Option<TlsEntry>,
}

/// Registry settings in the shape of k3s' `registries.yaml`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegistryConfig {
    #[serde(default)]
    pub mirrors: HashMap<String, Mirror>,
    #[serde(default)]
    pub configs: HashMap<String, HostConfig>,
}

impl RegistryConfig {
    /// Reads `registries.yaml`.
    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(io(format!("reading {}", path.display())))?;
        serde_yaml::from_slice(&data).map_err(|e| Error::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// Credentials per registry host from a docker config JSON (`~/.docker/config.json` or a
/// `kubernetes.io/dockerconfigjson` secret).
#[derive(Clone, Debug, Default)]
pub struct DockerConfig {
    pub auths: HashMap<String, Credentials>,
}

impl DockerConfig {
    pub fn parse(json: &[u8]) -> Result<Self> {
        let f: DockerConfigFile = serde_json::from_slice(json)
            .map_err(|e| Error::Invalid(format!("docker config: {e}")))?;
        let mut auths = HashMap::new();
        for (host, a) in f.auths {
            let creds = if !a.auth.is_empty() {
                Credentials::from_auth(&a.auth)?
            } else {
                Credentials {
                    username: a.username,
                    password: a.password,
                }
            };
            // Keys may be URLs ("https://index.docker.io/v1/"); keep just the host.
            let host = host
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            auths.insert(host, creds);
        }
        Ok(Self { auths })
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&std::fs::read(path).map_err(io(format!("reading {}", path.display())))?)
    }
}

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    pub registries: RegistryConfig,
    pub docker_config: DockerConfig,
    /// Registry hosts (`host:port`) spoken to in plain HTTP.
    pub insecure: Vec<String>,
}

/// Pulls in flight and finished, for deduplication.
#[derive(Default)]
pub(crate) struct PullState {
    gates: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<Option<Instant>>>>>,
    fetches: std::sync::atomic::AtomicU64,
}

/// One place to try: a host and how to talk to it.
struct Endpoint {
    host: String,
    http: bool,
    skip_verify: bool,
}

fn endpoint(raw: &str, opts: &PullOptions) -> Endpoint {
    let (http, rest) = if let Some(r) = raw.strip_prefix("http://") {
        (true, r)
    } else {
        (false, raw.strip_prefix("https://").unwrap_or(raw))
    };
    let host = rest.trim_end_matches('/').split('/').next().unwrap_or(rest);
    let host = host.to_string();
    let skip_verify = opts
        .registries
        .configs
        .get(&host)
        .and_then(|c| c.tls.as_ref())
        .is_some_and(|t| t.insecure_skip_verify);
    Endpoint {
        http: http || opts.insecure.contains(&host),
        host,
        skip_verify,
    }
}

impl ImageStore {
    /// How many registry downloads this store has started (tests of deduplication).
    pub fn registry_fetches(&self) -> u64 {
        self.pulls
            .fetches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pulls `name`; returns the stored image.
    pub async fn pull(
        &self,
        name: &str,
        auth: Option<&Credentials>,
        opts: &PullOptions,
    ) -> Result<ImageRecord> {
        let asked = Instant::now();
        let r = reference::parse(name)?;
        let whole = r.whole();
        let gate = {
            let mut g = self.pulls.gates.lock().unwrap_or_else(|e| e.into_inner());
            g.entry(whole.clone()).or_default().clone()
        };
        let mut done = gate.lock().await;
        if let Some(at) = *done
            && at >= asked
            && let Some(img) = self.get(&whole)?
        {
            // Another caller finished pulling this name while we waited.
            return Ok(img);
        }
        let img = self.pull_uncached(&r, auth, opts).await?;
        *done = Some(Instant::now());
        Ok(img)
    }

    async fn pull_uncached(
        &self,
        r: &Reference,
        auth: Option<&Credentials>,
        opts: &PullOptions,
    ) -> Result<ImageRecord> {
        self.pulls
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let registry = r.registry().to_string();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        let mirrors = opts
            .registries
            .mirrors
            .get(&registry)
            .or_else(|| opts.registries.mirrors.get("*"));
        if let Some(m) = mirrors {
            endpoints.extend(m.endpoint.iter().map(|e| endpoint(e, opts)));
        }
        let default_host = if registry == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            registry.clone()
        };
        if !endpoints.iter().any(|e| e.host == default_host) {
            endpoints.push(endpoint(&default_host, opts));
        }
        let mut errors = Vec::new();
        for ep in &endpoints {
            match self.pull_from(r, ep, auth, opts).await {
                Ok(img) => return Ok(img),
                Err(e) => {
                    tracing::debug!(endpoint = %ep.host, error = %e, "pull attempt failed");
                    errors.push(format!("{}: {e}", ep.host));
                }
            }
        }
        Err(Error::Registry(format!(
            "pulling {}: {}",
            r.whole(),
            errors.join("; ")
        )))
    }

    async fn pull_from(
        &self,
        r: &Reference,
        ep: &Endpoint,
        auth: Option<&Credentials>,
        opts: &PullOptions,
    ) -> Result<ImageRecord> {
        // A process-wide TLS provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let target = match r.digest() {
            Some(d) => Reference::with_digest(ep.host.clone(), r.repository().into(), d.into()),
            None => Reference::with_tag(
                ep.host.clone(),
                r.repository().into(),
                r.tag().unwrap_or("latest").into(),
            ),
        };
        let client = Client::new(ClientConfig {
            protocol: if ep.http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: ep.skip_verify,
            ..Default::default()
        });
        let creds = auth.cloned().or_else(|| {
            opts.registries
                .configs
                .get(&ep.host)
                .and_then(|c| c.auth.as_ref())
                .and_then(|a| {
                    if !a.auth.is_empty() {
                        Credentials::from_auth(&a.auth).ok()
                    } else {
                        Some(Credentials {
                            username: a.username.clone(),
                            password: a.password.clone(),
                        })
                    }
                })
                .or_else(|| opts.docker_config.auths.get(&ep.host).cloned())
        });
        let reg_auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let reg_err = |e: oci_client::errors::OciDistributionError| Error::Registry(e.to_string());
        let (bytes, digest) = client
            .pull_manifest_raw(&target, &reg_auth, MANIFEST_TYPES)
            .await
            .map_err(reg_err)?;
        let top = Digest::parse(&digest)?;
        self.blobs().put_bytes(Some(&top), &bytes)?;
        let media_type = media_type_of(&bytes);
        let desc = Descriptor {
            media_type,
            digest: top.to_string(),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
        };
        // An index: fetch the platform's manifest, then resolve as an import would.
        let manifest_digest = loop {
            let missing = match self.resolve_platform(&desc, 0) {
                Ok(d) if self.blobs().exists(&d) => break d,
                Ok(d) => d,
                Err(Error::Invalid(msg)) if msg.contains("is missing") => {
                    self.missing_index_child(&desc)?
                }
                Err(e) => return Err(e),
            };
            let child =
                Reference::with_digest(ep.host.clone(), r.repository().into(), missing.to_string());
            let (b, _) = client
                .pull_manifest_raw(&child, &reg_auth, MANIFEST_TYPES)
                .await
                .map_err(reg_err)?;
            self.blobs().put_bytes(Some(&missing), &b)?;
        };
        let manifest: crate::store::Manifest =
            serde_json::from_slice(&self.blobs().read(&manifest_digest)?)
                .map_err(|e| Error::Invalid(format!("manifest {manifest_digest}: {e}")))?;
        let mut wanted = vec![manifest.config.digest.clone()];
        wanted.extend(manifest.layers.iter().map(|l| l.digest.clone()));
        for d in wanted {
            let d = Digest::parse(&d)?;
            if self.blobs().exists(&d) {
                continue;
            }
            let tmp = tempfile::NamedTempFile::new_in(self.blobs().tmp_dir())
                .map_err(io("creating a download file"))?;
            let (std_file, tmp_path) = tmp.into_parts();
            let mut file = tokio::fs::File::from_std(std_file);
            let res = client.pull_blob(&target, d.as_str(), &mut file).await;
            let _ = file.flush().await;
            drop(file);
            res.map_err(reg_err)?;
            let blobs = self.blobs().clone();
            let expect = d.clone();
            tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(&tmp_path).map_err(io("reading a download"))?;
                blobs.put(Some(&expect), &mut f)
            })
            .await
            .map_err(|e| Error::Invalid(format!("blob task failed: {e}")))??;
        }
        let tag = r.whole();
        let repo_digest = format!("{}@{top}", reference::repository(r));
        let store = self.clone();
        let tags = if r.digest().is_some() {
            vec![]
        } else {
            vec![tag]
        };
        tokio::task::spawn_blocking(move || store.register(&manifest_digest, &tags, &[repo_digest]))
            .await
            .map_err(|e| Error::Invalid(format!("register task failed: {e}")))?
    }

    /// The child manifest of an index that the platform choice needs but the store lacks.
    fn missing_index_child(&self, desc: &Descriptor) -> Result<Digest> {
        let mut d = desc.clone();
        for _ in 0..5 {
            let digest = Digest::parse(&d.digest)?;
            if !self.blobs().exists(&digest) {
                return Ok(digest);
            }
            #[derive(Deserialize)]
            struct Idx {
                manifests: Vec<Descriptor>,
            }
            let idx: Idx = serde_json::from_slice(&self.blobs().read(&digest)?)
                .map_err(|e| Error::Invalid(format!("index {digest}: {e}")))?;
            d = idx
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or(idx.manifests.first())
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("index {digest} is empty")))?;
        }
        Err(Error::Invalid("indexes nested too deeply".into()))
    }
}

fn media_type_of(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct M {
        #[serde(default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<M>(bytes) {
        Ok(m) if !m.media_type.is_empty() => m.media_type,
        Ok(m) if m.manifests.is_some() => "application/vnd.oci.image.index.v1+json".into(),
        _ => "application/vnd.oci.image.manifest.v1+json".into(),
    }
}

/// Standard base64 (with or without padding).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "user:pa ss"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("*").is_none());
    }

    #[test]
    fn parses_configs() {
        let d = DockerConfig::parse(
            br#"{"auths":{"https://reg.example:5000/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        assert_eq!(
            d.auths["reg.example:5000"],
            Credentials {
                username: "user".into(),
                password: "pass".into()
            }
        );
        assert!(DockerConfig::parse(br#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#).is_err());
        let r: RegistryConfig = serde_yaml::from_str(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\nconfigs:\n  \"127.0.0.1:5000\":\n    auth:\n      username: u\n      password: p\n",
        )
        .unwrap();
        assert_eq!(
            r.mirrors["docker.io"].endpoint,
            vec!["http://127.0.0.1:5000"]
        );
        let opts = PullOptions {
            registries: r,
            ..Default::default()
        };
        let ep = endpoint("http://127.0.0.1:5000", &opts);
        assert!(ep.http && ep.host == "127.0.0.1:5000");
        assert!(!endpoint("reg.example", &opts).http);
    }
}
