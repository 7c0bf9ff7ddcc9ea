//! Subresources: `status` (writes touch only status), `scale` (an `autoscaling/v1` `Scale`
//! view of a workload's replicas), pod `binding` (the scheduler's assignment to a node),
//! pod `eviction` (a delete that honours PodDisruptionBudgets) and namespace `finalize`.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use rkube_api::resources::{self, Subresource};
use rkube_api::selectors::LabelSelector;
use rkube_api::{ApiError, meta};
use rkube_store::{Error as StoreError, WriteOptions};
use serde_json::{Value, json};

use super::write::{Change, check_object, update_object};
use super::{Ctx, present, read};
use crate::objects;
use crate::web::{Body, BodyType, body_type, respond};

pub async fn handle(ctx: &Ctx, sub: &Subresource, body: Bytes) -> Result<Response<Body>, ApiError> {
    let verb = ctx.info.verb.as_str();
    match (sub.name, verb) {
        ("status" | "approval", "get") => read::get(ctx).await,
        ("status" | "approval", "update") => {
            let dry_run = ctx.dry_run()?;
            let (obj, _) = check_object(ctx, decode(ctx, &body)?, &[])?;
            let (obj, status) =
                update_object(ctx, Change::Replace(obj), "status", true, dry_run).await?;
            present::object(ctx, status, present::served(ctx.resource, obj))
        }
        ("scale", "get") => {
            let obj = read::load(ctx, ctx.query.get("resourceVersion")).await?;
            respond_scale(ctx, &obj)
        }
        ("scale", "update") => update_scale(ctx, &body).await,
        ("binding", "create") => bind(ctx, &body).await,
        ("eviction", "create") => evict(ctx, &body).await,
        ("finalize", "update") => finalize(ctx, &body).await,
        ("status" | "approval", "patch") => {
            let (obj, status) = super::write::patch_object(ctx, body, sub.name).await?;
            present::object(ctx, status, present::served(ctx.resource, obj))
        }
        ("scale", "patch") => patch_scale(ctx, body).await,
        _ => Err(ApiError::method_not_supported(ctx.resource, verb)),
    }
}

fn decode(ctx: &Ctx, body: &Bytes) -> Result<Value, ApiError> {
    crate::web::decode_object(ctx.content_type.as_deref(), body)
}

/// A workload's label selector as a string (`Scale.status.selector`).
fn selector_string(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() {
        LabelSelector::from_object(sel)
            .map(|s| s.to_string())
            .unwrap_or_default()
    } else if let Some(map) = sel.as_object() {
        // ReplicationControllers select with a plain map.
        map.iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        String::new()
    }
}

fn scale_of(obj: &Value) -> Value {
    let m = &obj["metadata"];
    let mut meta = json!({"name": m["name"], "uid": m["uid"], "resourceVersion": m["resourceVersion"],
                          "creationTimestamp": m["creationTimestamp"]});
    if let Some(ns) = m.get("namespace") {
        meta["namespace"] = ns.clone();
    }
    let mut status = json!({"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0)});
    let selector = selector_string(obj);
    if !selector.is_empty() {
        status["selector"] = selector.into();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": status,
    })
}

fn respond_scale(ctx: &Ctx, obj: &Value) -> Result<Response<Body>, ApiError> {
    Ok(respond(200, &scale_of(obj), ctx.output))
}

async fn update_scale(ctx: &Ctx, body: &Bytes) -> Result<Response<Body>, ApiError> {
    let scale = decode(ctx, body)?;
    update_scale_value(ctx, scale).await
}

/// Writes a `Scale`'s replicas to the workload.
async fn update_scale_value(ctx: &Ctx, scale: Value) -> Result<Response<Body>, ApiError> {
    let dry_run = ctx.dry_run()?;
    let scale = crate::typed::roundtrip("autoscaling", "v1", "Scale", scale)
        .unwrap_or_else(|| Err(serde::de::Error::custom("no Scale type")))
        .map_err(|e| {
            ApiError::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: {e}"
            ))
        })?;
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            resources::find("autoscaling", "v1", "horizontalpodautoscalers")
                .unwrap_or(ctx.resource),
            "Scale",
            ctx.name(),
            vec![rkube_api::status::Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        ));
    }
    let rv = meta::resource_version(&scale).map(String::from);
    let change = Change::Derive(Box::new(move |old: &Value| {
        let mut new = old.clone();
        new["spec"]["replicas"] = replicas.into();
        match &rv {
            Some(rv) => meta::set(&mut new, "resourceVersion", rv.clone()),
            None => {
                meta::remove(&mut new, "resourceVersion");
            }
        }
        Ok(new)
    }));
    let (obj, _) = update_object(ctx, change, "scale", true, dry_run).await?;
    respond_scale(ctx, &obj)
}

