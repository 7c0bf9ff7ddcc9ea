//! Measures defaulting + validation throughput for a typical Deployment and Pod:
//! `cargo run --release -p rkube-validation --example validation_throughput`.

use std::time::Instant;

use rkube_validation::{Gvk, default_object, validate_create, validate_update};
use serde_json::json;

fn main() {
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}, "readinessProbe": {"httpGet": {"port": 80}},
            "env": [{"name": "A", "value": "1"}], "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]}}}});
    for (gvk, obj) in [(Gvk::new("apps", "v1", "Deployment"), dep)] {
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            let mut o = obj.clone();
            default_object(gvk, &mut o).expect("defaults");
            let errs = validate_create(gvk, &o).expect("validates");
            assert!(errs.is_empty());
        }
        let create = start.elapsed() / n;
        let mut o = obj.clone();
        default_object(gvk, &mut o).expect("defaults");
        let start = Instant::now();
        for _ in 0..n {
            let errs = validate_update(gvk, &o, &o).expect("validates");
            assert!(errs.is_empty());
        }
        let update = start.elapsed() / n;
        println!(
            "{} {}: default+validate_create {:?}/object, validate_update {:?}/object",
            gvk.group, gvk.kind, create, update
        );
    }
}
