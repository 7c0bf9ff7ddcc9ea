//! The node-local plugins: NodeUnschedulable, NodeName, TaintToleration (filter and
//! PreferNoSchedule score), NodeAffinity (nodeSelector and required affinity; preferred
//! affinity score) and NodePorts.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::{Code, Plugin, PodContext, Status};
use crate::cache::NodeInfo;
use crate::labels;

pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";

/// Whether a toleration tolerates a taint (upstream's `ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The first taint with one of `effects` that no toleration tolerates.
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    effects: &[&str],
) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        effects.contains(&taint.effect.as_str()) && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

pub fn node_unschedulable(ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if ctx.tolerations.iter().any(|t| tolerates(t, &taint)) {
        return Ok(());
    }
    Err(Status::new(
        Plugin::NodeUnschedulable,
        Code::UnschedulableAndUnresolvable,
        ERR_UNSCHEDULABLE,
    ))
}

pub fn node_name(ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
    match ctx.info.node_name() {
        Some(n) if n != node.name => Err(Status::new(
            Plugin::NodeName,
            Code::UnschedulableAndUnresolvable,
            ERR_NODE_NAME,
        )),
        _ => Ok(()),
    }
}

pub fn taint_toleration(ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
    match untolerated(&node.taints, &ctx.tolerations, &["NoSchedule", "NoExecute"]) {
        None => Ok(()),
        Some(t) => Err(Status::new(
            Plugin::TaintToleration,
            Code::UnschedulableAndUnresolvable,
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            ),
        )),
    }
}

/// Whether the node matches the pod's nodeSelector and required node affinity.
pub fn matches_node_affinity(ctx: &PodContext, node: &NodeInfo) -> bool {
    for (k, v) in &ctx.node_selector {
        if node.labels.get(k) != Some(v) {
            return false;
        }
    }
    match (&ctx.required_node_affinity, &node.node) {
        (Some(sel), Some(n)) => labels::node_selector_matches(sel, n),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

pub fn node_affinity(ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
    if matches_node_affinity(ctx, node) {
        Ok(())
    } else {
        Err(Status::new(
            Plugin::NodeAffinity,
            Code::UnschedulableAndUnresolvable,
            ERR_NODE_AFFINITY,
        ))
    }
}

pub fn node_ports(ctx: &PodContext, node: &NodeInfo) -> Result<(), Status> {
    let conflict = ctx
        .info
        .host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
    if conflict {
        Err(Status::new(
            Plugin::NodePorts,
            Code::Unschedulable,
            ERR_NODE_PORTS,
        ))
    } else {
        Ok(())
    }
}

/// TaintToleration's raw score: PreferNoSchedule taints the pod does not tolerate
/// (normalized in reverse: fewer is better).
pub fn taint_score(ctx: &PodContext, node: &NodeInfo) -> i64 {
    let prefer: Vec<&Toleration> = ctx
        .tolerations
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .collect();
    node.taints
        .iter()
        .filter(|taint| taint.effect == "PreferNoSchedule")
        .filter(|taint| !prefer.iter().any(|t| tolerates(t, taint)))
        .count() as i64
}

/// NodeAffinity's raw score: the summed weights of the preferred terms the node matches.
pub fn node_affinity_score(ctx: &PodContext, node: &NodeInfo) -> i64 {
    let Some(n) = &node.node else {
        return 0;
    };
    ctx.preferred_node_affinity
        .iter()
        .filter(|p| p.weight != 0 && labels::term_matches(&p.preference, n))
        .map(|p| p.weight as i64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, node_info, pod};
    use serde_json::json;

    #[test]
    fn taints_and_tolerations() {
        let n = node_info(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "k", "value": "v", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"},
        ]}}));
        let plain = ctx(pod(json!({})));
        let err = taint_toleration(&plain, &n).unwrap_err();
        assert_eq!(err.reasons, vec!["node(s) had untolerated taint {k: v}"]);
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(taint_score(&plain, &n), 1);
        let tolerant = ctx(pod(json!({"tolerations": [
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
            {"operator": "Exists", "effect": "PreferNoSchedule"},
        ]})));
        assert!(taint_toleration(&tolerant, &n).is_ok());
        assert_eq!(taint_score(&tolerant, &n), 0);
        let wrong_value = ctx(pod(json!({"tolerations": [{"key": "k", "value": "x"}]})));
        assert!(taint_toleration(&wrong_value, &n).is_err());
    }

    #[test]
    fn unschedulable_nodes_and_node_name() {
        let n = node_info(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}));
        assert_eq!(
            node_unschedulable(&ctx(pod(json!({}))), &n)
                .unwrap_err()
                .reasons,
            vec![ERR_UNSCHEDULABLE]
        );
        let tolerant = ctx(pod(json!({"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]})));
        assert!(node_unschedulable(&tolerant, &n).is_ok());
        assert!(node_name(&ctx(pod(json!({"nodeName": "other"}))), &n).is_err());
        assert!(node_name(&ctx(pod(json!({"nodeName": "n"}))), &n).is_ok());
    }

    #[test]
    fn node_selector_and_affinity() {
        let n =
            node_info(json!({"metadata": {"name": "n", "labels": {"disk": "ssd", "zone": "a"}}}));
        assert!(node_affinity(&ctx(pod(json!({"nodeSelector": {"disk": "ssd"}}))), &n).is_ok());
        let err =
            node_affinity(&ctx(pod(json!({"nodeSelector": {"disk": "hdd"}}))), &n).unwrap_err();
        assert_eq!(err.reasons, vec![ERR_NODE_AFFINITY]);
        let aff = ctx(pod(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 7, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}],
        }}})));
        assert!(node_affinity(&aff, &n).is_err());
        assert_eq!(node_affinity_score(&aff, &n), 7);
    }

    #[test]
    fn host_ports() {
        let mut n = node_info(json!({"metadata": {"name": "n"}}));
        let p = json!({"containers": [{"name": "c", "image": "x",
            "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
        let c = ctx(pod(p.clone()));
        assert!(node_ports(&c, &n).is_ok());
        n.add_pod(c.info.clone());
        assert_eq!(
            node_ports(&ctx(pod(p)), &n).unwrap_err().reasons,
            vec![ERR_NODE_PORTS]
        );
    }
}
