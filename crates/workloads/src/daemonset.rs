//! The DaemonSet controller: one pod per eligible node — the template's nodeSelector and
//! required node affinity match the node, and the pod tolerates the node's NoSchedule and
//! NoExecute taints (with the tolerations upstream adds to every DaemonSet pod). Pods are
//! created with a required node affinity to their node (`matchFields metadata.name`) for
//! the scheduler to bind; extra pods, pods on ineligible nodes and failed pods are deleted;
//! RollingUpdate replaces old pods within maxUnavailable (or surges new ones first with
//! maxSurge); OnDelete leaves them. Status: desiredNumberScheduled, currentNumberScheduled,
//! numberMisscheduled, numberReady, updatedNumberScheduled, numberAvailable,
//! numberUnavailable, observedGeneration.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Taint, Toleration,
};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_client::key_of;

use crate::Error;
use crate::context::{Ctx, Kind};
use crate::deployment::rolling::scaled_value;
use crate::history::{self, HASH_LABEL};
use crate::ownership::{self, Owner};
use crate::pods::{self, BURST_REPLICAS};
use rkube_client::events::{NORMAL, WARNING};

const COMPONENT: &str = "daemonset-controller";
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Whether `t` tolerates `taint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// The tolerations upstream adds to every DaemonSet pod.
pub fn add_daemon_tolerations(spec: &mut k8s_openapi::api::core::v1::PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let present = tols.iter().any(|t| {
            t.key.as_deref() == Some(key)
                && t.effect.as_deref() == Some(effect)
                && t.operator.as_deref() == Some("Exists")
        });
        if !present {
            tols.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        }
    }
}

fn requirement_ok(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let vals = r.values.clone().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| vals.contains(v)),
        "NotIn" => value.is_none_or(|v| !vals.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(b)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                vals.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" { v > b } else { v < b }
        }
        _ => false,
    }
}

/// Whether a pod from `template` should run on `node` (upstream's `NodeShouldRunDaemonPod`
/// predicates: node name, nodeSelector, required node affinity, taints/tolerations).
pub fn should_run(template: &PodTemplateSpec, node: &Node) -> bool {
    let Some(spec) = &template.spec else {
        return false;
    };
    let name = node.name_any();
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty())
        && n != name
    {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if spec
        .node_selector
        .iter()
        .flatten()
        .any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.clone());
    if let Some(terms) = terms {
        let fields: BTreeMap<String, String> = [("metadata.name".to_string(), name.clone())].into();
        let ok = terms.iter().any(|t| {
            t.match_expressions
                .iter()
                .flatten()
                .all(|r| requirement_ok(r, labels.get(&r.key)))
                && t.match_fields
                    .iter()
                    .flatten()
                    .all(|r| requirement_ok(r, fields.get(&r.key)))
        });
        if !ok {
            return false;
        }
    }
    let mut tpl_spec = spec.clone();
    add_daemon_tolerations(&mut tpl_spec);
    let tols = tpl_spec.tolerations.unwrap_or_default();
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|taint| tols.iter().any(|t| tolerates(t, taint)))
}

/// The node a daemon pod is for: its nodeName, or its affinity target while unscheduled.
pub fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In")
                .then(|| r.values.as_ref()?.first().cloned())
                .flatten()
        })
}

fn pod_for_node(ds: &DaemonSet, template: &PodTemplateSpec, hash: &str, node: &str) -> Pod {
    let ns = ds.namespace().unwrap_or_default();
    let mut pod = pods::from_template(
        template,
        &ns,
        format!("{}-", ds.name_any()),
        ownership::controller_ref(ds),
    );
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(HASH_LABEL.into(), hash.into());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.into(),
        ds.metadata.generation.unwrap_or(0).to_string(),
    );
    let spec = pod.spec.get_or_insert_with(Default::default);
    add_daemon_tolerations(spec);
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    pod
}

/// Syncs one DaemonSet.
pub async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Option<Duration>, Error> {
    let Some(ds) = ctx.daemonsets.get(&key) else {
        ctx.expectations(Kind::DaemonSet).delete(&key);
        return Ok(None);
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let spec = ds.spec.clone().unwrap_or_default();
    let ns = ds.namespace().unwrap_or_default();
    let name = ds.name_any();
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let recheck = || ownership::recheck_owner(&api, &name, &uid);
    let reference = ownership::controller_ref(ds.as_ref());
    let status = ds.status.clone().unwrap_or_default();
    let revs = history::sync(
        &ctx,
        &ns,
        &name,
        reference.clone(),
        &spec.selector,
        &spec.template,
        status.collision_count,
        recheck,
    )
    .await?;
    let hash = revs
        .update
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL).cloned())
        .unwrap_or_default();
    let owner = Owner {
        reference,
        selector: &spec.selector,
        deleting: false,
    };
    let owned = ownership::claim(&ctx.client, &ns, &owner, ctx.pods_in(&ns), recheck).await?;

    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in owned {
        if let Some(n) = target_node(&p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let mut nodes: Vec<Arc<Node>> = ctx.nodes.list();
    nodes.sort_by_key(|n| n.name_any());
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = ctx.now();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("OnDelete");
    let ru = strategy.rolling_update.clone().unwrap_or_default();

    let is_new =
        |p: &Pod| p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(&hash);
    let available = |p: &Pod| pods::availability(p, min_ready, now) == Ok(true);
    let mut create_on: Vec<String> = Vec::new();
    let mut delete: Vec<Arc<Pod>> = Vec::new();
    let mut st = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        collision_count: status.collision_count,
        conditions: status.conditions.clone(),
        ..Default::default()
    };
    let mut requeue = None;
    let desired: Vec<&Arc<Node>> = nodes
        .iter()
        .filter(|n| should_run(&spec.template, n))
        .collect();
    st.desired_number_scheduled = desired.len() as i32;
    // Per node: create missing, drop extras and failed pods, count status.
    let mut old_on: Vec<(String, Arc<Pod>, bool)> = Vec::new(); // (node, old pod, node has a new pod)
    let mut unavailable_nodes = 0;
    for node in &nodes {
        let nname = node.name_any();
        let mut here: Vec<Arc<Pod>> = by_node.remove(&nname).unwrap_or_default();
        let run = desired.iter().any(|d| d.name_any() == nname);
        if !run {
            if !here.is_empty() {
                st.number_misscheduled += 1;
            }
            delete.extend(
                here.into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none()),
            );
            continue;
        }
        let (failed, live): (Vec<_>, Vec<_>) =
            here.drain(..).partition(|p| pods::phase(p) == "Failed");
        delete.extend(
            failed
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none()),
        );
        let mut live: Vec<Arc<Pod>> = live
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if live.is_empty() {
            create_on.push(nname.clone());
            unavailable_nodes += 1;
            continue;
        }
        st.current_number_scheduled += 1;
        live.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        let new_pod = live.iter().find(|p| is_new(p)).cloned();
        let old_pod = live.iter().find(|p| !is_new(p)).cloned();
        // Keep one pod (two while a surge replaces an old one).
        let keep: Vec<Arc<Pod>> = match (&new_pod, &old_pod) {
            (Some(n), Some(o)) if !available(n) => vec![n.clone(), o.clone()],
            (Some(n), _) => vec![n.clone()],
            (None, Some(o)) => vec![o.clone()],
            (None, None) => vec![],
        };
        for p in &live {
            if !keep.iter().any(|k| k.metadata.uid == p.metadata.uid) {
                delete.push(p.clone());
            }
        }
        let shown = new_pod.clone().or(old_pod.clone());
        if let Some(p) = &shown {
            if pods::is_ready(p) {
                st.number_ready += 1;
            }
            match pods::availability(p, min_ready, now) {
                Ok(true) => st.number_available = Some(st.number_available.unwrap_or(0) + 1),
                Ok(false) => unavailable_nodes += 1,
                Err(left) => {
                    unavailable_nodes += 1;
                    requeue = Some(left);
                }
            }
        }
        if new_pod.is_some() {
            st.updated_number_scheduled = Some(st.updated_number_scheduled.unwrap_or(0) + 1);
        }
        if let (Some(o), true) = (
            &old_pod,
            keep.iter().any(|k| {
                old_pod
                    .as_ref()
                    .is_some_and(|o| o.metadata.uid == k.metadata.uid)
            }),
        ) {
            old_on.push((nname.clone(), o.clone(), new_pod.is_some()));
        }
    }
    // Pods for nodes that no longer exist.
    for (_, ps) in by_node {
        delete.extend(
            ps.into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none()),
        );
    }
    // Rolling update.
    let exp = ctx.expectations(Kind::DaemonSet);
    if rolling && exp.satisfied(&key) {
        let desired_n = st.desired_number_scheduled;
        let max_surge = ru
            .max_surge
            .as_ref()
            .map(|v| scaled_value(v, desired_n, true))
            .transpose()?
            .unwrap_or(0);
        let mut max_unavailable = ru
            .max_unavailable
            .as_ref()
            .map(|v| scaled_value(v, desired_n, true))
            .transpose()?
            .unwrap_or(1);
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        if max_surge == 0 {
            // Delete old pods while at most maxUnavailable nodes lack an available pod.
            let mut budget = max_unavailable - unavailable_nodes;
            // Unavailable old pods go first: they cost nothing.
            old_on.sort_by_key(|(_, p, _)| available(p));
            for (_, p, _) in &old_on {
                if !available(p) {
                    delete.push(p.clone());
                } else if budget > 0 {
                    delete.push(p.clone());
                    budget -= 1;
                }
            }
        } else {
            // Surge: create new pods beside old ones, at most maxSurge at a time.
            let surging = old_on.iter().filter(|(_, _, has_new)| *has_new).count() as i32;
            let mut budget = max_surge - surging;
            for (node, p, has_new) in &old_on {
                if *has_new {
                    continue;
                }
                if !available(p) {
                    delete.push(p.clone());
                } else if budget > 0 {
                    create_on.push(node.clone());
                    budget -= 1;
                }
            }
        }
    }
    st.number_unavailable =
        Some((st.desired_number_scheduled - st.number_available.unwrap_or(0)).max(0));
    for f in [
        &mut st.number_available,
        &mut st.number_unavailable,
        &mut st.updated_number_scheduled,
    ] {
        if *f == Some(0) {
            *f = None;
        }
    }
    let mut result = Ok(());
    if exp.satisfied(&key) {
        delete.sort_by(|a, b| a.metadata.uid.cmp(&b.metadata.uid));
        delete.dedup_by(|a, b| a.metadata.uid == b.metadata.uid);
        create_on.truncate(BURST_REPLICAS);
        delete.truncate(BURST_REPLICAS);
        result = manage(&ctx, &ds, &key, &hash, &spec.template, create_on, delete).await;
    }
    if serde_json::to_value(&st).ok() != serde_json::to_value(&status).ok() {
        let mut copy = (*ds).clone();
        copy.status = Some(st);
        api.replace_status(&name, &PostParams::default(), &copy)
            .await?;
    }
    let live = [revs.update.name_any()];
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    history::truncate(
        &ctx,
        &ns,
        &revs.all,
        &live,
        spec.revision_history_limit.unwrap_or(10),
    )
    .await?;
    result?;
    Ok(requeue)
}

async fn manage(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    hash: &str,
    template: &PodTemplateSpec,
    create_on: Vec<String>,
    delete: Vec<Arc<Pod>>,
) -> Result<(), Error> {
    let exp = ctx.expectations(Kind::DaemonSet);
    exp.expect(
        key,
        create_on.len(),
        delete.iter().map(|p| key_of(p.as_ref())),
    );
    let ns = ds.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let (_, err, skipped) = pods::slow_start(create_on.len(), |i| {
        let pod = pod_for_node(ds, template, hash, &create_on[i]);
        let api = &api;
        async move {
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    ctx.recorder.event(
                        COMPONENT,
                        ds,
                        NORMAL,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                    Ok(())
                }
                Err(e) => {
                    exp.creation_observed(key);
                    ctx.recorder.event(
                        COMPONENT,
                        ds,
                        WARNING,
                        "FailedCreate",
                        format!("Error creating: {}", crate::api_message(&e)),
                    );
                    Err(e)
                }
            }
        }
    })
    .await;
    for _ in 0..skipped {
        exp.creation_observed(key);
    }
    let mut first_err = err.map(Error::from);
    for p in delete {
        let name = p.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => ctx.recorder.event(
                COMPONENT,
                ds,
                NORMAL,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            ),
            Err(e) => {
                exp.deletion_observed(key, &key_of(p.as_ref()));
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    ctx.recorder.event(
                        COMPONENT,
                        ds,
                        WARNING,
                        "FailedDelete",
                        format!("Error deleting: {}", crate::api_message(&e)),
                    );
                    first_err.get_or_insert(e.into());
                }
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": labels},
            "spec": {"taints": taints},
        }))
        .unwrap()
    }

    fn template(spec: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(json!({"spec": spec})).unwrap()
    }

    #[test]
    fn eligibility_by_selector_affinity_and_taints() {
        let plain = template(json!({"containers": []}));
        assert!(should_run(&plain, &node(json!({}), json!([]))));
        // Automatic tolerations cover the node condition taints.
        assert!(should_run(
            &plain,
            &node(
                json!({}),
                json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
            )
        ));
        assert!(should_run(
            &plain,
            &node(
                json!({}),
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
            )
        ));
        // A user taint needs a toleration; PreferNoSchedule does not.
        let tainted = node(
            json!({}),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        );
        assert!(!should_run(&plain, &tainted));
        assert!(should_run(
            &plain,
            &node(
                json!({}),
                json!([{"key": "x", "effect": "PreferNoSchedule"}])
            )
        ));
        let tolerant = template(
            json!({"containers": [], "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}),
        );
        assert!(should_run(&tolerant, &tainted));
        let selective = template(json!({"containers": [], "nodeSelector": {"disk": "ssd"}}));
        assert!(!should_run(&selective, &node(json!({}), json!([]))));
        assert!(should_run(
            &selective,
            &node(json!({"disk": "ssd"}), json!([]))
        ));
        let affine = template(
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
        );
        assert!(should_run(&affine, &node(json!({"zone": "a"}), json!([]))));
        assert!(!should_run(&affine, &node(json!({"zone": "b"}), json!([]))));
    }

    #[test]
    fn pods_target_their_node() {
        let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "u", "generation": 3}})).unwrap();
        let p = pod_for_node(&ds, &template(json!({"containers": []})), "h", "n7");
        assert_eq!(target_node(&p).as_deref(), Some("n7"));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("agent-"));
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()[TEMPLATE_GENERATION_LABEL],
            "3"
        );
        assert_eq!(
            p.spec.as_ref().unwrap().tolerations.as_ref().unwrap().len(),
            6
        );
    }
}
