//! Controller ownerReferences and upstream's `ControllerRefManager`: an owner claims the
//! objects its selector matches — keeping those it already controls, adopting orphans
//! (after re-reading itself from the API server to be sure it still exists and is not being
//! deleted), and releasing those it controls that no longer match.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Error;
use crate::selector;

/// The controller reference of `obj`, if any.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .as_deref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller ownerReference to `owner` (blockOwnerDeletion as upstream sets it).
pub fn controller_ref<O: Resource<DynamicType = ()>>(owner: &O) -> OwnerReference {
    OwnerReference {
        api_version: O::api_version(&()).into_owned(),
        kind: O::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What an owner needs for claiming.
pub struct Owner<'a> {
    pub reference: OwnerReference,
    pub selector: &'a LabelSelector,
    pub deleting: bool,
}

/// Claims `candidates` (objects in the owner's namespace) for `owner`; returns the objects
/// it controls afterwards. `recheck` re-reads the owner before the first adoption and must
/// confirm it is the same (uid) and not being deleted.
pub async fn claim<K, F, Fut>(
    client: &Client,
    namespace: &str,
    owner: &Owner<'_>,
    candidates: Vec<Arc<K>>,
    recheck: F,
) -> Result<Vec<Arc<K>>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut owned = Vec::new();
    let mut may_adopt: Option<bool> = None;
    for obj in candidates {
        let matches = selector::matches(owner.selector, obj.meta().labels.as_ref());
        match controller_of(obj.as_ref()) {
            Some(r) if r.uid == owner.reference.uid => {
                if matches || owner.deleting {
                    owned.push(obj);
                } else {
                    release(&api, obj.as_ref(), &owner.reference.uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if !matches || owner.deleting || obj.meta().deletion_timestamp.is_some() {
                    continue;
                }
                if may_adopt.is_none() {
                    may_adopt = Some(recheck().await?);
                }
                if may_adopt != Some(true) {
                    continue;
                }
                match adopt(&api, obj.as_ref(), &owner.reference).await {
                    Ok(o) => owned.push(Arc::new(o)),
                    // Gone meanwhile: nothing to own.
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(owned)
}

async fn adopt<K>(api: &Api<K>, obj: &K, reference: &OwnerReference) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
    refs.push(reference.clone());
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
    }});
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
}

async fn release<K>(api: &Api<K>, obj: &K, uid: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let refs: Vec<OwnerReference> = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Re-reads an owner from the API server: `Ok(true)` when it still exists with `uid` and is
/// not being deleted (upstream's `RecheckDeletionTimestamp`).
pub async fn recheck_owner<O>(api: &Api<O>, name: &str, uid: &str) -> Result<bool, Error>
where
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    match api.get(name).await {
        Ok(o) => Ok(o.uid().as_deref() == Some(uid) && o.meta().deletion_timestamp.is_none()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Labels helper: a copy of `labels` with `key=value` added.
pub fn with_label(
    labels: Option<&BTreeMap<String, String>>,
    key: &str,
    value: &str,
) -> BTreeMap<String, String> {
    let mut l = labels.cloned().unwrap_or_default();
    l.insert(key.into(), value.into());
    l
}
