//! The Deployment controller, after upstream's: a Deployment owns ReplicaSets, one per
//! pod template (named `<deployment>-<pod-template-hash>`, the hash also added to the
//! ReplicaSet's selector and pod labels); the one matching the current template is the
//! *new* ReplicaSet, the others are *old*. Each sync:
//!
//! - claims ReplicaSets (adopt/release by selector);
//! - records pause/resume in the Progressing condition;
//! - when paused, or when `spec.replicas` changed (a scaling event), only resizes
//!   (proportionally across ReplicaSets mid-rollout) and writes status;
//! - otherwise rolls out: **RollingUpdate** grows the new ReplicaSet within maxSurge and
//!   shrinks old ones within maxUnavailable ([`rolling`]); **Recreate** scales old ones to 0,
//!   waits until their pods are gone, then scales the new one up;
//! - keeps revisions (`deployment.kubernetes.io/revision` on ReplicaSets and the
//!   Deployment, `revision-history` when an old template comes back — `kubectl rollout
//!   undo`), deletes old ReplicaSets beyond revisionHistoryLimit once complete;
//! - writes status: counts, collisionCount, and the Available and Progressing conditions
//!   with upstream's reasons, including ProgressDeadlineExceeded after
//!   progressDeadlineSeconds, and ReplicaFailure copied from the new (else an old)
//!   ReplicaSet's while it has one (e.g. pod creates refused by a quota).

pub mod rolling;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::context::Ctx;
use crate::ownership::{self, Owner, controller_of};
use crate::{Error, pods, selector};
use rkube_client::events::{NORMAL, WARNING};
use rolling::OldRs;

const COMPONENT: &str = "deployment-controller";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

/// Annotations never copied from a Deployment to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// FNV-1a (32 bit) of the template's canonical JSON and the collision count, encoded with
/// upstream's `SafeEncodeString` alphabet (no vowels, no look-alike characters).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x01000193);
        }
    };
    let canonical = template_without_hash(Some(template));
    feed(canonical.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&(c as u32).to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status
        .as_ref()
        .map(|s| {
            (
                s.replicas,
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
            )
        })
        .unwrap_or((0, 0, 0))
}

fn created(rs: &ReplicaSet) -> Option<jiff::Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Drops empty objects, empty lists and nulls, so that `resources: {}` equals an absent
/// field as Go's semantic equality of structs has it.
fn prune_empty(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for x in m.values_mut() {
                prune_empty(x);
            }
            m.retain(|_, x| {
                !(x.is_null()
                    || x.as_object().is_some_and(|o| o.is_empty())
                    || x.as_array().is_some_and(|a| a.is_empty()))
            });
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// The template without the pod-template-hash label and empty fields, for comparison.
pub fn canonical(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    template_without_hash(t)
}

fn template_without_hash(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    prune_empty(&mut v);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            v["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
    }
    v
}

/// One Deployment being synced: the object, its ReplicaSets and resolved settings.
struct Sync<'a> {
    ctx: &'a Ctx,
    d: Deployment,
    ns: String,
    name: String,
    replicas: i32,
    rolling: bool,
    max_surge: i32,
    max_unavailable: i32,
}

impl<'a> Sync<'a> {
    fn spec(&self) -> k8s_openapi::api::apps::v1::DeploymentSpec {
        self.d.spec.clone().unwrap_or_default()
    }

