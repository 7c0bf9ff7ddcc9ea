//! One scheduling decision over the cache: the nominated node first (a preemptor's), then
//! filters over the nodes from a rotating start until enough feasible nodes are found
//! (upstream's adaptive `percentageOfNodesToScore`), scores, and the highest-scoring
//! node with ties broken at random. A failure is a [`Diagnosis`] whose message has
//! upstream's form.

use std::collections::BTreeMap;

use crate::cache::{Cache, NodeInfo};
use crate::plugins::{self, Code, PodContext, Status};

/// Below this many nodes every node is scored.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The floor of the adaptive percentage.
pub const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to find before scoring (upstream's `numFeasibleNodesToFind`
/// with the default adaptive percentage: 50% minus one per 125 nodes, at least 5%, at
/// least 100 nodes).
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => (50usize.saturating_sub(all / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why a pod fits nowhere.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    pub num_nodes: usize,
    /// A PreFilter rejection (applies to every node).
    pub prefilter: Option<Status>,
    /// Each rejected node's status.
    pub statuses: Vec<(String, Status)>,
    /// PostFilter's (preemption's) message.
    pub postfilter: Option<String>,
}

/// upstream's reasons histogram: "2 Insufficient cpu, 1 node(s) ..." sorted as strings.
pub fn histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    parts.join(", ")
}

impl Diagnosis {
    /// upstream's `FitError.Error()`:
    /// `0/N nodes are available: <PreFilterMsg or histogram>. <PostFilterMsg>`.
    pub fn message(&self) -> String {
        if self.num_nodes == 0 && self.prefilter.is_none() {
            return "no nodes available to schedule pods".to_string();
        }
        let mut msg = format!("0/{} nodes are available:", self.num_nodes);
        if let Some(pre) = &self.prefilter {
            msg.push_str(&format!(" {}.", pre.reasons.join(", ")));
        } else {
            let h = histogram(
                self.statuses
                    .iter()
                    .flat_map(|(_, s)| s.reasons.iter().map(String::as_str)),
            );
            if !h.is_empty() {
                msg.push_str(&format!(" {h}."));
            }
        }
        if let Some(post) = &self.postfilter {
            msg.push(' ');
            msg.push_str(post);
        }
        msg
    }

    /// The status of a node (the PreFilter rejection applies to all).
    pub fn status_of(&self, node: &str) -> Option<&Status> {
        if let Some(pre) = &self.prefilter {
            return Some(pre);
        }
        self.statuses
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, s)| s)
    }

    /// Whether only preemption could help somewhere (some node is merely Unschedulable).
    pub fn preemption_might_help(&self) -> bool {
        self.prefilter.is_none()
            && self
                .statuses
                .iter()
                .any(|(_, s)| s.code == Code::Unschedulable)
    }
}

/// The rotating node walk and its configuration.
#[derive(Debug, Default)]
pub struct Algorithm {
    next_start: usize,
    /// `percentageOfNodesToScore`; `None` for the adaptive default.
    pub percentage: Option<u32>,
}

impl Algorithm {
    pub fn new(percentage: Option<u32>) -> Algorithm {
        Algorithm {
            next_start: 0,
            percentage,
        }
    }

    /// Picks a node for the pod, or says why none fits.
    pub fn schedule(&mut self, ctx: &PodContext, cache: &Cache) -> Result<String, Diagnosis> {
        let names = cache.node_names();
        let all = names.len();
        if all == 0 {
            return Err(Diagnosis::default());
        }
        // A preemptor's nominated node is tried first and taken if it fits.
        if let Some(nominated) = ctx
            .info
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
            && let Some(node) = cache.node(nominated)
            && plugins::filter(ctx, node, cache).is_ok()
        {
            return Ok(nominated.to_string());
        }
        let want = num_feasible_nodes_to_find(self.percentage, all);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(all));
        let mut statuses = Vec::new();
        let start = self.next_start % all;
        let mut processed = 0;
        for i in 0..all {
            let name = &names[(start + i) % all];
            processed += 1;
            let Some(node) = cache.node(name) else {
                continue;
            };
            match plugins::filter(ctx, node, cache) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(s) => statuses.push((name.clone(), s)),
            }
        }
        self.next_start = (start + processed) % all;
        if feasible.is_empty() {
            return Err(Diagnosis {
                num_nodes: all,
                statuses,
                ..Default::default()
            });
        }
        if feasible.len() == 1 {
            return Ok(feasible[0].name.clone());
        }
        let scores = plugins::score(ctx, &feasible, cache);
        Ok(select_host(&feasible, &scores))
    }
}

/// The highest score; ties are broken uniformly at random (reservoir sampling).
fn select_host(nodes: &[&NodeInfo], scores: &[i64]) -> String {
    let mut best = 0;
    let mut ties = 1u32;
    for i in 1..nodes.len() {
        if scores[i] > scores[best] {
            best = i;
            ties = 1;
        } else if scores[i] == scores[best] {
            ties += 1;
            if rand::random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Plugin;

    #[test]
    fn adaptive_percentage_of_nodes() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 200), 100);
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(None, 10000), 500);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
    }

    #[test]
    fn message_has_upstreams_form() {
        let st = |p, code, r: &str| Status::new(p, code, r);
        let d = Diagnosis {
            num_nodes: 3,
            statuses: vec![
                ("a".into(), st(Plugin::TaintToleration, Code::UnschedulableAndUnresolvable,
                    "node(s) had untolerated taint {k: v}")),
                ("b".into(), st(Plugin::NodeResourcesFit, Code::Unschedulable, "Insufficient cpu")),
                ("c".into(), st(Plugin::NodeResourcesFit, Code::Unschedulable, "Insufficient cpu")),
            ],
            postfilter: Some(
                "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
                    .into(),
            ),
            ..Default::default()
        };
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu. \
             preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        );
        let pre = Diagnosis {
            num_nodes: 2,
            prefilter: Some(st(
                Plugin::VolumeBinding,
                Code::UnschedulableAndUnresolvable,
                "pod has unbound immediate PersistentVolumeClaims",
            )),
            ..Default::default()
        };
        assert_eq!(
            pre.message(),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
        assert_eq!(
            Diagnosis::default().message(),
            "no nodes available to schedule pods"
        );
    }
}
