//! The ReplicaSet and ReplicationController controller (one implementation, as upstream):
//! keeps `spec.replicas` active pods matching the selector — creating from the template in
//! slow-start batches of at most 500 per sync, deleting the lowest-ranked pods first — and
//! writes `status` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after
//! minReadySeconds, observedGeneration, the ReplicaFailure condition).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use rkube_client::key_of;
use serde_json::{Value, json};

use crate::context::{Ctx, Kind};
use crate::ownership::{self, Owner};
use crate::pods::{self, BURST_REPLICAS};
use crate::{Error, selector};
use rkube_client::events::{NORMAL, WARNING};

/// The controller's name in events (`From` in `kubectl describe`).
fn component(kind: Kind) -> &'static str {
    match kind {
        Kind::ReplicationController => "replication-controller",
        _ => "replicaset-controller",
    }
}

enum Obj {
    Rs(Arc<ReplicaSet>),
    Rc(Arc<ReplicationController>),
}

/// What the sync needs of either kind.
struct View {
    obj: Obj,
    kind: Kind,
    name: String,
    ns: String,
    uid: String,
    generation: i64,
    replicas: i32,
    selector: LabelSelector,
    template: Option<PodTemplateSpec>,
    min_ready: i32,
    deleting: bool,
    status: Value,
}

impl View {
    fn load(ctx: &Ctx, kind: Kind, key: &str) -> Option<View> {
        let (obj, status, spec_replicas, selector, template, min_ready, meta) = match kind {
            Kind::ReplicaSet => {
                let o = ctx.replicasets.get(key)?;
                let spec = o.spec.clone().unwrap_or_default();
                (
                    Obj::Rs(o.clone()),
                    serde_json::to_value(&o.status).unwrap_or(Value::Null),
                    spec.replicas,
                    spec.selector,
                    spec.template,
                    spec.min_ready_seconds,
                    o.metadata.clone(),
                )
            }
            Kind::ReplicationController => {
                let o = ctx.rcs.get(key)?;
                let spec = o.spec.clone().unwrap_or_default();
                (
                    Obj::Rc(o.clone()),
                    serde_json::to_value(&o.status).unwrap_or(Value::Null),
                    spec.replicas,
                    selector::from_map(spec.selector.as_ref()),
                    spec.template,
                    spec.min_ready_seconds,
                    o.metadata.clone(),
                )
            }
            _ => return None,
        };
        Some(View {
            obj,
            kind,
            name: meta.name.clone().unwrap_or_default(),
            ns: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            generation: meta.generation.unwrap_or(0),
            replicas: spec_replicas.unwrap_or(1),
            selector,
            template,
            min_ready: min_ready.unwrap_or(0),
            deleting: meta.deletion_timestamp.is_some(),
            status,
        })
    }

    fn event(&self, ctx: &Ctx, type_: &str, reason: &str, message: String) {
        let c = component(self.kind);
        match &self.obj {
            Obj::Rs(o) => ctx.recorder.event(c, o.as_ref(), type_, reason, message),
            Obj::Rc(o) => ctx.recorder.event(c, o.as_ref(), type_, reason, message),
        }
    }

    fn owner_ref(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        match &self.obj {
            Obj::Rs(o) => ownership::controller_ref(o.as_ref()),
            Obj::Rc(o) => ownership::controller_ref(o.as_ref()),
        }
    }

    async fn recheck(&self, ctx: &Ctx) -> Result<bool, Error> {
        match self.kind {
            Kind::ReplicaSet => {
                let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &self.ns);
                ownership::recheck_owner(&api, &self.name, &self.uid).await
            }
            _ => {
                let api: Api<ReplicationController> = Api::namespaced(ctx.client.clone(), &self.ns);
                ownership::recheck_owner(&api, &self.name, &self.uid).await
            }
        }
    }

    async fn patch_status(&self, ctx: &Ctx, status: Value) -> Result<(), Error> {
        let patch = json!({ "status": status });
        let pp = PatchParams::default();
        let r = match self.kind {
            Kind::ReplicaSet => Api::<ReplicaSet>::namespaced(ctx.client.clone(), &self.ns)
                .patch_status(&self.name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
            _ => Api::<ReplicationController>::namespaced(ctx.client.clone(), &self.ns)
                .patch_status(&self.name, &pp, &Patch::Merge(&patch))
                .await
                .map(|_| ()),
        };
        match r {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            r => r.map_err(Into::into),
        }
    }
}