    fn event(&self, type_: &str, reason: &str, message: String) {
        self.ctx
            .recorder
            .event(COMPONENT, &self.d, type_, reason, message);
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), &self.ns)
    }

    fn paused(&self) -> bool {
        self.spec().paused.unwrap_or(false)
    }

    fn progress_deadline(&self) -> Option<i32> {
        match self.spec().progress_deadline_seconds {
            Some(i32::MAX) => None,
            Some(s) => Some(s),
            None => Some(600),
        }
    }

    /// Splits into (new, old sorted oldest first).
    fn split(&self, rses: Vec<ReplicaSet>) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let want = template_without_hash(Some(&self.spec().template));
        let mut rses = rses;
        rses.sort_by(|a, b| {
            created(a)
                .cmp(&created(b))
                .then(a.name_any().cmp(&b.name_any()))
        });
        let idx = rses.iter().position(|rs| {
            template_without_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == want
        });
        let new = idx.map(|i| rses.remove(i));
        (new, rses)
    }

    /// Scales `rs` (and refreshes its replica annotations); records the event.
    async fn scale(&self, rs: &mut ReplicaSet, to: i32) -> Result<bool, Error> {
        let from = spec_replicas(rs);
        let max = (self.replicas + self.max_surge).to_string();
        let desired = self.replicas.to_string();
        let ann = rs.annotations();
        let annotations_stale =
            ann.get(DESIRED_REPLICAS) != Some(&desired) || ann.get(MAX_REPLICAS) != Some(&max);
        if from == to && !annotations_stale {
            return Ok(false);
        }
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(to);
        copy.annotations_mut()
            .insert(DESIRED_REPLICAS.into(), desired);
        copy.annotations_mut().insert(MAX_REPLICAS.into(), max);
        *rs = self
            .rs_api()
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?;
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            self.event(
                NORMAL,
                "ScalingReplicaSet",
                format!(
                    "Scaled {dir} replica set {} to {to} from {from}",
                    rs.name_any()
                ),
            );
        }
        Ok(from != to)
    }

    /// Finds (or creates) the new ReplicaSet and brings revisions up to date.
    async fn new_and_old(
        &mut self,
        rses: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), Error> {
        let (new, old) = self.split(rses);
        let max_old = old.iter().map(revision_of).max().unwrap_or(0);
        let revision = (max_old + 1).to_string();
        let new = match new {
            Some(mut rs) => {
                let mut copy = rs.clone();
                let mut changed = self.copy_annotations(&mut copy);
                let cur = copy.annotations().get(REVISION).cloned();
                if cur
                    .as_deref()
                    .and_then(|c| c.parse::<i64>().ok())
                    .unwrap_or(0)
                    < max_old + 1
                {
                    if let Some(cur) = cur.filter(|c| !c.is_empty()) {
                        let hist = match copy.annotations().get(REVISION_HISTORY) {
                            Some(h) if !h.is_empty() => format!("{h},{cur}"),
                            _ => cur,
                        };
                        copy.annotations_mut().insert(REVISION_HISTORY.into(), hist);
                    }
                    copy.annotations_mut()
                        .insert(REVISION.into(), revision.clone());
                    changed = true;
                }
                let min_ready = self.spec().min_ready_seconds;
                if copy.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready {
                    copy.spec
                        .get_or_insert_with(Default::default)
                        .min_ready_seconds = min_ready;
                    changed = true;
                }
                if changed {
                    rs = self
                        .rs_api()
                        .replace(&rs.name_any(), &PostParams::default(), &copy)
                        .await?;
                }
                if self.condition("Progressing").is_none() && self.progress_deadline().is_some() {
                    self.set_condition(
                        "Progressing",
                        "True",
                        "FoundNewReplicaSet",
                        format!("Found new replica set {:?}", rs.name_any()),
                    );
                }
                Some(rs)
            }
            None if create => Some(self.create_new(&old, &revision).await?),
            None => None,
        };
        if let Some(rs) = &new {
            let rev = rs.annotations().get(REVISION).cloned().unwrap_or_default();
            if self.d.annotations().get(REVISION) != Some(&rev) {
                let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
                let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.ns);
                self.d = api
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
        }
        Ok((new, old))
    }

    /// Copies the Deployment's annotations to `rs`; whether anything changed.
    fn copy_annotations(&self, rs: &mut ReplicaSet) -> bool {
        let mut changed = false;
        for (k, v) in self.d.annotations() {
            if NOT_COPIED.contains(&k.as_str()) {
                continue;
            }
            if rs.annotations().get(k) != Some(v) {
                rs.annotations_mut().insert(k.clone(), v.clone());
                changed = true;
            }
        }
        changed
    }

    async fn create_new(
        &mut self,
        old: &[ReplicaSet],
        revision: &str,
    ) -> Result<ReplicaSet, Error> {
        let spec = self.spec();
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels = Some(ownership::with_label(
            meta.labels.as_ref(),
            HASH_LABEL,
            &hash,
        ));
        let mut sel = spec.selector.clone();
        sel.match_labels = Some(ownership::with_label(
            sel.match_labels.as_ref(),
            HASH_LABEL,
            &hash,
        ));
        let all_spec: i32 = old.iter().map(spec_replicas).sum();
        let replicas = if self.rolling {
            rolling::new_rs_replicas(self.replicas, self.max_surge, all_spec, 0)
        } else {
            self.replicas
        };
        let name = format!("{}-{hash}", self.name);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.ns.clone()),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![ownership::controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector: sel,
                template: Some(template),
            }),
            status: None,
        };
        self.copy_annotations(&mut rs);
        let ann = rs.annotations_mut();
        ann.insert(REVISION.into(), revision.into());
        ann.insert(DESIRED_REPLICAS.into(), self.replicas.to_string());
        ann.insert(
            MAX_REPLICAS.into(),
            (self.replicas + self.max_surge).to_string(),
        );
        match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if replicas > 0 {
                    self.event(
                        NORMAL,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {name} to {replicas} from 0"),
                    );
                }
                if self.progress_deadline().is_some() {
                    self.set_condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetCreated",
                        format!("Created new replica set {name:?}"),
                    );
                    self.write_status(self.d.status.clone().unwrap_or_default())
                        .await?;
                }
                Ok(created)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = self.rs_api().get(&name).await?;
                let ours = controller_of(&existing)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                if ours
                    && template_without_hash(
                        existing.spec.as_ref().and_then(|s| s.template.as_ref()),
                    ) == template_without_hash(Some(&spec.template))
                {
                    return Ok(existing);
                }
                // A hash collision: bump collisionCount so the next hash differs.
                let mut status = self.d.status.clone().unwrap_or_default();
                status.collision_count = Some(collisions.unwrap_or(0) + 1);
                self.write_status(status).await?;
                Err(Error::Invalid(format!(
                    "hash collision for replica set {name}"
                )))
            }
            Err(e) => {
                // Upstream: Progressing=False (ReplicaSetCreateError) and a Warning event.
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    crate::api_message(&e)
                );
                if self.progress_deadline().is_some() {
                    self.set_condition(
                        "Progressing",
                        "False",
                        "ReplicaSetCreateError",
                        msg.clone(),
                    );
                    let _ = self
                        .write_status(self.d.status.clone().unwrap_or_default())
                        .await;
                }
                self.event(WARNING, "ReplicaSetCreateError", msg);
                Err(e.into())
            }
        }
    }

    fn condition(&self, type_: &str) -> Option<&DeploymentCondition> {
        self.d
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == type_)
    }

    /// Sets a condition on `self.d.status` (upstream's `SetDeploymentCondition`).
    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: String) {
        let now = Time(self.ctx.now());
        let conds = self
            .d
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new);
        set_condition(conds, type_, status, reason, message, now);
    }

    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let mut copy = self.d.clone();
        copy.status = Some(status);
        match api
            .replace_status(&self.name, &PostParams::default(), &copy)
            .await
        {
            Ok(d) => {
                self.d = d;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Upstream's `calculateStatus`.
    fn calculate_status(&self, all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> DeploymentStatus {
        let available: i32 = all.iter().map(|r| status_of(r).2).sum();
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(all.iter().map(|r| status_of(r).0).sum()),
            updated_replicas: Some(new.map(|r| status_of(r).0).unwrap_or(0)),
            ready_replicas: Some(all.iter().map(|r| status_of(r).1).sum()),
            available_replicas: Some(available),
            unavailable_replicas: Some((self.replicas - available).max(0)),
            collision_count: self.d.status.as_ref().and_then(|s| s.collision_count),
            conditions: self.d.status.as_ref().and_then(|s| s.conditions.clone()),
            terminating_replicas: None,
        };
        let now = Time(self.ctx.now());
        let conds = status.conditions.get_or_insert_with(Vec::new);
        if available >= self.replicas - self.max_unavailable_now() {
            set_condition(
                conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            );
        } else {
            set_condition(
                conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            );
        }
        for field in [
            &mut status.replicas,
            &mut status.updated_replicas,
            &mut status.ready_replicas,
            &mut status.available_replicas,
            &mut status.unavailable_replicas,
        ] {
            if *field == Some(0) {
                *field = None;
            }
        }
        status
    }

    /// Upstream's `MaxUnavailable`: 0 unless rolling; never more than replicas.
    fn max_unavailable_now(&self) -> i32 {
        if !self.rolling || self.replicas == 0 {
            0
        } else {
            self.max_unavailable.min(self.replicas)
        }
    }

    fn complete(&self, s: &DeploymentStatus) -> bool {
        s.updated_replicas.unwrap_or(0) == self.replicas
            && s.replicas.unwrap_or(0) == self.replicas
            && s.available_replicas.unwrap_or(0) == self.replicas
            && s.observed_generation >= self.d.metadata.generation
    }

    /// Writes status if it changed; with `rollout`, also the Progressing condition
    /// (upstream's `syncRolloutStatus`). Returns when to look again for a deadline.
    async fn sync_status(
        &mut self,
        all: &[&ReplicaSet],
        new: Option<&ReplicaSet>,
        rollout: bool,
    ) -> Result<Option<Duration>, Error> {
        let mut status = self.calculate_status(all, new);
        let old = self.d.status.clone().unwrap_or_default();
        let now = self.ctx.now();
        let mut requeue = None;
        if rollout {
            // The ReplicaFailure of the new ReplicaSet, else of an old one, is the
            // Deployment's (upstream's getReplicaFailures); none → removed.
            let conds = status.conditions.get_or_insert_with(Vec::new);
            match replica_failure(all, new) {
                Some(c) => set_condition(
                    conds,
                    "ReplicaFailure",
                    &c.status,
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                    c.last_transition_time.clone().unwrap_or(Time(now)),
                ),
                None => conds.retain(|c| c.type_ != "ReplicaFailure"),
            }
            let complete = self.complete(&status);
            let moved = progressing(&old, &status);
            let all_updated = status.replicas == status.updated_replicas;
            let conds = status.conditions.get_or_insert_with(Vec::new);
            match self.progress_deadline() {
                None => conds.retain(|c| c.type_ != "Progressing"),
                Some(deadline) => {
                    let cur = conds.iter().find(|c| c.type_ == "Progressing").cloned();
                    let new_name = new.map(|r| r.name_any());
                    let is_complete = all_updated
                        && cur.as_ref().and_then(|c| c.reason.as_deref())
                            == Some("NewReplicaSetAvailable");
                    if !is_complete {
                        let rs_msg = |what: &str| match &new_name {
                            Some(n) => format!("ReplicaSet {n:?} {what}"),
                            None => format!("Deployment {:?} {what}", self.name),
                        };
                        if complete {
                            set_condition(
                                conds,
                                "Progressing",
                                "True",
                                "NewReplicaSetAvailable",
                                rs_msg("has successfully progressed."),
                                Time(now),
                            );
                        } else if moved {
                            let mut c = DeploymentCondition {
                                type_: "Progressing".into(),
                                status: "True".into(),
                                reason: Some("ReplicaSetUpdated".into()),
                                message: Some(rs_msg("is progressing.")),
                                last_update_time: Some(Time(now)),
                                last_transition_time: Some(Time(now)),
                            };
                            if let Some(cur) = &cur
                                && cur.status == "True"
                            {
                                c.last_transition_time = cur.last_transition_time.clone();
                            }
                            conds.retain(|c| c.type_ != "Progressing");
                            conds.push(c);
                        } else if let Some(cur) = &cur
                            && cur.reason.as_deref() != Some("NewReplicaSetAvailable")
                        {
                            let timed_out = cur.reason.as_deref()
                                == Some("ProgressDeadlineExceeded")
                                || cur.last_update_time.as_ref().is_some_and(|t| {
                                    t.0.as_millisecond() + i64::from(deadline) * 1000
                                        < now.as_millisecond()
                                });
                            if timed_out {
                                set_condition(
                                    conds,
                                    "Progressing",
                                    "False",
                                    "ProgressDeadlineExceeded",
                                    rs_msg("has timed out progressing."),
                                    Time(now),
                                );
                            }
                        }
                    }
                    // Look again when the deadline would pass (upstream's requeueStuckDeployment).
                    let cur = conds.iter().find(|c| c.type_ == "Progressing");
                    if let Some(c) = cur
                        && c.status == "True"
                        && c.reason.as_deref() != Some("NewReplicaSetAvailable")
                        && !complete
                        && !self.paused()
                        && let Some(t) = &c.last_update_time
                    {
                        let left = t.0.as_millisecond() + i64::from(deadline) * 1000
                            - now.as_millisecond();
                        requeue = Some(Duration::from_millis(left.max(1000) as u64));
                    }
                }
            }
        }
        if !same_status(&old, &status) {
            self.write_status(status).await?;
        }
        Ok(requeue)
    }
}

/// The ReplicaFailure condition of the new ReplicaSet, else of the first old one with one.
fn replica_failure<'a>(
    all: &[&'a ReplicaSet],
    new: Option<&'a ReplicaSet>,
) -> Option<&'a k8s_openapi::api::apps::v1::ReplicaSetCondition> {
    let failure = |rs: &'a ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
    };
    new.and_then(failure)
        .or_else(|| all.iter().find_map(|rs| failure(rs)))
}

