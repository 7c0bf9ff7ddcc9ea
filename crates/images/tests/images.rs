//! The image store against real archives, real overlay mounts (root) and a real registry
//! (Debian's `docker-registry` on loopback). Every mount a test makes is unmounted by a guard
//! and asserted gone.

use std::path::{Path, PathBuf};

use rkube_images::mount::{Writable, is_mounted, mount_overlay, unmount};
use rkube_images::pull::base64_encode;
use rkube_images::{DockerConfig, Error, ImageStore, PullOptions, RegistryConfig};
use rkube_testimages::{
    Compression, ImageDef, LayerBuilder, REGISTRY_USER, Registry, push, write_docker_archive,
    write_oci_archive,
};

/// An overlay mounted for a test; unmounted (and checked) on drop, even after a failure.
struct Mounted {
    target: PathBuf,
}

impl Mounted {
    fn new(store: &ImageStore, name: &str, dir: &Path) -> Self {
        let img = store.get(name).unwrap().expect("image present");
        let (upper, work, target) = (dir.join("upper"), dir.join("work"), dir.join("root"));
        for d in [&upper, &work, &target] {
            std::fs::create_dir_all(d).unwrap();
        }
        let rw = Writable {
            upper: &upper,
            work: &work,
            volatile: true,
        };
        mount_overlay(&store.lower_dirs(&img), rw, &target).unwrap();
        assert!(is_mounted(&target));
        // Container roots are mounted volatile (no syncs of the upper layer).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap()))
            .expect("the overlay in mountinfo");
        assert!(line.contains("volatile"), "{line}");
        Self { target }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount(&self.target).unwrap();
        assert!(
            !is_mounted(&self.target),
            "{} still mounted",
            self.target.display()
        );
    }
}

fn import(store: &ImageStore, path: &Path) -> rkube_images::Result<Vec<rkube_images::ImageRecord>> {
    store.import(std::fs::File::open(path).unwrap())
}

