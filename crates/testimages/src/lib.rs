//! The images rkube's tests run, built by the tests themselves (there is no network):
//!
//! - **busybox**: `/bin/busybox` from Debian's `busybox-static` with a symlink per applet,
//!   `/etc/passwd` and `/etc/group` (root, `app` 1000, nobody 65534), `/tmp`;
//! - **testapp**: busybox plus the static `testapp` (`crates/testapp`, compiled by this
//!   crate's build script) as `/testapp`, the entrypoint.
//!
//! [`ImageDef`] turns layers and a run config into the blobs of an OCI image, written as an
//! OCI image-layout tarball, a `docker save` archive, or pushed to a registry. Layers are
//! deterministic (fixed owners and times), so an image's digests are the same every run.
//!
//! [`Registry`] runs Debian's `docker-registry` on loopback for pull tests: open, with basic
//! authentication, or with bearer tokens from a [`token`] service of the test's own.

pub mod token;

use std::io::Write;
use std::path::Path;

use rkube_images::Digest;

/// The static testapp binary.
pub const TESTAPP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/testapp"));

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Errors building test images (I/O, a missing busybox, a registry refusing a push).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Builds one layer tarball entry by entry.
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .expect("appending to an in-memory tar");
        self
    }

    pub fn file(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b
            .append_data(&mut h, path, data)
            .expect("appending to an in-memory tar");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b
            .append_link(&mut h, path, target)
            .expect("appending to an in-memory tar");
        self
    }

    /// Deletes `path` of lower layers (a `.wh.` whiteout entry).
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let wh = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&wh, b"", 0o644)
    }

    /// Hides everything lower layers have in `dir` (an opaque-directory marker).
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finishing an in-memory tar")
    }
}

/// The busybox layer (built once per process). Fails if Debian's `busybox-static` is not
/// installed.
pub fn busybox_layer() -> Result<Vec<u8>> {
    static LAYER: std::sync::OnceLock<std::result::Result<Vec<u8>, String>> =
        std::sync::OnceLock::new();
    LAYER
        .get_or_init(|| build_busybox_layer().map_err(|e| e.to_string()))
        .clone()
        .map_err(Into::into)
}

fn build_busybox_layer() -> Result<Vec<u8>> {
    let bin = std::fs::read(BUSYBOX)
        .map_err(|e| format!("{BUSYBOX} (Debian package busybox-static): {e}"))?;
    let list = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    if !list.status.success() {
        return Err(format!("{BUSYBOX} --list failed").into());
    }
    let mut l = LayerBuilder::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("tmp", 0o1777)
        .dir("root", 0o700)
        .dir("home", 0o755)
        .dir("home/app", 0o755)
        .dir("proc", 0o555)
        .dir("sys", 0o555)
        .dir("dev", 0o755)
        .dir("var", 0o755)
        .file("bin/busybox", &bin, 0o755)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
            0o644,
        );
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox"
            && applet
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            l = l.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    Ok(l.finish())
}