/// Whether the rollout moved (upstream's `DeploymentProgressing`).
fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let g = |v: Option<i32>| v.unwrap_or(0);
    let old_old = g(old.replicas) - g(old.updated_replicas);
    let new_old = g(new.replicas) - g(new.updated_replicas);
    g(new.updated_replicas) > g(old.updated_replicas)
        || new_old < old_old
        || g(new.ready_replicas) > g(old.ready_replicas)
        || g(new.available_replicas) > g(old.available_replicas)
}

/// Equal ignoring condition update times of otherwise unchanged conditions.
fn same_status(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    let strip = |s: &DeploymentStatus| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let Some(cs) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in cs.iter_mut() {
                if c["reason"] != "ReplicaSetUpdated"
                    && let Some(o) = c.as_object_mut()
                {
                    o.remove("lastUpdateTime");
                }
            }
            cs.sort_by(|x, y| x["type"].as_str().cmp(&y["type"].as_str()));
        }
        v
    };
    strip(a) == strip(b)
}

/// Upstream's `SetDeploymentCondition`: same status and reason → unchanged; same status →
/// keeps the transition time.
pub fn set_condition(
    conds: &mut Vec<DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Time,
) {
    let cur = conds.iter().position(|c| c.type_ == type_);
    let mut transition = now.clone();
    if let Some(i) = cur {
        let c = &conds[i];
        if c.status == status && c.reason.as_deref() == Some(reason) {
            return;
        }
        if c.status == status
            && let Some(t) = &c.last_transition_time
        {
            transition = t.clone();
        }
        conds.remove(i);
    }
    conds.push(DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now),
        last_transition_time: Some(transition),
    });
}