/// Syncs one ReplicaSet or ReplicationController.
pub async fn sync(ctx: Arc<Ctx>, kind: Kind, key: String) -> Result<Option<Duration>, Error> {
    let Some(v) = View::load(&ctx, kind, &key) else {
        ctx.expectations(kind).delete(&key);
        return Ok(None);
    };
    let needs_sync = ctx.expectations(kind).satisfied(&key);
    let active: Vec<Arc<Pod>> = ctx
        .pods_in(&v.ns)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let owner = Owner {
        reference: v.owner_ref(),
        selector: &v.selector,
        deleting: v.deleting,
    };
    let owned = ownership::claim(&ctx.client, &v.ns, &owner, active, || v.recheck(&ctx)).await?;

    let mut manage_err = None;
    if needs_sync && !v.deleting {
        manage_err = manage(&ctx, &v, &key, &owned).await.err();
    }
    let now = ctx.now();
    let mut requeue = None;
    let (mut ready, mut available, mut labeled) = (0, 0, 0);
    let template_labels: BTreeMap<String, String> = v
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for p in &owned {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, val)| labels.get(k) == Some(val))
        {
            labeled += 1;
        }
        if pods::is_ready(p) {
            ready += 1;
        }
        match pods::availability(p, v.min_ready, now) {
            Ok(true) => available += 1,
            Ok(false) => {}
            Err(left) => requeue = Some(requeue.map_or(left, |r: Duration| r.min(left))),
        }
    }
    let mut conditions: Vec<Value> = v.status["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failure = conditions
        .iter()
        .position(|c| c["type"] == "ReplicaFailure");
    match (&manage_err, failure) {
        (Some(e), None) if (owned.len() as i32) < v.replicas => {
            let reason = if matches!(e, Error::Kube(_)) {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            let message = match e {
                Error::Kube(k) => crate::api_message(k),
                e => e.to_string(),
            };
            conditions.push(json!({
                "type": "ReplicaFailure", "status": "True", "reason": reason,
                "message": message, "lastTransitionTime": now.to_string(),
            }));
        }
        (None, Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    let nz = |n: i32| if n == 0 { Value::Null } else { json!(n) };
    let status = json!({
        "replicas": owned.len(),
        "fullyLabeledReplicas": nz(labeled),
        "readyReplicas": nz(ready),
        "availableReplicas": nz(available),
        "observedGeneration": v.generation,
        "conditions": if conditions.is_empty() { Value::Null } else { json!(conditions) },
    });
    if status_differs(&v.status, &status) {
        v.patch_status(&ctx, status).await?;
    }
    if let Some(e) = manage_err {
        return Err(e);
    }
    Ok(requeue)
}

/// Whether `new` (a merge patch of status; null = absent) changes `old`.
fn status_differs(old: &Value, new: &Value) -> bool {
    let Some(fields) = new.as_object() else {
        return true;
    };
    fields.iter().any(|(k, v)| {
        let cur = &old[k];
        match (cur, v) {
            (Value::Null, Value::Null) => false,
            (Value::Number(a), Value::Null) | (Value::Null, Value::Number(a)) => {
                a.as_i64() != Some(0)
            }
            _ => cur != v,
        }
    })
}

/// Creates or deletes pods towards `spec.replicas`.
async fn manage(ctx: &Ctx, v: &View, key: &str, owned: &[Arc<Pod>]) -> Result<(), Error> {
    let diff = owned.len() as i64 - i64::from(v.replicas);
    let exp = ctx.expectations(v.kind);
    if diff < 0 {
        let Some(template) = &v.template else {
            return Err(Error::Invalid("spec.template is missing".into()));
        };
        let n = ((-diff) as usize).min(BURST_REPLICAS);
        exp.expect(key, n, []);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &v.ns);
        let pod = pods::from_template(template, &v.ns, format!("{}-", v.name), v.owner_ref());
        let (_, err, skipped) = pods::slow_start(n, |_| {
            let (api, pod) = (&api, &pod);
            async move {
                match api.create(&PostParams::default(), pod).await {
                    Ok(p) => {
                        v.event(
                            ctx,
                            NORMAL,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        );
                        Ok(())
                    }
                    Err(e) => {
                        exp.creation_observed(key);
                        v.event(
                            ctx,
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
        if let Some(e) = err {
            return Err(e.into());
        }
    } else if diff > 0 {
        let n = (diff as usize).min(BURST_REPLICAS);
        let mut ranked = owned.to_vec();
        pods::deletion_order(&mut ranked);
        ranked.truncate(n);
        exp.expect(key, 0, ranked.iter().map(|p| key_of(p.as_ref())));
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &v.ns);
        let results = futures::future::join_all(ranked.iter().map(|p| {
            let api = &api;
            async move {
                let name = p.name_any();
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        v.event(
                            ctx,
                            NORMAL,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        Ok(())
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        exp.deletion_observed(key, &key_of(p.as_ref()));
                        Ok(())
                    }
                    Err(e) => {
                        exp.deletion_observed(key, &key_of(p.as_ref()));
                        v.event(
                            ctx,
                            WARNING,
                            "FailedDelete",
                            format!("Error deleting: {}", crate::api_message(&e)),
                        );
                        Err(e)
                    }
                }
            }
        }))
        .await;
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            return Err(e.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_counts_equal_absent_fields() {
        let old = json!({"replicas": 3, "observedGeneration": 2});
        assert!(!status_differs(
            &old,
            &json!({"replicas": 3, "readyReplicas": null, "observedGeneration": 2})
        ));
        assert!(status_differs(
            &old,
            &json!({"replicas": 3, "readyReplicas": 1})
        ));
        assert!(status_differs(
            &old,
            &json!({"replicas": 3, "observedGeneration": 3})
        ));
    }
}
