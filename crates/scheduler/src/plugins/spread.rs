//! PodTopologySpread: `topologySpreadConstraints` with `DoNotSchedule` filter nodes whose
//! domain would exceed `maxSkew` over the least-loaded eligible domain (0 when fewer than
//! `minDomains` domains exist); `ScheduleAnyway` ones score nodes by the matching pods in
//! their domain. Node inclusion follows `nodeAffinityPolicy` (default Honor) and
//! `nodeTaintsPolicy` (default Ignore); `matchLabelKeys` narrow the selector to the pod's
//! own values. (Upstream's cluster-level default constraints are not applied.)

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{Code, MAX_NODE_SCORE, Plugin, PodContext, Status, basic};
use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::labels::selector_matches;

pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

#[derive(Clone, Debug)]
pub struct Constraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub selector: LabelSelector,
    pub min_domains: usize,
    pub honor_affinity: bool,
    pub honor_taints: bool,
}

/// PreFilter state: the constraints and, for the hard ones, matching pods per domain.
#[derive(Default)]
pub struct State {
    hard: Vec<Constraint>,
    soft: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    min: Vec<i64>,
    self_match: Vec<bool>,
}

fn constraints(info: &PodInfo) -> (Vec<Constraint>, Vec<Constraint>) {
    let (mut hard, mut soft) = (Vec::new(), Vec::new());
    let list = info
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref());
    for c in list.into_iter().flatten() {
        let mut selector = c.label_selector.clone().unwrap_or_default();
        for key in c.match_label_keys.iter().flatten() {
            if let Some(v) = info.labels.get(key) {
                selector
                    .match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: key.clone(),
                        operator: "In".into(),
                        values: Some(vec![v.clone()]),
                    });
            }
        }
        let nothing = c.label_selector.is_none();
        let constraint = Constraint {
            max_skew: c.max_skew as i64,
            topology_key: c.topology_key.clone(),
            selector: if nothing {
                // A nil selector matches nothing.
                LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "".into(),
                        operator: "Invalid".into(),
                        values: None,
                    }]),
                    ..Default::default()
                }
            } else {
                selector
            },
            min_domains: c.min_domains.unwrap_or(1).max(1) as usize,
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        };
        if c.when_unsatisfiable == "DoNotSchedule" {
            hard.push(constraint);
        } else {
            soft.push(constraint);
        }
    }
    (hard, soft)
}

fn has_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.topology_key))
}

fn eligible(ctx: &PodContext, node: &NodeInfo, c: &Constraint) -> bool {
    if c.honor_affinity && !basic::matches_node_affinity(ctx, node) {
        return false;
    }
    if c.honor_taints
        && basic::untolerated(&node.taints, &ctx.tolerations, &["NoSchedule", "NoExecute"])
            .is_some()
    {
        return false;
    }
    true
}

fn count_matching(node: &NodeInfo, ns: &str, sel: &LabelSelector) -> i64 {
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == ns && selector_matches(sel, &p.labels))
        .count() as i64
}

impl State {
    pub fn pre_filter(ctx: &PodContext, cache: &Cache) -> State {
        let (hard, soft) = constraints(&ctx.info);
        let mut state = State {
            counts: vec![HashMap::new(); hard.len()],
            self_match: hard
                .iter()
                .map(|c| selector_matches(&c.selector, &ctx.info.labels))
                .collect(),
            min: vec![0; hard.len()],
            hard,
            soft,
        };
        if state.hard.is_empty() {
            return state;
        }
        for node in cache.nodes() {
            if !has_keys(node, &state.hard) {
                continue;
            }
            for (i, c) in state.hard.iter().enumerate() {
                if !eligible(ctx, node, c) {
                    continue;
                }
                let value = node.labels[&c.topology_key].clone();
                *state.counts[i].entry(value).or_default() +=
                    count_matching(node, &ctx.info.namespace, &c.selector);
            }
        }
        for (i, c) in state.hard.iter().enumerate() {
            let counts = &state.counts[i];
            state.min[i] = if counts.len() < c.min_domains {
                0
            } else {
                counts.values().copied().min().unwrap_or(0)
            };
        }
        state
    }

    pub fn filter(&self, _ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
        for (i, c) in self.hard.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Err(Status::new(
                    Plugin::PodTopologySpread,
                    Code::UnschedulableAndUnresolvable,
                    ERR_MISSING_LABEL,
                ));
            };
            let matching = self.counts[i].get(value).copied().unwrap_or(0);
            let skew = matching + self.self_match[i] as i64 - self.min[i];
            if skew > c.max_skew {
                return Err(Status::new(
                    Plugin::PodTopologySpread,
                    Code::Unschedulable,
                    ERR_CONSTRAINTS,
                ));
            }
        }
        Ok(())
    }
}

