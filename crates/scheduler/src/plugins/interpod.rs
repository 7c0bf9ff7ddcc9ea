//! InterPodAffinity: required pod affinity (some matching pod in the node's topology
//! domain; the first pod of a group that matches its own terms may go anywhere with the
//! keys), required anti-affinity (no matching pod in the domain), existing pods'
//! required anti-affinity against the incoming pod, and the preferred terms of both
//! sides as a score. Terms select pods in their listed namespaces, the pod's own when none
//! are listed, or all namespaces with an empty `namespaceSelector` (non-empty namespace
//! selectors are not evaluated: such terms only use their listed namespaces).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Code, MAX_NODE_SCORE, Plugin, Status};
use crate::cache::{Cache, NodeInfo, PodInfo};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// topology key → value → count.
type TopologyCounts = HashMap<String, HashMap<String, i64>>;

fn bump(counts: &mut TopologyCounts, key: &str, value: &str, by: i64) {
    *counts
        .entry(key.to_string())
        .or_default()
        .entry(value.to_string())
        .or_default() += by;
}

fn get(counts: &TopologyCounts, key: &str, value: &str) -> i64 {
    counts
        .get(key)
        .and_then(|m| m.get(value))
        .copied()
        .unwrap_or(0)
}

/// PreFilter state.
#[derive(Default)]
pub struct State {
    info: Option<Arc<PodInfo>>,
    existing_anti: TopologyCounts,
    affinity: TopologyCounts,
    anti: Vec<TopologyCounts>,
}

impl State {
    pub fn pre_filter(info: &Arc<PodInfo>, cache: &Cache) -> State {
        let mut state = State {
            info: Some(info.clone()),
            anti: vec![TopologyCounts::new(); info.required_anti_affinity.len()],
            ..Default::default()
        };
        let wants = !info.required_affinity.is_empty() || !info.required_anti_affinity.is_empty();
        if !wants && !cache.has_anti_affinity_pods() {
            return state;
        }
        for node in cache.nodes() {
            if node.pods_with_required_anti_affinity == 0 && !wants {
                continue;
            }
            for existing in &node.pods {
                for term in &existing.required_anti_affinity {
                    if let Some(v) = node.labels.get(&term.topology_key)
                        && term.matches(info)
                    {
                        bump(&mut state.existing_anti, &term.topology_key, v, 1);
                    }
                }
                if !wants {
                    continue;
                }
                if !info.required_affinity.is_empty()
                    && info.required_affinity.iter().all(|t| t.matches(existing))
                {
                    for t in &info.required_affinity {
                        if let Some(v) = node.labels.get(&t.topology_key) {
                            bump(&mut state.affinity, &t.topology_key, v, 1);
                        }
                    }
                }
                for (i, t) in info.required_anti_affinity.iter().enumerate() {
                    if let Some(v) = node.labels.get(&t.topology_key)
                        && t.matches(existing)
                    {
                        bump(&mut state.anti[i], &t.topology_key, v, 1);
                    }
                }
            }
        }
        state
    }

    pub fn filter(&self, node: &NodeInfo) -> Result<(), Status> {
        let Some(info) = &self.info else {
            return Ok(());
        };
        if !info.required_affinity.is_empty() {
            let all_match = info.required_affinity.iter().all(|t| {
                node.labels
                    .get(&t.topology_key)
                    .is_some_and(|v| get(&self.affinity, &t.topology_key, v) > 0)
            });
            // No pod anywhere matches: the pod may start the group if it matches itself.
            let first_of_group = self.affinity.is_empty()
                && info.required_affinity.iter().all(|t| t.matches(info))
                && info
                    .required_affinity
                    .iter()
                    .all(|t| node.labels.contains_key(&t.topology_key));
            if !all_match && !first_of_group {
                return Err(Status::new(
                    Plugin::InterPodAffinity,
                    Code::UnschedulableAndUnresolvable,
                    ERR_AFFINITY,
                ));
            }
        }
        for (i, t) in info.required_anti_affinity.iter().enumerate() {
            if let Some(v) = node.labels.get(&t.topology_key)
                && get(&self.anti[i], &t.topology_key, v) > 0
            {
                return Err(Status::new(
                    Plugin::InterPodAffinity,
                    Code::Unschedulable,
                    ERR_ANTI_AFFINITY,
                ));
            }
        }
        for (key, values) in &self.existing_anti {
            if let Some(v) = node.labels.get(key)
                && values.get(v).copied().unwrap_or(0) > 0
            {
                return Err(Status::new(
                    Plugin::InterPodAffinity,
                    Code::Unschedulable,
                    ERR_EXISTING_ANTI_AFFINITY,
                ));
            }
        }
        Ok(())
    }
}

