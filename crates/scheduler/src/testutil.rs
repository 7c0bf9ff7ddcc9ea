//! Builders for unit tests.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::plugins::{PodContext, volumes::Volumes};

/// A pod `p` in `default` with `spec` (a container is added when none is given).
pub fn pod(spec: Value) -> Arc<Pod> {
    pod_labeled("p", json!({}), spec)
}

pub fn pod_labeled(name: &str, labels: Value, mut spec: Value) -> Arc<Pod> {
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": spec,
        }))
        .expect("test pod"),
    )
}

pub fn ctx(pod: Arc<Pod>) -> PodContext {
    ctx_in(pod, &Cache::new())
}

pub fn ctx_in(pod: Arc<Pod>, cache: &Cache) -> PodContext {
    PodContext::new(Arc::new(PodInfo::new(pod)), cache, &Volumes::default()).expect("prefilter")
}

pub fn node_info(node: Value) -> NodeInfo {
    let mut cache = Cache::new();
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(node).expect("test node");
    let name = node.metadata.name.clone().unwrap_or_default();
    cache.set_node(Arc::new(node));
    cache.node(&name).expect("node").clone()
}