/// The layer holding `/testapp`.
pub fn testapp_layer() -> Vec<u8> {
    LayerBuilder::new().file("testapp", TESTAPP, 0o755).finish()
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An image to build: layers (uncompressed tars, bottom first) and its run config.
#[derive(Clone, Debug)]
pub struct ImageDef {
    /// The name it is tagged with (`docker.io/library/busybox:latest` style or short).
    pub name: String,
    pub layers: Vec<Vec<u8>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub compression: Compression,
}

/// The blobs of a built image.
pub struct ImageBlobs {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// (digest, media type, bytes) per layer, bottom first.
    pub layers: Vec<(Digest, String, Vec<u8>)>,
}

impl ImageDef {
    pub fn new(name: &str, layers: Vec<Vec<u8>>) -> Self {
        Self {
            name: name.to_string(),
            layers,
            entrypoint: None,
            cmd: None,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: None,
            user: None,
            stop_signal: None,
            compression: Compression::Gzip,
        }
    }

    /// The busybox image (`sh` as its command).
    pub fn busybox(name: &str) -> Result<Self> {
        let mut d = Self::new(name, vec![busybox_layer()?]);
        d.cmd = Some(vec!["sh".into()]);
        Ok(d)
    }

    /// The testapp image: busybox plus `/testapp` as the entrypoint, `serve` as the command.
    pub fn testapp(name: &str) -> Result<Self> {
        let mut d = Self::new(name, vec![busybox_layer()?, testapp_layer()]);
        d.entrypoint = Some(vec!["/testapp".into()]);
        d.cmd = Some(vec!["serve".into()]);
        Ok(d)
    }

    /// Builds the manifest, config and layer blobs.
    pub fn blobs(&self) -> Result<ImageBlobs> {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in &self.layers {
            diff_ids.push(Digest::of(tar).to_string());
            let (data, mt) = match self.compression {
                Compression::None => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
                Compression::Gzip => {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(tar)?;
                    (e.finish()?, "application/vnd.oci.image.layer.v1.tar+gzip")
                }
                Compression::Zstd => (
                    zstd::encode_all(&tar[..], 3)?,
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
            };
            layers.push((Digest::of(&data), mt.to_string(), data));
        }
        let mut run = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            run.insert(k.to_string(), v);
        };
        if let Some(e) = &self.entrypoint {
            put("Entrypoint", serde_json::json!(e));
        }
        if let Some(c) = &self.cmd {
            put("Cmd", serde_json::json!(c));
        }
        put("Env", serde_json::json!(self.env));
        if let Some(w) = &self.working_dir {
            put("WorkingDir", serde_json::json!(w));
        }
        if let Some(u) = &self.user {
            put("User", serde_json::json!(u));
        }
        if let Some(s) = &self.stop_signal {
            put("StopSignal", serde_json::json!(s));
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))?;
        let config_digest = Digest::of(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers.iter().map(|(d, mt, data)| serde_json::json!({
                "mediaType": mt, "digest": d.to_string(), "size": data.len(),
            })).collect::<Vec<_>>(),
        }))?;
        Ok(ImageBlobs {
            manifest_digest: Digest::of(&manifest),
            manifest,
            config_digest,
            config,
            layers,
        })
    }
}

fn append(b: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, path, data)?;
    Ok(())
}

/// Writes images as one OCI image-layout tarball (each named by an
/// `io.containerd.image.name` annotation), optionally wrapping the whole archive in gzip.
pub fn write_oci_archive(images: &[ImageDef], path: &Path) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut manifests = Vec::new();
    let mut written = std::collections::HashSet::new();
    for img in images {
        let blobs = img.blobs()?;
        let mut put = |d: &Digest, data: &[u8]| -> Result<()> {
            if written.insert(d.clone()) {
                append(&mut b, &format!("blobs/sha256/{}", d.hex()), data)?;
            }
            Ok(())
        };
        for (d, _, data) in &blobs.layers {
            put(d, data)?;
        }
        put(&blobs.config_digest, &blobs.config)?;
        put(&blobs.manifest_digest, &blobs.manifest)?;
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": blobs.manifest_digest.to_string(),
            "size": blobs.manifest.len(),
            "annotations": {"io.containerd.image.name": img.name},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))?;
    append(&mut b, "index.json", &index)?;
    b.into_inner()?.flush()?;
    Ok(())
}

/// Writes one image as a `docker save` archive (uncompressed layer tars).
pub fn write_docker_archive(img: &ImageDef, path: &Path) -> Result<()> {
    let mut plain = img.clone();
    plain.compression = Compression::None;
    let blobs = plain.blobs()?;
    let file = std::fs::File::create(path)?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    let config_name = format!("{}.json", blobs.config_digest.hex());
    append(&mut b, &config_name, &blobs.config)?;
    let mut layer_names = Vec::new();
    for (d, _, data) in &blobs.layers {
        let name = format!("{}/layer.tar", d.hex());
        append(&mut b, &name, data)?;
        layer_names.push(name);
    }
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [img.name],
        "Layers": layer_names,
    }]))?;
    append(&mut b, "manifest.json", &manifest)?;
    b.into_inner()?.flush()?;
    Ok(())
}