/// Syncs one Deployment.
pub async fn sync(ctx: Arc<Ctx>, key: String) -> Result<Option<Duration>, Error> {
    let Some(d) = ctx.deployments.get(&key) else {
        return Ok(None);
    };
    let d = (*d).clone();
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let strategy = spec.strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref() != Some("Recreate");
    let ru = strategy.rolling_update.clone().unwrap_or_default();
    let (max_surge, max_unavailable) = if rolling {
        rolling::resolve_fenceposts(ru.max_surge.as_ref(), ru.max_unavailable.as_ref(), replicas)?
    } else {
        (0, 0)
    };
    let mut s = Sync {
        ctx: &ctx,
        ns: d.namespace().unwrap_or_default(),
        name: d.name_any(),
        d,
        replicas,
        rolling,
        max_surge,
        max_unavailable,
    };
    if selector::is_empty(&spec.selector) {
        if s.d.status.as_ref().and_then(|st| st.observed_generation) < s.d.metadata.generation {
            s.event(
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let mut st = s.d.status.clone().unwrap_or_default();
            st.observed_generation = s.d.metadata.generation;
            s.write_status(st).await?;
        }
        return Ok(None);
    }
    let rses = claim(&s, &spec.selector).await?;
    if s.d.metadata.deletion_timestamp.is_some() {
        let (new, old) = s.split(rses);
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        return s.sync_status(&all, new.as_ref(), false).await;
    }
    // Pause/resume in the Progressing condition.
    if s.progress_deadline().is_some() {
        let reason = s.condition("Progressing").and_then(|c| c.reason.clone());
        if s.paused() && reason.as_deref() != Some("DeploymentPaused") {
            s.set_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            );
            s.write_status(s.d.status.clone().unwrap_or_default())
                .await?;
        } else if !s.paused() && reason.as_deref() == Some("DeploymentPaused") {
            s.set_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            );
            s.write_status(s.d.status.clone().unwrap_or_default())
                .await?;
        }
    }
    if s.paused() || scaling_event(&s, &rses) {
        return scale_only(&mut s, rses).await;
    }
    if rolling {
        rollout_rolling(&mut s, rses).await
    } else {
        rollout_recreate(&mut s, rses).await
    }
}