#[test]
fn imports_oci_layouts_and_docker_archives() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = ImageDef::testapp("testapp:v1").unwrap();
    app.compression = Compression::Zstd;
    let bb = ImageDef::busybox("registry.local/tools/busybox:1.35").unwrap();
    write_oci_archive(&[app.clone(), bb.clone()], &dir.path().join("oci.tar")).unwrap();
    write_docker_archive(&app, &dir.path().join("docker.tar")).unwrap();

    let store = ImageStore::open(dir.path().join("a")).unwrap();
    let imgs = import(&store, &dir.path().join("oci.tar")).unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[0].repo_tags, vec!["docker.io/library/testapp:v1"]);
    assert_eq!(imgs[1].repo_tags, vec!["registry.local/tools/busybox:1.35"]);
    assert_eq!(
        imgs[0].config.run.entrypoint.as_deref(),
        Some(&["/testapp".to_string()][..])
    );
    // Found by short name, full name, id and id prefix.
    let id = imgs[0].id.clone();
    for name in [
        "testapp:v1",
        "docker.io/library/testapp:v1",
        &id,
        &id[7..19],
    ] {
        assert_eq!(
            store.get(name).unwrap().map(|i| i.id),
            Some(id.clone()),
            "{name}"
        );
    }
    assert!(store.get("testapp:v2").unwrap().is_none());
    // The busybox layer is shared: one snapshot for both images.
    assert_eq!(
        std::fs::read_dir(dir.path().join("a/snapshots"))
            .unwrap()
            .count(),
        2
    );
    let lowers = store.lower_dirs(&imgs[0]);
    assert!(lowers[0].join("testapp").is_file());
    assert!(lowers[1].join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(lowers[1].join("bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // A docker save archive of the same image gives the same image id.
    let store2 = ImageStore::open(dir.path().join("b")).unwrap();
    let d = import(&store2, &dir.path().join("docker.tar")).unwrap();
    assert_eq!(d[0].id, id);
    // Importing again is idempotent.
    let again = import(&store2, &dir.path().join("docker.tar")).unwrap();
    assert_eq!(again[0].id, id);
    assert_eq!(store2.list().unwrap().len(), 1);

    // In use: refused; released: removed with its blobs and snapshots.
    store.add_lease("c1", &id).unwrap();
    let err = store.remove("testapp:v1").unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    store.release_lease("c1").unwrap();
    assert!(store.remove("testapp:v1").unwrap().is_some());
    assert!(store.remove("testapp:v1").unwrap().is_none());
    assert_eq!(store.list().unwrap().len(), 1);
    // Only busybox's snapshot and three blobs (manifest, config, layer) remain.
    assert_eq!(
        std::fs::read_dir(dir.path().join("a/snapshots"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(store.blobs().list().unwrap().len(), 3);
}

#[test]
fn refuses_corrupt_archives() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();
    // A blob whose content does not match its name.
    let bad = dir.path().join("bad.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&bad).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(
            &mut h,
            format!("blobs/sha256/{}", "0".repeat(64)),
            &b"abc"[..],
        )
        .unwrap();
        b.finish().unwrap();
    }
    let err = import(&store, &bad).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    // Not an image archive at all.
    let empty = dir.path().join("empty.tar");
    tar::Builder::new(std::fs::File::create(&empty).unwrap())
        .finish()
        .unwrap();
    let err = import(&store, &empty).unwrap_err();
    assert!(
        err.to_string().contains("neither an OCI image layout"),
        "{err}"
    );
    // Garbage.
    std::fs::write(dir.path().join("junk"), b"not a tar file at all, clearly").unwrap();
    assert!(import(&store, &dir.path().join("junk")).is_err());
    // A layer whose content does not match the config's diff id.
    let mut img = ImageDef::new(
        "x",
        vec![LayerBuilder::new().file("a", b"1", 0o644).finish()],
    );
    img.compression = Compression::None;
    let mut blobs = img.blobs().unwrap();
    let other = LayerBuilder::new().file("a", b"2", 0o644).finish();
    let d = rkube_images::Digest::of(&other);
    blobs.layers[0] = (d.clone(), blobs.layers[0].1.clone(), other);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs.config_digest.to_string(), "size": blobs.config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": 1}],
    }))
    .unwrap();
    store.blobs().put_bytes(None, &blobs.config).unwrap();
    store.blobs().put_bytes(None, &blobs.layers[0].2).unwrap();
    let md = store.blobs().put_bytes(None, &manifest).unwrap();
    let err = store.register(&md, &["x".into()], &[]).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn whiteouts_and_opaque_directories() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = LayerBuilder::new()
        .dir("a", 0o755)
        .file("a/x", b"x", 0o644)
        .file("a/y", b"y", 0o644)
        .file("b", b"b", 0o644)
        .dir("c", 0o755)
        .file("c/old", b"old", 0o644)
        .finish();
    let l2 = LayerBuilder::new()
        .whiteout("a/x")
        .whiteout("b")
        .dir("c", 0o755)
        .opaque("c")
        .file("c/new", b"new", 0o644)
        .finish();
    let l3 = LayerBuilder::new().file("b", b"b again", 0o600).finish();
    let img = ImageDef::new("layers:1", vec![l1, l2, l3]);
    write_oci_archive(&[img], &dir.path().join("img.tar")).unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();
    import(&store, &dir.path().join("img.tar")).unwrap();
    let m = Mounted::new(&store, "layers:1", &dir.path().join("c1"));
    let root = &m.target;
    assert!(!root.join("a/x").exists(), "whiteout hides a/x");
    assert_eq!(std::fs::read(root.join("a/y")).unwrap(), b"y");
    assert!(!root.join("c/old").exists(), "opaque directory hides c/old");
    assert_eq!(std::fs::read(root.join("c/new")).unwrap(), b"new");
    assert_eq!(std::fs::read(root.join("b")).unwrap(), b"b again");
    // Writes go to the container's upper directory, not the shared snapshots.
    std::fs::write(root.join("a/y"), b"changed").unwrap();
    drop(m);
    assert_eq!(
        std::fs::read(dir.path().join("c1/upper/a/y")).unwrap(),
        b"changed"
    );
    let img = store.get("layers:1").unwrap().unwrap();
    assert_eq!(
        std::fs::read(store.lower_dirs(&img)[2].join("a/y")).unwrap(),
        b"y"
    );
}

