//! The StatefulSet controller: pods with stable identities `<set>-<ordinal>` (hostname and
//! the service's subdomain, labels `statefulset.kubernetes.io/pod-name` and
//! `apps.kubernetes.io/pod-index`), one PVC per volumeClaimTemplate and pod
//! (`<claim>-<set>-<ordinal>`), created in order and each only once
//! its predecessors are Running and Ready (OrderedReady) or all at once (Parallel); scale
//! down from the highest ordinal; RollingUpdate replaces pods from the highest ordinal down
//! to the partition one at a time, OnDelete only recreates pods users delete; revisions are
//! ControllerRevisions and status carries currentRevision/updateRevision and the counts.
//!
//! `persistentVolumeClaimRetentionPolicy` is carried out as upstream does, through the
//! claims' ownerReferences and the garbage collector: with `whenDeleted: Delete` each claim
//! is owned by the set; with `whenScaled: Delete` the claims of a pod being scaled away
//! (ordinal outside the replica range) are owned by that pod — before it is deleted — and
//! no longer by the set. `Retain` removes the respective reference. Claims controlled by
//! another object are left alone. A pod whose claim still holds a reference to an earlier
//! pod of its name (about to be collected) waits until that claim is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use crate::context::Ctx;
use crate::history::{self, HASH_LABEL};
use crate::ownership::{self, Owner};
use crate::{Error, pods};
use rkube_client::events::{NORMAL, WARNING};

const COMPONENT: &str = "statefulset-controller";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of `pod` if it is named `<set>-<n>`.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

fn revision_of(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(HASH_LABEL)
        .map(String::as_str)
}