async fn claim(s: &Sync<'_>, sel: &LabelSelector) -> Result<Vec<ReplicaSet>, Error> {
    let owner = Owner {
        reference: ownership::controller_ref(&s.d),
        selector: sel,
        deleting: s.d.metadata.deletion_timestamp.is_some(),
    };
    let api: Api<Deployment> = Api::namespaced(s.ctx.client.clone(), &s.ns);
    let uid = s.d.metadata.uid.clone().unwrap_or_default();
    let candidates = s
        .ctx
        .replicasets
        .by_index(crate::context::BY_NAMESPACE, &s.ns);
    let owned = ownership::claim(&s.ctx.client, &s.ns, &owner, candidates, || {
        ownership::recheck_owner(&api, &s.name, &uid)
    })
    .await?;
    Ok(owned.into_iter().map(|r| (*r).clone()).collect())
}

fn scaling_event(s: &Sync<'_>, rses: &[ReplicaSet]) -> bool {
    rses.iter()
        .filter(|r| spec_replicas(r) > 0)
        .filter_map(|r| r.annotations().get(DESIRED_REPLICAS)?.parse::<i32>().ok())
        .any(|desired| desired != s.replicas)
}

/// Upstream's `sync`: resize only (paused, or spec.replicas changed), then status.
async fn scale_only(s: &mut Sync<'_>, rses: Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
    let (mut new, mut old) = s.new_and_old(rses, false).await?;
    scale(s, &mut new, &mut old).await?;
    if s.paused() {
        cleanup(s, &old).await?;
    }
    let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
    s.sync_status(&all, new.as_ref(), false).await?;
    Ok(None)
}

