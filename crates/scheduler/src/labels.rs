//! Matching labels and fields as the scheduler needs it: `metav1.LabelSelector`s (pod
//! affinity terms, topology spread constraints) and node selector terms (nodeSelector,
//! node affinity, PersistentVolume node affinity).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

/// Whether a `metav1.LabelSelector` matches `labels`. An empty selector matches
/// everything; an unknown operator matches nothing (the API server rejects those).
pub fn selector_matches(sel: &LabelSelector, labels: &Labels) -> bool {
    if let Some(ml) = &sel.match_labels {
        for (k, v) in ml {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let got = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        let ok = match e.operator.as_str() {
            "In" => got.is_some_and(|v| values.contains(v)),
            "NotIn" => got.is_none_or(|v| !values.contains(v)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector is a nil-equivalent that matches nothing (upstream converts a nil
/// `*LabelSelector` to `labels.Nothing()`).
pub fn selector_or_nothing(sel: Option<&LabelSelector>, labels: &Labels) -> bool {
    sel.is_some_and(|s| selector_matches(s, labels))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value, values.first()) else {
                return false;
            };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether one node selector term matches (its expressions and fields all match; a term
/// with neither matches nothing).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    for e in exprs {
        let v = labels.and_then(|l| l.get(&e.key)).map(String::as_str);
        if !requirement_matches(e, v) {
            return false;
        }
    }
    for f in fields {
        let v = match f.key.as_str() {
            "metadata.name" => node.metadata.name.as_deref(),
            _ => return false,
        };
        if !requirement_matches(f, v) {
            return false;
        }
    }
    true
}

/// Whether a node selector (terms ORed) matches; no terms match nothing.
pub fn node_selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: serde_json::Value) -> Labels {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        assert!(selector_matches(
            &sel,
            &labels(json!({"app": "web", "tier": "b"}))
        ));
        assert!(!selector_matches(
            &sel,
            &labels(json!({"app": "web", "tier": "c"}))
        ));
        assert!(!selector_matches(
            &sel,
            &labels(json!({"app": "web", "tier": "a", "canary": "1"}))
        ));
        assert!(selector_matches(&LabelSelector::default(), &Labels::new()));
        assert!(!selector_or_nothing(None, &Labels::new()));
    }

    #[test]
    fn node_selector_terms() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"zone": "z1", "cores": "8"}},
        }))
        .unwrap();
        let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}],
             "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
        ]}))
        .unwrap();
        assert!(node_selector_matches(&sel, &node));
        let none: NodeSelector =
            serde_json::from_value(json!({"nodeSelectorTerms": [{}]})).unwrap();
        assert!(!node_selector_matches(&none, &node));
    }
}