#[test]
fn mounts_an_image_with_a_hundred_and_one_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layers: Vec<Vec<u8>> = (0..101)
        .map(|i| {
            LayerBuilder::new()
                .file(&format!("f{i}"), format!("{i}").as_bytes(), 0o644)
                .file("top", format!("{i}").as_bytes(), 0o644)
                .finish()
        })
        .collect();
    let img = ImageDef::new("many:layers", layers);
    write_oci_archive(&[img], &dir.path().join("img.tar")).unwrap();
    let store = ImageStore::open(dir.path().join("a-store-directory-with-a-longer-name")).unwrap();
    import(&store, &dir.path().join("img.tar")).unwrap();
    let rec = store.get("many:layers").unwrap().unwrap();
    let option_bytes: usize = store
        .lower_dirs(&rec)
        .iter()
        .map(|p| p.as_os_str().len() + 1)
        .sum();
    assert!(
        option_bytes > 4096,
        "the layer paths must not fit one page ({option_bytes})"
    );
    let m = Mounted::new(&store, "many:layers", &dir.path().join("c"));
    for i in 0..101 {
        assert_eq!(
            std::fs::read_to_string(m.target.join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert_eq!(
        std::fs::read_to_string(m.target.join("top")).unwrap(),
        "100"
    );
}

fn insecure(host: &str) -> PullOptions {
    PullOptions {
        insecure: vec![host.to_string()],
        ..Default::default()
    }
}

#[tokio::test]
async fn pulls_from_a_registry() {
    let reg = Registry::start(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = ImageDef::testapp("x").unwrap();
    let digest = push(&app, &reg.host, "apps/testapp", "v1", None)
        .await
        .unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();
    let name = format!("{}/apps/testapp:v1", reg.host);

    // Plain HTTP needs the registry to be configured as insecure.
    let err = store
        .pull(&name, None, &PullOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Registry(_)), "{err}");

    // Two concurrent pulls share one download.
    let before = store.registry_fetches();
    let opts = insecure(&reg.host);
    let (a, b) = tokio::join!(
        store.pull(&name, None, &opts),
        store.pull(&name, None, &opts)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    assert_eq!(store.registry_fetches() - before, 1);
    assert_eq!(a.repo_tags, vec![name.clone()]);
    assert_eq!(
        a.repo_digests,
        vec![format!("{}/apps/testapp@{digest}", reg.host)]
    );
    assert!(store.lower_dirs(&a)[0].join("testapp").is_file());

    // By digest.
    let by_digest = format!("{}/apps/testapp@{digest}", reg.host);
    assert_eq!(store.pull(&by_digest, None, &opts).await.unwrap().id, a.id);

    // A missing image names the registry's answer.
    let err = store
        .pull(&format!("{}/apps/nope:v1", reg.host), None, &opts)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn pulls_through_a_mirror_and_with_credentials() {
    let reg = Registry::start(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = ImageDef::busybox("x").unwrap();
    push(
        &app,
        &reg.host,
        "library/busybox",
        "latest",
        Some(REGISTRY_USER),
    )
    .await
    .unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();

    // docker.io mirrored to the local registry (as k3s' registries.yaml does it), with the
    // credentials in registries.yaml.
    let yaml = format!(
        "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://{h}\"\nconfigs:\n  \"{h}\":\n    auth:\n      username: {u}\n      password: {p}\n",
        h = reg.host,
        u = REGISTRY_USER.0,
        p = REGISTRY_USER.1
    );
    std::fs::write(dir.path().join("registries.yaml"), yaml).unwrap();
    let registries = RegistryConfig::load(&dir.path().join("registries.yaml")).unwrap();
    let opts = PullOptions {
        registries: registries.clone(),
        ..Default::default()
    };
    let img = store.pull("busybox", None, &opts).await.unwrap();
    assert_eq!(img.repo_tags, vec!["docker.io/library/busybox:latest"]);
    store.remove("busybox").unwrap();

    // Without credentials the registry refuses.
    let mut no_auth = registries.clone();
    no_auth.configs.clear();
    let err = store
        .pull(
            "busybox",
            None,
            &PullOptions {
                registries: no_auth.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Registry(_)), "{err}");

    // Credentials from a docker config JSON.
    let docker = DockerConfig::parse(
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host,
            base64_encode(format!("{}:{}", REGISTRY_USER.0, REGISTRY_USER.1).as_bytes())
        )
        .as_bytes(),
    )
    .unwrap();
    let img = store
        .pull(
            "busybox",
            None,
            &PullOptions {
                registries: no_auth,
                docker_config: docker,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(store.lower_dirs(&img)[0].join("bin/busybox").is_file());
}

#[tokio::test]
async fn pulls_with_a_bearer_token() {
    let reg = Registry::start_with_tokens().unwrap();
    let tokens = reg.tokens.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = ImageDef::testapp("x").unwrap();
    push(&app, &reg.host, "apps/testapp", "v1", Some(REGISTRY_USER))
        .await
        .unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();
    let name = format!("{}/apps/testapp:v1", reg.host);
    let opts = insecure(&reg.host);

    // Anonymous: the token service refuses, so the registry does too.
    let err = store.pull(&name, None, &opts).await.unwrap_err();
    assert!(matches!(err, Error::Registry(_)), "{err}");

    // With credentials (here from a docker config JSON) the client gets a token from the
    // registry's realm and pulls with it.
    let before = tokens.issued();
    let docker = DockerConfig::parse(
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host,
            base64_encode(format!("{}:{}", REGISTRY_USER.0, REGISTRY_USER.1).as_bytes())
        )
        .as_bytes(),
    )
    .unwrap();
    let img = store
        .pull(
            &name,
            None,
            &PullOptions {
                docker_config: docker,
                ..opts
            },
        )
        .await
        .unwrap();
    assert!(tokens.issued() > before);
    assert!(store.lower_dirs(&img)[0].join("testapp").is_file());
}

#[tokio::test]
async fn pulls_the_amd64_image_of_a_multi_platform_index() {
    use oci_client::manifest::{ImageIndexEntry, OciImageIndex, Platform};
    let reg = Registry::start(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let amd64 = ImageDef::testapp("x").unwrap();
    let mut arm = ImageDef::new(
        "y",
        vec![LayerBuilder::new().file("arm", b"arm", 0o644).finish()],
    );
    arm.cmd = Some(vec!["arm".into()]);
    let d_amd = push(&amd64, &reg.host, "multi", "amd64", None)
        .await
        .unwrap();
    let d_arm = push(&arm, &reg.host, "multi", "arm64", None).await.unwrap();
    let entry = |d: &rkube_images::Digest, arch: &str, size: usize| ImageIndexEntry {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: d.to_string(),
        size: size as i64,
        platform: Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: None,
            features: None,
        }),
        annotations: None,
        artifact_type: None,
    };
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests: vec![
            entry(&d_arm, "arm64", arm.blobs().unwrap().manifest.len()),
            entry(&d_amd, "amd64", amd64.blobs().unwrap().manifest.len()),
        ],
        artifact_type: None,
        annotations: None,
    };
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let r = oci_client::Reference::with_tag(reg.host.clone(), "multi".into(), "all".into());
    client
        .push_manifest_list(&r, &oci_client::secrets::RegistryAuth::Anonymous, index)
        .await
        .unwrap();
    let store = ImageStore::open(dir.path().join("s")).unwrap();
    let img = store
        .pull(
            &format!("{}/multi:all", reg.host),
            None,
            &insecure(&reg.host),
        )
        .await
        .unwrap();
    assert_eq!(img.id, amd64.blobs().unwrap().config_digest.to_string());
}