/// Pushes an image to a registry at `host` (`127.0.0.1:PORT`) as `repo:tag`, over plain
/// HTTP, with basic credentials if given.
pub async fn push(
    img: &ImageDef,
    host: &str,
    repo: &str,
    tag: &str,
    creds: Option<(&str, &str)>,
) -> Result<Digest> {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::manifest::OciImageManifest;
    use oci_client::secrets::RegistryAuth;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let blobs = img.blobs()?;
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let reference =
        oci_client::Reference::with_tag(host.to_string(), repo.to_string(), tag.to_string());
    let auth = match creds {
        Some((u, p)) => RegistryAuth::Basic(u.into(), p.into()),
        None => RegistryAuth::Anonymous,
    };
    let layers: Vec<ImageLayer> = blobs
        .layers
        .iter()
        .map(|(_, mt, data)| ImageLayer::new(data.clone(), mt.clone(), None))
        .collect();
    let config = Config::new(
        blobs.config.clone(),
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );
    let manifest = OciImageManifest::build(&layers, &config, None);
    client
        .push(&reference, &layers, config, &auth, Some(manifest))
        .await?;
    // The registry stores the manifest as we serialised it; report its digest.
    let (_, digest) = client
        .pull_manifest_raw(
            &reference,
            &auth,
            &["application/vnd.oci.image.manifest.v1+json"],
        )
        .await?;
    Ok(Digest::parse(&digest)?)
}

/// A private OCI registry (Debian's `docker-registry`) on a loopback port, removed on drop.
pub struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The token service of a registry started with [`Registry::start_with_tokens`].
    pub tokens: Option<token::TokenService>,
}

/// The user and password of a registry started with authentication.
pub const REGISTRY_USER: (&str, &str) = ("tester", "s3cret");
/// bcrypt of [`REGISTRY_USER`]'s password (htpasswd format).
const REGISTRY_HTPASSWD: &str =
    "tester:$2b$04$TKuG/kk0aGvPK/EfFlVTh.gUwBRsKaalRhNxqvrUQ.tl4P9JiM6Uu\n";

impl Registry {
    /// Starts a registry; with `auth`, it demands [`REGISTRY_USER`] (HTTP basic).
    pub fn start(auth: bool) -> Result<Self> {
        Self::launch(if auth { Auth::Basic } else { Auth::None })
    }

    /// Starts a registry that demands bearer tokens from its own token service, which
    /// gives them to [`REGISTRY_USER`] (HTTP basic).
    pub fn start_with_tokens() -> Result<Self> {
        Self::launch(Auth::Token(token::TokenService::start()?))
    }

    fn launch(auth: Auth) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let tokens = match auth {
            Auth::None => None,
            Auth::Basic => {
                std::fs::write(dir.path().join("htpasswd"), REGISTRY_HTPASSWD)?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: rkube-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
                None
            }
            Auth::Token(t) => {
                std::fs::write(dir.path().join("token-root.pem"), &t.root_pem)?;
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm,
                    token::SERVICE,
                    token::ISSUER,
                    dir.path().join("token-root.pem").display()
                ));
                Some(t)
            }
        };
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("starting /usr/bin/docker-registry (Debian package docker-registry): {e}")
            })?;
        let mut reg = Self {
            child,
            _dir: dir,
            host,
            tokens,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(&reg.host).is_ok() {
                return Ok(reg);
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log = std::fs::read_to_string(reg._dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(format!("docker-registry exited ({status}): {log}").into());
            }
            if std::time::Instant::now() > deadline {
                return Err("docker-registry did not start listening in 20 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

enum Auth {
    None,
    Basic,
    Token(token::TokenService),
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic() {
        let a = ImageDef::testapp("testapp").unwrap().blobs().unwrap();
        let b = ImageDef::testapp("testapp").unwrap().blobs().unwrap();
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.layers.len(), 2);
        assert!(TESTAPP.starts_with(b"\x7fELF"));
    }
}
