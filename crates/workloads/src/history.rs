//! ControllerRevisions for StatefulSets and DaemonSets (upstream's `history` package): a
//! revision stores the pod template as a patch (`{"spec":{"template":{…,"$patch":
//! "replace"}}}`), named `<owner>-<hash>` with increasing `revision` numbers; the one
//! equal to the current template is the *update* revision (created, or re-numbered when an
//! old template comes back); old ones beyond revisionHistoryLimit are deleted.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::Error;
use crate::context::{BY_NAMESPACE, Ctx};
use crate::deployment::template_hash;
use crate::ownership::{self, Owner};

/// Label upstream puts on revisions and pods.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// The stored form of a template.
pub fn data_of(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template stored in a revision.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

fn same_template(rev: &ControllerRevision, template: &PodTemplateSpec) -> bool {
    template_of(rev).is_some_and(|t| {
        crate::deployment::canonical(Some(&t)) == crate::deployment::canonical(Some(template))
    })
}

/// An owner's revisions after syncing: all of them (oldest first) and the update one.
pub struct Revisions {
    pub all: Vec<ControllerRevision>,
    pub update: ControllerRevision,
}

/// Claims the owner's revisions and finds or creates the one for `template`.
#[allow(clippy::too_many_arguments)]
pub async fn sync<F, Fut>(
    ctx: &Ctx,
    ns: &str,
    owner_name: &str,
    reference: OwnerReference,
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    collision_count: Option<i32>,
    recheck: F,
) -> Result<Revisions, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let owner = Owner {
        reference: reference.clone(),
        selector,
        deleting: false,
    };
    let candidates: Vec<Arc<ControllerRevision>> = ctx.revisions.by_index(BY_NAMESPACE, ns);
    let mut all: Vec<ControllerRevision> =
        ownership::claim(&ctx.client, ns, &owner, candidates, recheck)
            .await?
            .into_iter()
            .map(|r| (*r).clone())
            .collect();
    all.sort_by_key(|r| {
        (
            r.revision,
            r.metadata.creation_timestamp.clone().map(|t| t.0),
        )
    });
    let next = all.last().map(|r| r.revision).unwrap_or(0) + 1;
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let equal: Vec<usize> = (0..all.len())
        .filter(|i| same_template(&all[*i], template))
        .collect();
    if let Some(&i) = equal.last() {
        if i + 1 != all.len() {
            // An old template is back: it becomes the newest revision.
            let mut r = all.remove(i);
            r.revision = next;
            r = api
                .replace(&r.name_any(), &PostParams::default(), &r)
                .await?;
            all.push(r);
        }
        let update = all
            .last()
            .cloned()
            .ok_or_else(|| Error::Invalid("no revision".into()))?;
        return Ok(Revisions { all, update });
    }
    let hash = template_hash(template, collision_count);
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let rev = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{hash}")),
            namespace: Some(ns.into()),
            labels: Some(labels),
            owner_references: Some(vec![reference]),
            ..Default::default()
        },
        data: Some(RawExtension(data_of(template))),
        revision: next,
    };
    let created = match api.create(&PostParams::default(), &rev).await {
        Ok(r) => r,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&rev.name_any()).await?;
            if !same_template(&existing, template) {
                return Err(Error::Invalid(format!(
                    "controller revision {} exists with another template",
                    rev.name_any()
                )));
            }
            existing
        }
        Err(e) => return Err(e.into()),
    };
    all.push(created.clone());
    Ok(Revisions {
        all,
        update: created,
    })
}

/// Deletes the oldest revisions beyond `limit`, keeping those named in `live`.
pub async fn truncate(
    ctx: &Ctx,
    ns: &str,
    all: &[ControllerRevision],
    live: &[&str],
    limit: i32,
) -> Result<(), Error> {
    let old: Vec<&ControllerRevision> = all
        .iter()
        .filter(|r| !live.contains(&r.name_any().as_str()))
        .collect();
    let excess = old.len().saturating_sub(limit.max(0) as usize);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    for r in old.into_iter().take(excess) {
        match api.delete(&r.name_any(), &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
