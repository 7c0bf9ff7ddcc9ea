//! `rkube image import|ls|rm` end to end on a data directory of the test's own.

use std::process::{Command, Output};

use rkube_testimages::{ImageDef, write_docker_archive, write_oci_archive};

const RKUBE: &str = env!("CARGO_BIN_EXE_rkube");

fn rkube(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(RKUBE)
        .arg("image")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn import_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let oci = dir.path().join("images.tar");
    let docker = dir.path().join("docker.tar");
    write_oci_archive(
        &[
            ImageDef::testapp("testapp:1").unwrap(),
            ImageDef::busybox("busybox").unwrap(),
        ],
        &oci,
    )
    .unwrap();
    write_docker_archive(&ImageDef::busybox("tools/box:2").unwrap(), &docker).unwrap();

    let out = rkube(
        &data,
        &["import", oci.to_str().unwrap(), docker.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("imported docker.io/library/testapp:1"), "{t}");
    assert!(
        t.contains("imported docker.io/library/busybox:latest"),
        "{t}"
    );
    assert!(t.contains("docker.io/tools/box:2 (sha256:"), "{t}");

    let out = rkube(&data, &["ls"]);
    assert!(out.status.success());
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = t.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("IMAGE ID"),
        "{t}"
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("docker.io/library/testapp "))
        .unwrap_or_else(|| panic!("{t}"));
    assert_eq!(row.split_whitespace().nth(1), Some("1"));
    // busybox and tools/box are one image (same content) under two names.
    assert_eq!(lines.len(), 4, "{t}");

    // An image a container uses is refused.
    let store = rkube_images::ImageStore::open(data.join("agent/images")).unwrap();
    let id = store.get("testapp:1").unwrap().unwrap().id;
    store.add_lease("c1", &id).unwrap();
    let out = rkube(&data, &["rm", "testapp:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("in use by container c1"),
        "{}",
        text(&out)
    );
    store.release_lease("c1").unwrap();
    let out = rkube(&data, &["rm", "testapp:1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Deleted: docker.io/library/testapp:1"));
    let out = rkube(&data, &["rm", "testapp:1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no such image: testapp:1"));

    // A file that is not an image archive.
    std::fs::write(dir.path().join("junk.tar"), b"junk").unwrap();
    let out = rkube(
        &data,
        &["import", dir.path().join("junk.tar").to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("importing"), "{}", text(&out));
}