/// The ScheduleAnyway score, normalized; `None` when the pod has no such constraints.
pub fn score(ctx: &PodContext, nodes: &[&NodeInfo], cache: &Cache) -> Option<Vec<i64>> {
    let soft = &ctx.spread.soft;
    if soft.is_empty() {
        return None;
    }
    let ignored: Vec<bool> = nodes.iter().map(|n| !has_keys(n, soft)).collect();
    let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); soft.len()];
    let mut weights = Vec::with_capacity(soft.len());
    for (i, c) in soft.iter().enumerate() {
        let domains: HashSet<&String> = nodes
            .iter()
            .zip(&ignored)
            .filter(|(_, ig)| !**ig)
            .filter_map(|(n, _)| n.labels.get(&c.topology_key))
            .collect();
        weights.push(((domains.len() + 2) as f64).ln());
        let per_node = c.topology_key == "kubernetes.io/hostname";
        let source: Vec<&NodeInfo> = if per_node {
            nodes.to_vec()
        } else {
            cache.nodes().collect()
        };
        for n in source {
            if !has_keys(n, soft) || !eligible(ctx, n, c) {
                continue;
            }
            let value = n.labels[&c.topology_key].clone();
            *counts[i].entry(value).or_default() +=
                count_matching(n, &ctx.info.namespace, &c.selector);
        }
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            let mut s = 0.0;
            for (i, c) in soft.iter().enumerate() {
                if let Some(v) = n.labels.get(&c.topology_key) {
                    let cnt = counts[i].get(v).copied().unwrap_or(0) as f64;
                    s += cnt * weights[i] + (c.max_skew - 1) as f64;
                }
            }
            s.round() as i64
        })
        .collect();
    let considered = raw
        .iter()
        .zip(&ignored)
        .filter(|(_, ig)| !**ig)
        .map(|(s, _)| *s);
    let max = considered.clone().max().unwrap_or(0);
    let min = considered.min().unwrap_or(0);
    Some(
        raw.iter()
            .zip(&ignored)
            .map(|(&s, &ig)| {
                if ig {
                    0
                } else if max == 0 {
                    MAX_NODE_SCORE
                } else {
                    MAX_NODE_SCORE * (max + min - s) / max
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
    use std::sync::Arc;

    fn cluster() -> Cache {
        let mut cache = Cache::new();
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("nolabel", "")] {
            let mut labels = json!({"kubernetes.io/hostname": name});
            if !zone.is_empty() {
                labels["zone"] = json!(zone);
            }
            cache.set_node(Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                    .unwrap(),
            ));
        }
        cache
    }

    fn spread_pod(name: &str, node: &str, when: &str) -> Arc<k8s_openapi::api::core::v1::Pod> {
        pod_labeled(
            name,
            json!({"app": "web"}),
            json!({"nodeName": node, "topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        )
    }

    #[test]
    fn do_not_schedule_keeps_skew() {
        let mut cache = cluster();
        cache.set_pod(spread_pod("x", "a1", "DoNotSchedule"));
        let c = ctx_in(spread_pod("new", "", "DoNotSchedule"), &cache);
        assert!(c.spread.filter(&c, cache.node("b1").unwrap()).is_ok());
        // zone a has 1, b has 0: one more in a gives skew 2.
        let err = c.spread.filter(&c, cache.node("a2").unwrap()).unwrap_err();
        assert_eq!(err.reasons, vec![ERR_CONSTRAINTS]);
        let err = c
            .spread
            .filter(&c, cache.node("nolabel").unwrap())
            .unwrap_err();
        assert_eq!(err.reasons, vec![ERR_MISSING_LABEL]);
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
    }

    #[test]
    fn min_domains_counts_missing_domains_as_zero() {
        let mut cache = cluster();
        cache.set_pod(spread_pod("x", "a1", "DoNotSchedule"));
        cache.set_pod(spread_pod("y", "b1", "DoNotSchedule"));
        let p = pod_labeled(
            "new",
            json!({"app": "web"}),
            json!({"topologySpreadConstraints": [{
                "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "minDomains": 3, "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        );
        let c = ctx_in(p, &cache);
        // Only 2 of 3 domains exist: the global minimum is 0, so 1+1-0 > 1 everywhere.
        assert!(c.spread.filter(&c, cache.node("a1").unwrap()).is_err());
        assert!(c.spread.filter(&c, cache.node("b1").unwrap()).is_err());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let mut cache = cluster();
        cache.set_pod(spread_pod("x", "a1", "ScheduleAnyway"));
        let c = ctx_in(spread_pod("new", "", "ScheduleAnyway"), &cache);
        let nodes: Vec<&NodeInfo> = ["a2", "b1"]
            .iter()
            .map(|n| cache.node(n).unwrap())
            .collect();
        let s = score(&c, &nodes, &cache).unwrap();
        assert!(s[1] > s[0], "{s:?}");
    }
}
