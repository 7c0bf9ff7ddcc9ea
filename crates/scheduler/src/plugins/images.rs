//! ImageLocality: nodes that already hold the pod's images score higher, weighted by
//! image size and by how widely the image is spread (so one node with a popular image
//! does not attract everything), between upstream's 23 MB and 1000 MB-per-container
//! thresholds.

use super::{MAX_NODE_SCORE, PodContext};
use crate::cache::{Cache, NodeInfo};

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub fn score(ctx: &PodContext, node: &NodeInfo, cache: &Cache) -> i64 {
    if ctx.images.is_empty() || node.images.is_empty() {
        return 0;
    }
    let total = cache.num_nodes().max(1) as f64;
    let sum: i64 = ctx
        .images
        .iter()
        .filter_map(|img| {
            let size = *node.images.get(img)?;
            let spread = cache.image_spread(img) as f64 / total;
            Some((size as f64 * spread) as i64)
        })
        .sum();
    let max = MAX_CONTAINER_THRESHOLD * ctx.images.len() as i64;
    let clamped = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, pod};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn nodes_with_the_image_score_higher() {
        let mut cache = Cache::new();
        for (name, images) in [
            (
                "with",
                json!([{"names": ["docker.io/library/big:1"], "sizeBytes": 600 * MB}]),
            ),
            (
                "without",
                json!([{"names": ["other:1"], "sizeBytes": 600 * MB}]),
            ),
        ] {
            cache.set_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name},
                    "status": {"images": images}}))
                .unwrap(),
            ));
        }
        let c = ctx(pod(
            json!({"containers": [{"name": "c", "image": "docker.io/library/big:1"}]}),
        ));
        let with = score(&c, cache.node("with").unwrap(), &cache);
        let without = score(&c, cache.node("without").unwrap(), &cache);
        assert!(with > 0, "{with}");
        assert_eq!(without, 0);
    }
}