/// Weight of an existing pod's required affinity term matching the incoming pod
/// (upstream's `hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// The preferred (anti-)affinity score of both sides, normalized; `None` when no term
/// is involved.
pub fn score(info: &PodInfo, nodes: &[&NodeInfo], cache: &Cache) -> Option<Vec<i64>> {
    let incoming = !info.preferred_affinity.is_empty() || !info.preferred_anti_affinity.is_empty();
    if !incoming && !cache.has_affinity_pods() {
        return None;
    }
    let mut topo = TopologyCounts::new();
    let mut any = false;
    for node in cache.nodes() {
        if !incoming && node.pods_with_affinity == 0 {
            continue;
        }
        for existing in &node.pods {
            let mut add = |key: &str, w: i64| {
                if let Some(v) = node.labels.get(key) {
                    bump(&mut topo, key, v, w);
                    any = true;
                }
            };
            for (w, t) in &info.preferred_affinity {
                if t.matches(existing) {
                    add(&t.topology_key, *w as i64);
                }
            }
            for (w, t) in &info.preferred_anti_affinity {
                if t.matches(existing) {
                    add(&t.topology_key, -(*w as i64));
                }
            }
            for t in &existing.required_affinity {
                if t.matches(info) {
                    add(&t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                }
            }
            for (w, t) in &existing.preferred_affinity {
                if t.matches(info) {
                    add(&t.topology_key, *w as i64);
                }
            }
            for (w, t) in &existing.preferred_anti_affinity {
                if t.matches(info) {
                    add(&t.topology_key, -(*w as i64));
                }
            }
        }
    }
    if !any {
        return None;
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            topo.iter()
                .filter_map(|(key, values)| values.get(n.labels.get(key)?))
                .sum()
        })
        .collect();
    let max = raw.iter().copied().max().unwrap_or(0);
    let min = raw.iter().copied().min().unwrap_or(0);
    Some(
        raw.iter()
            .map(|&s| {
                if max > min {
                    MAX_NODE_SCORE * (s - min) / (max - min)
                } else {
                    0
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx_in, pod_labeled};
    use serde_json::json;

    fn cluster() -> Cache {
        let mut cache = Cache::new();
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            cache.set_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "labels":
                    {"kubernetes.io/hostname": name, "zone": zone}}}))
                .unwrap(),
            ));
        }
        cache
    }

    fn term(kind: &str, key: &str) -> serde_json::Value {
        json!({kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": key}]}})
    }

    #[test]
    fn required_affinity_follows_matching_pods() {
        let mut cache = cluster();
        let with_aff = json!({"affinity": term("podAffinity", "zone")});
        // First of its group: it matches itself, so any node with the key is fine.
        let c = ctx_in(
            pod_labeled("p", json!({"app": "db"}), with_aff.clone()),
            &cache,
        );
        assert!(c.interpod.filter(cache.node("b1").unwrap()).is_ok());
        // Not matching itself and nothing else matches: nowhere.
        let c = ctx_in(
            pod_labeled("p", json!({"app": "web"}), with_aff.clone()),
            &cache,
        );
        let err = c.interpod.filter(cache.node("b1").unwrap()).unwrap_err();
        assert_eq!(err.reasons, vec![ERR_AFFINITY]);
        cache.set_pod(pod_labeled(
            "db",
            json!({"app": "db"}),
            json!({"nodeName": "a1"}),
        ));
        let c = ctx_in(pod_labeled("p", json!({"app": "web"}), with_aff), &cache);
        assert!(c.interpod.filter(cache.node("a2").unwrap()).is_ok());
        assert!(c.interpod.filter(cache.node("b1").unwrap()).is_err());
    }

    #[test]
    fn anti_affinity_both_ways() {
        let mut cache = cluster();
        cache.set_pod(pod_labeled(
            "db",
            json!({"app": "db"}),
            json!({"nodeName": "a1", "affinity": term("podAntiAffinity", "kubernetes.io/hostname")}),
        ));
        let c = ctx_in(pod_labeled("p", json!({"app": "db"}), json!({})), &cache);
        assert_eq!(
            c.interpod
                .filter(cache.node("a1").unwrap())
                .unwrap_err()
                .reasons,
            vec![ERR_EXISTING_ANTI_AFFINITY]
        );
        assert!(c.interpod.filter(cache.node("a2").unwrap()).is_ok());
        let anti = json!({"affinity": term("podAntiAffinity", "zone")});
        let c = ctx_in(pod_labeled("q", json!({"app": "x"}), anti), &cache);
        assert_eq!(
            c.interpod
                .filter(cache.node("a2").unwrap())
                .unwrap_err()
                .reasons,
            vec![ERR_ANTI_AFFINITY]
        );
        assert!(c.interpod.filter(cache.node("b1").unwrap()).is_ok());
    }

    #[test]
    fn preferred_affinity_scores_the_domain() {
        let mut cache = cluster();
        cache.set_pod(pod_labeled(
            "db",
            json!({"app": "db"}),
            json!({"nodeName": "b1"}),
        ));
        let p = pod_labeled(
            "p",
            json!({}),
            json!({"affinity": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm":
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}}}),
        );
        let c = ctx_in(p, &cache);
        let nodes: Vec<&NodeInfo> = ["a1", "b1"]
            .iter()
            .map(|n| cache.node(n).unwrap())
            .collect();
        assert_eq!(score(&c.info, &nodes, &cache), Some(vec![0, 100]));
    }
}
