//! Measures encode and decode speed on a realistic Deployment and a 500-pod PodList.
//!
//! ```sh
//! cargo run --release -p rkube-protobuf --example protobuf_throughput
//! ```

use std::time::Instant;

use serde_json::{Value, json};

fn deployment(i: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("web-{i}"), "namespace": "default", "uid": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "resourceVersion": "1234", "generation": 2, "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "tier": "frontend"}, "annotations": {"deployment.kubernetes.io/revision": "2"},
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}}]},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                    "livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "periodSeconds": 10},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent"}],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"}}},
        "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2024-05-01T10:00:30Z",
                "lastTransitionTime": "2024-05-01T10:00:30Z", "reason": "MinimumReplicasAvailable"}]}})
}

fn measure(name: &str, object: &Value, rounds: usize) {
    let bytes = rkube_protobuf::encode(object).unwrap();
    let json_len = serde_json::to_vec(object).unwrap().len();
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(rkube_protobuf::encode(std::hint::black_box(object)).unwrap());
    }
    let enc = start.elapsed().as_secs_f64() / rounds as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(rkube_protobuf::decode(std::hint::black_box(&bytes)).unwrap());
    }
    let dec = start.elapsed().as_secs_f64() / rounds as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(serde_json::to_vec(std::hint::black_box(object)).unwrap());
    }
    let js = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "| {name} | {} B ({json_len} B as JSON) | {:.1} µs | {:.1} µs | {:.1} µs |",
        bytes.len(),
        enc * 1e6,
        dec * 1e6,
        js * 1e6
    );
}

fn main() {
    println!("| object | protobuf size | encode | decode | serde_json::to_vec (for scale) |");
    println!("|---|---|---|---|---|");
    measure("Deployment", &deployment(0), 20_000);
    let mut pod = deployment(0)["spec"]["template"].clone();
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    let items: Vec<Value> = (0..500)
        .map(|i| {
            let mut p = pod.clone();
            p["metadata"]["name"] = json!(format!("web-{i}"));
            p
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": items});
    measure("PodList of 500 pods", &list, 100);
}
