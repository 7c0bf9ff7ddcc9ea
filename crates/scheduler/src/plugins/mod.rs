//! The filter and score plugins of upstream's default profile, named as upstream names
//! them. A scheduling cycle first builds a [`PodContext`] (upstream's PreFilter: parsed
//! tolerations and affinity, topology spread and inter-pod affinity counts over the whole
//! cluster, volume checks), then filters nodes in upstream's order, stopping at the first
//! plugin that rejects a node, then scores the feasible ones.

pub mod basic;
pub mod fit;
pub mod images;
pub mod interpod;
pub mod spread;
pub mod volumes;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{NodeSelector, PreferredSchedulingTerm, Toleration};

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::labels::Labels;

/// The plugins, in upstream's filter order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plugin {
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    VolumeBinding,
    PodTopologySpread,
    InterPodAffinity,
}

/// Why a node was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Removing pods (preemption) might help.
    Unschedulable,
    /// Preemption cannot help.
    UnschedulableAndUnresolvable,
}

/// A plugin's rejection of a node, with upstream's reason strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub plugin: Plugin,
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    pub fn new(plugin: Plugin, code: Code, reason: impl Into<String>) -> Status {
        Status {
            plugin,
            code,
            reasons: vec![reason.into()],
        }
    }
}

/// Everything the filters and scores need about the pod being scheduled, computed once
/// per cycle (upstream's PreFilter and PreScore state).
pub struct PodContext {
    pub info: Arc<PodInfo>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: Labels,
    pub required_node_affinity: Option<NodeSelector>,
    pub preferred_node_affinity: Vec<PreferredSchedulingTerm>,
    pub spread: spread::State,
    pub interpod: interpod::State,
    pub volumes: volumes::State,
    pub images: Vec<String>,
}

impl PodContext {
    /// PreFilter: `Err` when the pod cannot be scheduled on any node (with upstream's
    /// message for the whole cycle).
    pub fn new(
        info: Arc<PodInfo>,
        cache: &Cache,
        volumes: &volumes::Volumes,
    ) -> Result<PodContext, Status> {
        let volumes = volumes.pre_filter(&info)?;
        let mut ctx = PodContext::without_volumes(info, cache);
        ctx.volumes = volumes;
        Ok(ctx)
    }

    /// The context without VolumeBinding's checks (for preemption's report after a
    /// PreFilter rejection).
    pub fn without_volumes(info: Arc<PodInfo>, cache: &Cache) -> PodContext {
        let spec = info.pod.spec.clone().unwrap_or_default();
        let node_affinity = spec.affinity.as_ref().and_then(|a| a.node_affinity.clone());
        let mut ctx = PodContext {
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_node_affinity: node_affinity.as_ref().and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .clone()
            }),
            preferred_node_affinity: node_affinity
                .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
                .unwrap_or_default(),
            spread: spread::State::default(),
            interpod: interpod::State::default(),
            volumes: volumes::State::default(),
            images: spec
                .containers
                .iter()
                .filter_map(|c| c.image.as_deref())
                .map(crate::cache::normalized_image)
                .collect(),
            info,
        };
        ctx.spread = spread::State::pre_filter(&ctx, cache);
        ctx.interpod = interpod::State::pre_filter(&ctx.info, cache);
        ctx
    }
}

/// Runs the filters on one node in upstream's order; the first rejection wins.
/// `nominated` are the requests of higher-or-equal-priority pods nominated to the node.
pub fn filter(ctx: &PodContext, node: &NodeInfo, cache: &Cache) -> Result<(), Status> {
    basic::node_unschedulable(ctx, node)?;
    basic::node_name(ctx, node)?;
    basic::taint_toleration(ctx, node)?;
    basic::node_affinity(ctx, node)?;
    basic::node_ports(ctx, node)?;
    fit::filter(ctx, node, cache.nominated_on(&node.name))?;
    ctx.volumes.filter(node)?;
    ctx.spread.filter(ctx, node)?;
    ctx.interpod.filter(node)?;
    Ok(())
}

/// Upstream's default score weights.
pub const WEIGHT_TAINT_TOLERATION: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;
pub const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
pub const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
pub const WEIGHT_BALANCED_ALLOCATION: i64 = 1;
pub const WEIGHT_IMAGE_LOCALITY: i64 = 1;

/// The maximum score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// upstream's `DefaultNormalizeScore`: scales scores to 0..100 by the highest; `reverse`
/// turns high raw scores into low ones.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// Scores the feasible nodes with every score plugin and its weight; the totals.
pub fn score(ctx: &PodContext, nodes: &[&NodeInfo], cache: &Cache) -> Vec<i64> {
    let mut total = vec![0i64; nodes.len()];
    let mut add = |scores: Vec<i64>, weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    add(
        nodes.iter().map(|n| fit::least_allocated(ctx, n)).collect(),
        WEIGHT_NODE_RESOURCES_FIT,
    );
    add(
        nodes
            .iter()
            .map(|n| fit::balanced_allocation(ctx, n))
            .collect(),
        WEIGHT_BALANCED_ALLOCATION,
    );
    add(
        nodes.iter().map(|n| images::score(ctx, n, cache)).collect(),
        WEIGHT_IMAGE_LOCALITY,
    );
    let mut taints: Vec<i64> = nodes.iter().map(|n| basic::taint_score(ctx, n)).collect();
    default_normalize(&mut taints, true);
    add(taints, WEIGHT_TAINT_TOLERATION);
    if !ctx.preferred_node_affinity.is_empty() {
        let mut aff: Vec<i64> = nodes
            .iter()
            .map(|n| basic::node_affinity_score(ctx, n))
            .collect();
        default_normalize(&mut aff, false);
        add(aff, WEIGHT_NODE_AFFINITY);
    }
    if let Some(spread) = spread::score(ctx, nodes, cache) {
        add(spread, WEIGHT_POD_TOPOLOGY_SPREAD);
    }
    if let Some(interpod) = interpod::score(&ctx.info, nodes, cache) {
        add(interpod, WEIGHT_INTER_POD_AFFINITY);
    }
    total
}