/// A patch of the `Scale` view: applied to the Scale, whose replicas then go to the
/// workload.
async fn patch_scale(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let current = read::load(ctx, None).await?;
    let scale = scale_of(&current);
    let patched = match body_type(ctx.content_type.as_deref())? {
        BodyType::JsonPatch => rkube_patch::json_patch::apply_bytes(&scale, &body),
        BodyType::MergePatch | BodyType::StrategicMergePatch => {
            rkube_patch::merge_patch::apply_bytes(&scale, &body)
        }
        _ => {
            return Err(ApiError::unsupported_media_type(
                ctx.content_type.as_deref().unwrap_or(""),
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                ],
            ));
        }
    }
    .map_err(crate::managed::patch_error)?;
    update_scale_value(ctx, patched).await
}

/// Assigns a pod to a node (`pods/binding` or the `bindings` resource).
pub async fn bind(ctx: &Ctx, body: &Bytes) -> Result<Response<Body>, ApiError> {
    let binding = decode(ctx, body)?;
    let pods = resources::find("", "v1", "pods").expect("pods are built in");
    let pod_name = if ctx.info.resource == "bindings" {
        meta::name(&binding).unwrap_or("").to_string()
    } else {
        ctx.name().to_string()
    };
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            resources::find("", "v1", "bindings").unwrap_or(pods),
            "Binding",
            &pod_name,
            vec![rkube_api::status::Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    if ctx.dry_run()? {
        return Ok(respond(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ctx.output,
        ));
    }
    let key = pods.key(ctx.namespace(), &pod_name);
    loop {
        let kv = ctx
            .state
            .store
            .get(&key)
            .await
            .map_err(|e| crate::errors::store(pods, &pod_name, e))?
            .ok_or_else(|| ApiError::not_found(pods, &pod_name))?;
        let mut pod = objects::from_storage(&kv)?;
        if meta::deletion_timestamp(&pod).is_some() {
            return Err(ApiError::conflict(pods, &pod_name, "pod is being deleted"));
        }
        if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(
                pods,
                &pod_name,
                &format!("pod {pod_name} is already assigned to node \"{existing}\""),
            ));
        }
        pod["spec"]["nodeName"] = node.clone().into();
        if !pod["status"].is_object() {
            pod["status"] = json!({});
        }
        let mut conditions: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "PodScheduled");
        conditions.push(json!({"type": "PodScheduled", "status": "True",
                               "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
        pod["status"]["conditions"] = conditions.into();
        match ctx
            .state
            .store
            .update(
                &key,
                objects::to_storage(&mut pod),
                kv.mod_revision,
                WriteOptions::default(),
            )
            .await
        {
            Ok(_) => break,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(crate::errors::store(pods, &pod_name, e)),
        }
    }
    Ok(respond(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ctx.output,
    ))
}

/// Evicts a pod: a delete that a PodDisruptionBudget may refuse (429).
async fn evict(ctx: &Ctx, body: &Bytes) -> Result<Response<Body>, ApiError> {
    let eviction = decode(ctx, body)?;
    let pods = ctx.resource;
    let name = ctx.name().to_string();
    let ns = ctx.namespace().unwrap_or("").to_string();
    let pod = read::load(ctx, None).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let pdbs = resources::find("policy", "v1", "poddisruptionbudgets").expect("built in");
    // Pods that are not running do not count against a budget.
    if !matches!(phase, "Succeeded" | "Failed" | "Pending") {
        let labels = meta::labels(&pod);
        let cache = ctx
            .state
            .caches
            .for_resource(pdbs)
            .ok_or_else(|| ApiError::internal("no cache for poddisruptionbudgets"))?;
        let matching: Vec<Arc<crate::cache::Cached>> = cache
            .list(&pdbs.namespace_prefix(Some(&ns)))
            .into_iter()
            .filter(|c| {
                let pdb = c.value();
                LabelSelector::from_object(&pdb["spec"]["selector"])
                    .map(|s| !s.requirements.is_empty() && s.matches(&labels))
                    .unwrap_or(false)
            })
            .collect();
        if matching.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(c) = matching.first() {
            consume_disruption(ctx, pdbs, c, &name).await?;
        }
    }
    let del_body = eviction
        .get("deleteOptions")
        .filter(|o| !o.is_null())
        .map(|o| Bytes::from(o.to_string()))
        .unwrap_or_default();
    let del_ctx = Ctx {
        state: ctx.state.clone(),
        user: ctx.user.clone(),
        info: crate::request::RequestInfo {
            subresource: None,
            verb: "delete".into(),
            ..ctx.info.clone()
        },
        query: ctx.query.clone(),
        resource: pods,
        output: ctx.output,
        content_type: Some("application/json".into()),
        user_agent: ctx.user_agent.clone(),
    };
    super::write::delete(&del_ctx, del_body).await?;
    Ok(respond(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ctx.output,
    ))
}

/// Takes one allowed disruption from a budget, or refuses with 429.
async fn consume_disruption(
    ctx: &Ctx,
    pdbs: &'static resources::Resource,
    cached: &crate::cache::Cached,
    pod: &str,
) -> Result<(), ApiError> {
    let key = cached.key.clone();
    loop {
        let kv = ctx
            .state
            .store
            .get(&key)
            .await
            .map_err(|e| crate::errors::store(pdbs, &cached.name, e))?
            .ok_or_else(|| ApiError::not_found(pdbs, &cached.name))?;
        let mut pdb = objects::from_storage(&kv)?;
        let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        let observed = pdb["status"]["observedGeneration"].as_i64().unwrap_or(0);
        if observed < meta::generation(&pdb) || allowed <= 0 {
            let desired = pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0);
            let current = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0);
            let mut err = ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            err.details = Some(Box::new(rkube_api::status::Details {
                causes: vec![rkube_api::status::Cause {
                    reason: "DisruptionBudget".into(),
                    message: format!(
                        "The disruption budget {} needs {desired} healthy pods and has {current} currently",
                        cached.name
                    ),
                    field: String::new(),
                }],
                retry_after_seconds: Some(10),
                ..Default::default()
            }));
            return Err(err);
        }
        pdb["status"]["disruptionsAllowed"] = (allowed - 1).into();
        pdb["status"]["disruptedPods"][pod] = meta::now_rfc3339().into();
        match ctx
            .state
            .store
            .update(
                &key,
                objects::to_storage(&mut pdb),
                kv.mod_revision,
                WriteOptions::default(),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(crate::errors::store(pdbs, &cached.name, e)),
        }
    }
}

/// `namespaces/<name>/finalize`: replaces only `spec.finalizers`.
async fn finalize(ctx: &Ctx, body: &Bytes) -> Result<Response<Body>, ApiError> {
    let dry_run = ctx.dry_run()?;
    let ns = decode(ctx, body)?;
    let finalizers = ns["spec"]["finalizers"].clone();
    let rv = meta::resource_version(&ns).map(String::from);
    let change = Change::Derive(Box::new(move |old: &Value| {
        let mut new = old.clone();
        if finalizers.is_null() {
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("finalizers");
            }
        } else {
            new["spec"]["finalizers"] = finalizers.clone();
        }
        match &rv {
            Some(rv) => meta::set(&mut new, "resourceVersion", rv.clone()),
            None => {
                meta::remove(&mut new, "resourceVersion");
            }
        }
        Ok(new)
    }));
    let (obj, status) = update_object(ctx, change, "finalize", true, dry_run).await?;
    present::object(ctx, status, present::served(ctx.resource, obj))
}