fn running_and_ready(p: &Pod) -> bool {
    pods::phase(p) == "Running" && pods::is_ready(p)
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// The pod for `ordinal` from `template` (a revision's).
fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ord: i32) -> Pod {
    let name = format!("{}-{ord}", set.name_any());
    let ns = set.namespace().unwrap_or_default();
    let mut pod = pods::from_template(template, &ns, String::new(), ownership::controller_ref(set));
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
    labels.insert(HASH_LABEL.into(), revision.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name.clone());
    if let Some(svc) = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty())
    {
        spec.subdomain = Some(svc);
    }
    for claim in set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default()
    {
        let cname = claim.metadata.name.clone().unwrap_or_default();
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != cname);
        volumes.push(Volume {
            name: cname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{cname}-{name}"),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    pod
}

/// Whether the retention policy says Delete (whenDeleted, whenScaled).
fn retention(set: &StatefulSet) -> (bool, bool) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    (
        delete(p.and_then(|p| p.when_deleted.as_ref())),
        delete(p.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// A plain (non-controller) ownerReference, as upstream sets on claims.
fn plain_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The ownerReferences `claim` must have under the set's retention policy for `pod`
/// (upstream's `updateClaimOwnerRefForSetAndPod`), or `None` if they are right already or
/// the claim is controlled by something else.
pub fn claim_owners(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let refs = claim.metadata.owner_references.clone().unwrap_or_default();
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    if refs
        .iter()
        .any(|r| r.controller == Some(true) && r.uid != set_uid && r.uid != pod_uid)
    {
        return None;
    }
    let (when_deleted, when_scaled) = retention(set);
    let want_set = when_deleted && !(when_scaled && scaled_down);
    let want_pod = when_scaled && scaled_down;
    let mut out = refs.clone();
    for (want, uid, r) in [
        (
            want_set,
            &set_uid,
            plain_ref("apps/v1", "StatefulSet", &set.metadata),
        ),
        (want_pod, &pod_uid, plain_ref("v1", "Pod", &pod.metadata)),
    ] {
        let has = out.iter().any(|o| o.uid == *uid);
        if want && !has {
            out.push(r);
        } else if !want && has {
            out.retain(|o| o.uid != *uid);
        }
    }
    (out != refs).then_some(out)
}

/// A reference to a Pod named `pod` on a claim about to be created for a new pod of that
/// name: left from an earlier pod, so the garbage collector is deleting the claim.
fn stale_pod_ref(claim: &PersistentVolumeClaim, pod: &str) -> bool {
    claim
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.kind == "Pod" && r.name == pod)
}

struct Sync<'a> {
    ctx: &'a Ctx,
    set: Arc<StatefulSet>,
    ns: String,
    name: String,
}

impl Sync<'_> {
    fn event(&self, type_: &str, reason: &str, message: String) {
        self.ctx
            .recorder
            .event(COMPONENT, self.set.as_ref(), type_, reason, message);
    }

    /// Brings the ownerReferences of `pod`'s claims in line with the retention policy
    /// (`scaled_down`: the pod's ordinal is outside the replica range).
    async fn fix_claims(&self, pod: &Pod, scaled_down: bool) -> Result<(), Error> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let templates = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.clone())
            .unwrap_or_default();
        for t in templates {
            let cname = format!(
                "{}-{}",
                t.metadata.name.clone().unwrap_or_default(),
                pod.name_any()
            );
            let cached = self.ctx.claims.get(&format!("{}/{cname}", self.ns));
            let claim = match cached {
                Some(c) => (*c).clone(),
                // A pod about to be deleted must not lose its claim's reference to a cache
                // that has not seen the claim yet.
                None if scaled_down => match api.get_opt(&cname).await? {
                    Some(c) => c,
                    None => continue,
                },
                None => continue,
            };
            let Some(owners) = claim_owners(&claim, &self.set, pod, scaled_down) else {
                continue;
            };
            let patch = serde_json::json!({"metadata": {
                "ownerReferences": owners,
                "resourceVersion": claim.metadata.resource_version,
            }});
            match api
                .patch(&cname, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn create_claims(&self, pod: &str) -> Result<(), Error> {
        let spec = self.set.spec.clone().unwrap_or_default();
        let (delete_with_set, _) = retention(&self.set);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        for t in spec.volume_claim_templates.unwrap_or_default() {
            let cname = format!("{}-{pod}", t.metadata.name.clone().unwrap_or_default());
            if let Some(existing) = self.ctx.claims.get(&format!("{}/{cname}", self.ns)) {
                if stale_pod_ref(&existing, pod) {
                    return Err(Error::Invalid(format!(
                        "claim {cname} still refers to an earlier pod {pod}; waiting for it to be deleted"
                    )));
                }
                continue;
            }
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
            let owners = delete_with_set
                .then(|| vec![plain_ref("apps/v1", "StatefulSet", &self.set.metadata)]);
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(cname.clone()),
                    namespace: Some(self.ns.clone()),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: owners,
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.event(
                    NORMAL,
                    "SuccessfulCreate",
                    format!(
                        "create Claim {cname} Pod {pod} in StatefulSet {} success",
                        self.name
                    ),
                ),
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => {
                    self.event(
                        WARNING,
                        "FailedCreate",
                        format!(
                            "create Claim {cname} for Pod {pod} in StatefulSet {} failed error: {}",
                            self.name,
                            crate::api_message(&e)
                        ),
                    );
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    async fn create_pod(&self, pod: &Pod) -> Result<(), Error> {
        let pname = pod.name_any();
        self.create_claims(&pname).await?;
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match api.create(&PostParams::default(), pod).await {
            Ok(_) => {
                self.event(
                    NORMAL,
                    "SuccessfulCreate",
                    format!("create Pod {pname} in StatefulSet {} successful", self.name),
                );
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => {
                self.event(
                    WARNING,
                    "FailedCreate",
                    format!(
                        "create Pod {pname} in StatefulSet {} failed error: {}",
                        self.name,
                        crate::api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<(), Error> {
        let pname = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match api.delete(&pname, &DeleteParams::default()).await {
            Ok(_) => {
                self.event(
                    NORMAL,
                    "SuccessfulDelete",
                    format!("delete Pod {pname} in StatefulSet {} successful", self.name),
                );
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => {
                self.event(
                    WARNING,
                    "FailedDelete",
                    format!(
                        "delete Pod {pname} in StatefulSet {} failed error: {}",
                        self.name,
                        crate::api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }
}

/// Syncs one StatefulSet.
pub async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Option<Duration>, Error> {
    let Some(set) = ctx.statefulsets.get(&key) else {
        return Ok(None);
    };
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let spec = set.spec.clone().unwrap_or_default();
    let s = Sync {
        ctx: &ctx,
        ns: set.namespace().unwrap_or_default(),
        name: set.name_any(),
        set: set.clone(),
    };
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &s.ns);
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let recheck = || ownership::recheck_owner(&api, &s.name, &uid);
    let reference = ownership::controller_ref(set.as_ref());
    let status = set.status.clone().unwrap_or_default();
    let revs = history::sync(
        &ctx,
        &s.ns,
        &s.name,
        reference.clone(),
        &spec.selector,
        &spec.template,
        status.collision_count,
        recheck,
    )
    .await?;
    let update_rev = revs.update.name_any();
    let current: ControllerRevision = status
        .current_revision
        .as_ref()
        .and_then(|n| revs.all.iter().find(|r| r.name_any() == *n).cloned())
        .unwrap_or_else(|| revs.update.clone());
    let current_rev = current.name_any();

    let owner = Owner {
        reference,
        selector: &spec.selector,
        deleting: false,
    };
    let candidates = ctx.pods_in(&s.ns);
    let owned = ownership::claim(&ctx.client, &s.ns, &owner, candidates, recheck).await?;

    let replicas = spec.replicas.unwrap_or(1);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let end = start + replicas;
    let mut slots: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
    for p in owned {
        match ordinal(&s.name, &p.name_any()) {
            Some(o) if o >= start && o < end => {
                slots.insert(o, p);
            }
            Some(o) => condemned.push((o, p)),
            None => {}
        }
    }
    condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let on_delete = strategy.type_.as_deref() == Some("OnDelete");
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let current_template = history::template_of(&current).unwrap_or_else(|| spec.template.clone());

    // Claims get the owners the retention policy wants before any pod is deleted below.
    for p in slots.values().filter(|p| !terminating(p)) {
        s.fix_claims(p, false).await?;
    }
    for (_, p) in &condemned {
        s.fix_claims(p, true).await?;
    }

    let result = reconcile(
        &s,
        &slots,
        &condemned,
        start,
        end,
        monotonic,
        on_delete,
        partition,
        &current_rev,
        &update_rev,
        &current_template,
        &spec.template,
    )
    .await;

    // Status from the pods as they were at the start of this sync plus what it changed is
    // written on the next sync (every change requeues the set).
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = ctx.now();
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: status.collision_count,
        current_revision: Some(current_rev.clone()),
        update_revision: Some(update_rev.clone()),
        conditions: status.conditions.clone(),
        ..Default::default()
    };
    let mut requeue = None;
    let (mut ready, mut available, mut cur_n, mut upd_n, mut total) = (0, 0, 0, 0, 0);
    for p in slots.values().chain(condemned.iter().map(|(_, p)| p)) {
        total += 1;
        if pods::is_ready(p) {
            ready += 1;
            match pods::availability(p, min_ready, now) {
                Ok(true) => available += 1,
                Ok(false) => {}
                Err(left) => requeue = Some(left),
            }
        }
        if !terminating(p) {
            if revision_of(p) == Some(current_rev.as_str()) {
                cur_n += 1;
            }
            if revision_of(p) == Some(update_rev.as_str()) {
                upd_n += 1;
            }
        }
    }
    st.replicas = total;
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(cur_n);
    st.updated_replicas = Some(upd_n);
    // The rollout is done: the update revision becomes current.
    if upd_n == replicas && total == replicas && ready == replicas {
        st.current_revision = Some(update_rev.clone());
        st.current_replicas = Some(upd_n);
    }
    if serde_json::to_value(&st).ok() != serde_json::to_value(&status).ok() {
        let mut copy = (*set).clone();
        copy.status = Some(st.clone());
        api.replace_status(&s.name, &PostParams::default(), &copy)
            .await?;
    }
    let live: Vec<&str> = [
        current_rev.as_str(),
        update_rev.as_str(),
        st.current_revision.as_deref().unwrap_or(""),
    ]
    .into();
    history::truncate(
        &ctx,
        &s.ns,
        &revs.all,
        &live,
        spec.revision_history_limit.unwrap_or(10),
    )
    .await?;
    result?;
    Ok(requeue)
}

#[allow(clippy::too_many_arguments)]
async fn reconcile(
    s: &Sync<'_>,
    slots: &BTreeMap<i32, Arc<Pod>>,
    condemned: &[(i32, Arc<Pod>)],
    start: i32,
    end: i32,
    monotonic: bool,
    on_delete: bool,
    partition: i32,
    current_rev: &str,
    update_rev: &str,
    current_template: &PodTemplateSpec,
    update_template: &PodTemplateSpec,
) -> Result<(), Error> {
    for ord in start..end {
        match slots.get(&ord) {
            None => {
                // Pods below the partition (or any, with OnDelete) keep the current revision.
                let (tpl, rev) = if current_rev != update_rev && (on_delete || ord < partition) {
                    (current_template, current_rev)
                } else {
                    (update_template, update_rev)
                };
                s.create_pod(&new_pod(&s.set, tpl, rev, ord)).await?;
                if monotonic {
                    return Ok(());
                }
            }
            Some(p) => {
                if matches!(pods::phase(p), "Failed" | "Succeeded") && !terminating(p) {
                    s.delete_pod(p).await?;
                    if monotonic {
                        return Ok(());
                    }
                    continue;
                }
                if monotonic && (terminating(p) || !running_and_ready(p)) {
                    return Ok(());
                }
            }
        }
    }
    // Scale down, highest ordinal first; ordered sets wait for every pod to be healthy.
    if !condemned.is_empty() {
        if monotonic {
            let healthy = slots
                .values()
                .all(|p| running_and_ready(p) && !terminating(p));
            if !healthy || condemned.iter().any(|(_, p)| terminating(p)) {
                return Ok(());
            }
            s.delete_pod(&condemned[0].1).await?;
            return Ok(());
        }
        for (_, p) in condemned.iter().filter(|(_, p)| !terminating(p)) {
            s.delete_pod(p).await?;
        }
        return Ok(());
    }
    if on_delete {
        return Ok(());
    }
    // RollingUpdate: one pod at a time, highest ordinal first, down to the partition.
    for ord in (start.max(partition)..end).rev() {
        let Some(p) = slots.get(&ord) else {
            return Ok(());
        };
        if revision_of(p) != Some(update_rev) {
            if !terminating(p) {
                s.delete_pod(p).await?;
            }
            return Ok(());
        }
        if !running_and_ready(p) || terminating(p) {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(when_deleted: &str, when_scaled: &str) -> StatefulSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "selector": {}, "serviceName": "db", "template": {},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted, "whenScaled": when_scaled},
            },
        }))
        .unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "db-2", "namespace": "ns", "uid": "pod-uid"}}),
        )
        .unwrap()
    }

    fn claim(owner_uids: &[&str]) -> PersistentVolumeClaim {
        let refs: Vec<serde_json::Value> = owner_uids
            .iter()
            .map(|u| serde_json::json!({"apiVersion": "v1", "kind": if *u == "pod-uid" { "Pod" } else { "StatefulSet" }, "name": "x", "uid": u}))
            .collect();
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "data-db-2", "ownerReferences": refs}}),
        )
        .unwrap()
    }

    fn uids(refs: Option<Vec<OwnerReference>>) -> Option<Vec<String>> {
        refs.map(|r| r.into_iter().map(|o| o.uid).collect())
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let p = pod();
        // (whenDeleted, whenScaled, scaled down, current owners) → wanted owners.
        type Case<'a> = (&'a str, &'a str, bool, &'a [&'a str], Option<&'a [&'a str]>);
        let cases: &[Case] = &[
            (
                "Retain",
                "Retain",
                false,
                &["set-uid", "pod-uid"],
                Some(&[]),
            ),
            ("Retain", "Retain", true, &[], None),
            ("Delete", "Retain", false, &[], Some(&["set-uid"])),
            ("Delete", "Retain", true, &["set-uid"], None),
            ("Retain", "Delete", false, &["pod-uid"], Some(&[])),
            ("Retain", "Delete", true, &[], Some(&["pod-uid"])),
            ("Delete", "Delete", false, &[], Some(&["set-uid"])),
            ("Delete", "Delete", true, &["set-uid"], Some(&["pod-uid"])),
            ("Delete", "Delete", true, &["pod-uid"], None),
        ];
        for (wd, ws, down, have, want) in cases {
            let got = uids(claim_owners(&claim(have), &set(wd, ws), &p, *down));
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{wd}/{ws} scaled down {down} from {have:?}");
        }
        // A claim another object controls is left alone.
        let mut foreign = claim(&[]);
        foreign.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Other".into(),
            name: "o".into(),
            uid: "other".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }]);
        assert_eq!(
            claim_owners(&foreign, &set("Delete", "Delete"), &p, true),
            None
        );
    }

    #[test]
    fn ordinals_parse_strictly() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-01"), None);
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "webapp-1"), None);
        assert_eq!(ordinal("web", "web-"), None);
    }
}