async fn scale(
    s: &Sync<'_>,
    new: &mut Option<ReplicaSet>,
    old: &mut [ReplicaSet],
) -> Result<(), Error> {
    // One active ReplicaSet (or none: the newest) takes the whole size.
    let active = old
        .iter()
        .chain(new.iter())
        .filter(|r| spec_replicas(r) > 0)
        .count();
    if active <= 1 && (new.is_some() || !old.is_empty()) {
        let target: &mut ReplicaSet = if active == 1 {
            match new.as_mut().filter(|r| spec_replicas(r) > 0) {
                Some(n) => n,
                None => old
                    .iter_mut()
                    .find(|r| spec_replicas(r) > 0)
                    .ok_or_else(|| Error::Invalid("no active replica set".into()))?,
            }
        } else if let Some(n) = new.as_mut() {
            n
        } else {
            old.iter_mut()
                .max_by_key(|r| created(r))
                .ok_or_else(|| Error::Invalid("no replica set".into()))?
        };
        s.scale(target, s.replicas).await?;
        return Ok(());
    }
    // The new ReplicaSet is saturated: old ones go.
    if let Some(n) = new.as_ref()
        && spec_replicas(n) == s.replicas
        && n.annotations().get(DESIRED_REPLICAS) == Some(&s.replicas.to_string())
        && status_of(n).2 == s.replicas
    {
        for r in old.iter_mut().filter(|r| spec_replicas(r) > 0) {
            s.scale(r, 0).await?;
        }
        return Ok(());
    }
    if !s.rolling {
        return Ok(());
    }
    let mut all: Vec<&mut ReplicaSet> = old
        .iter_mut()
        .chain(new.iter_mut())
        .filter(|r| spec_replicas(r) > 0)
        .collect();
    let total: i32 = all.iter().map(|r| spec_replicas(r)).sum();
    let allowed = if s.replicas > 0 {
        s.replicas + s.max_surge
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add > 0 {
        all.sort_by(|a, b| {
            spec_replicas(b)
                .cmp(&spec_replicas(a))
                .then(created(b).cmp(&created(a)))
        });
    } else {
        all.sort_by(|a, b| {
            spec_replicas(b)
                .cmp(&spec_replicas(a))
                .then(created(a).cmp(&created(b)))
        });
    }
    let mut added = 0;
    let mut sizes = Vec::new();
    for r in all.iter() {
        let annotated = r
            .annotations()
            .get(MAX_REPLICAS)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| s.d.status.as_ref().and_then(|st| st.replicas).unwrap_or(0));
        let p = rolling::proportion(
            spec_replicas(r),
            annotated,
            s.replicas,
            s.max_surge,
            to_add,
            added,
        );
        sizes.push(spec_replicas(r) + p);
        added += p;
    }
    if let Some(first) = sizes.first_mut() {
        *first = (*first + to_add - added).max(0);
    }
    for (r, size) in all.into_iter().zip(sizes) {
        s.scale(r, size).await?;
    }
    Ok(())
}

