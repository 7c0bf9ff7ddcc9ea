//! Bytes kubectl v1.33 sent (captured by `tests/kubectl.rs` with
//! `RKUBE_PROTOBUF_WRITE_FIXTURES=1`) next to the JSON kubectl printed for them: each must
//! decode to that JSON and encode back to the same bytes, without kubectl on the machine.

use std::path::Path;

use serde_json::Value;

#[test]
fn captured_kubectl_bytes_decode_and_encode_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".pb").map(str::to_string)
        })
        .collect();
    names.sort();
    for required in [
        "configmap",
        "secret-generic",
        "namespace",
        "deployment",
        "service-clusterip",
        "resourcequota",
        "debug-node-pod",
        "csr-approval",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "fixture {required} is missing"
        );
    }
    for name in &names {
        let bytes = std::fs::read(dir.join(format!("{name}.pb"))).unwrap();
        let json: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        let decoded = rkube_protobuf::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.object, json, "{name}");
        assert!(decoded.unknown_fields.is_empty(), "{name}");
        assert_eq!(
            rkube_protobuf::encode(&json).unwrap_or_else(|e| panic!("{name}: {e}")),
            bytes,
            "{name}"
        );
    }
}