/// Deletes old ReplicaSets beyond revisionHistoryLimit (fully scaled down ones only).
async fn cleanup(s: &Sync<'_>, old: &[ReplicaSet]) -> Result<(), Error> {
    let limit = s.spec().revision_history_limit.unwrap_or(10).max(0) as usize;
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    if alive.len() <= limit {
        return Ok(());
    }
    let diff = alive.len() - limit;
    alive.sort_by_key(|r| (revision_of(r), created(r)));
    for r in alive.into_iter().take(diff) {
        let settled = r
            .status
            .as_ref()
            .is_some_and(|st| st.replicas == 0 && st.observed_generation >= r.metadata.generation);
        if spec_replicas(r) != 0 || !settled {
            continue;
        }
        match s.rs_api().delete(&r.name_any(), &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether every ReplicaSet's controller has acted on its current size (no more active
/// pods than `spec.replicas`), so growing the new one cannot overshoot maxSurge.
fn settled(rs: &ReplicaSet) -> bool {
    rs.status.as_ref().is_some_and(|st| {
        st.observed_generation >= rs.metadata.generation && st.replicas <= spec_replicas(rs)
    })
}

async fn rollout_rolling(
    s: &mut Sync<'_>,
    rses: Vec<ReplicaSet>,
) -> Result<Option<Duration>, Error> {
    let (new, mut old) = s.new_and_old(rses, true).await?;
    let Some(mut new) = new else {
        return Err(Error::Invalid("new replica set missing".into()));
    };
    let mut scaled = false;
    // Grow (or shrink) the new ReplicaSet.
    let new_spec = spec_replicas(&new);
    if new_spec > s.replicas {
        scaled = s.scale(&mut new, s.replicas).await?;
    } else if new_spec < s.replicas && old.iter().all(settled) {
        let total: i32 = old.iter().map(spec_replicas).sum::<i32>() + new_spec;
        let to = rolling::new_rs_replicas(s.replicas, s.max_surge, total, new_spec);
        scaled = s.scale(&mut new, to).await?;
    }
    if !scaled {
        // Shrink the old ones.
        let old_total: i32 = old.iter().map(spec_replicas).sum();
        if old_total > 0 {
            let total = old_total + spec_replicas(&new);
            let new_available = status_of(&new).2;
            let msd = rolling::max_scaled_down(
                s.replicas,
                s.max_unavailable_now(),
                total,
                spec_replicas(&new),
                new_available,
            );
            let all_available: i32 =
                old.iter().map(|r| status_of(r).2).sum::<i32>() + new_available;
            let plan: Vec<OldRs> = old
                .iter()
                .map(|r| OldRs {
                    spec: spec_replicas(r),
                    available: status_of(r).2,
                })
                .collect();
            let sizes = rolling::scale_down_old(
                s.replicas,
                s.max_unavailable_now(),
                msd,
                all_available,
                &plan,
            );
            for (r, size) in old.iter_mut().zip(sizes) {
                if size != spec_replicas(r) {
                    scaled |= s.scale(r, size).await?;
                }
            }
        }
    }
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
    if !scaled {
        let st = s.calculate_status(&all, Some(&new));
        if s.complete(&st) {
            cleanup(s, &old).await?;
        }
    }
    s.sync_status(&all, Some(&new), true).await
}

async fn rollout_recreate(
    s: &mut Sync<'_>,
    rses: Vec<ReplicaSet>,
) -> Result<Option<Duration>, Error> {
    let (new, mut old) = s.new_and_old(rses, false).await?;
    let mut scaled = false;
    for r in old.iter_mut().filter(|r| spec_replicas(r) > 0) {
        scaled |= s.scale(r, 0).await?;
    }
    if scaled {
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        return s.sync_status(&all, new.as_ref(), true).await;
    }
    // Wait until no old pod runs.
    let old_uids: Vec<String> = old.iter().filter_map(|r| r.metadata.uid.clone()).collect();
    let old_running = old.iter().any(|r| status_of(r).0 > 0)
        || s.ctx.pods_in(&s.ns).iter().any(|p: &Arc<Pod>| {
            controller_of(p.as_ref()).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(pods::phase(p), "Succeeded" | "Failed")
        });
    if old_running {
        let all: Vec<&ReplicaSet> = old.iter().chain(new.as_ref()).collect();
        return s.sync_status(&all, new.as_ref(), true).await;
    }
    let rses: Vec<ReplicaSet> = old.into_iter().chain(new).collect();
    let (new, old) = s.new_and_old(rses, true).await?;
    let Some(mut new) = new else {
        return Err(Error::Invalid("new replica set missing".into()));
    };
    s.scale(&mut new, s.replicas).await?;
    let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
    let st = s.calculate_status(&all, Some(&new));
    if s.complete(&st) {
        cleanup(s, &old).await?;
    }
    s.sync_status(&all, Some(&new), true).await
}

/// Keeps `BTreeMap` in scope for callers building labels.
pub type Labels = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_safe() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap();
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert_ne!(h, template_hash(&t, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert!(!h.is_empty() && h.len() <= 10);
    }

    #[test]
    fn template_comparison_ignores_hash_label() {
        let a: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap();
        let b: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }))
        .unwrap();
        assert_eq!(
            template_without_hash(Some(&a)),
            template_without_hash(Some(&b))
        );
    }

    #[test]
    fn conditions_keep_transition_time() {
        let t0 = Time("2026-01-01T00:00:00Z".parse().unwrap());
        let t1 = Time("2026-01-01T00:01:00Z".parse().unwrap());
        let mut c = vec![];
        set_condition(
            &mut c,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            "m".into(),
            t0.clone(),
        );
        set_condition(
            &mut c,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            "m2".into(),
            t1.clone(),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, Some(t0));
        assert_eq!(c[0].last_update_time, Some(t1));
        assert_eq!(c[0].reason.as_deref(), Some("NewReplicaSetAvailable"));
    }
}
