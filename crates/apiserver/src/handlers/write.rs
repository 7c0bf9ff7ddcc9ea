//! Writes: create, update (PUT), patch, delete and deletecollection, with upstream's object
//! semantics — decoding with `fieldValidation`, system metadata (uid, creation time,
//! generation), `generateName`, optimistic concurrency on `resourceVersion`, status
//! isolation, admission, `dryRun=All`, finalizers and `deletionTimestamp`, pod graceful
//! deletion, namespace termination, propagation policies, preconditions, and events that
//! expire.

use bytes::Bytes;
use http::Response;
use rkube_api::ApiError;
use rkube_api::meta;
use rkube_api::resources::Resource;
use rkube_store::{Error as StoreError, WriteOptions};
use serde_json::{Value, json};

use super::list::Selectors;
use super::{Ctx, present};
use crate::web::{Body, BodyType, Output, add_warnings, body_type, parse_document, respond};
use crate::{admission, convert, managed, objects, services, strategy, typed, validation};

/// Writes retried on conflicts before giving up (only unconditional writes retry).
const MAX_RETRIES: usize = 20;

/// Characters upstream uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_suffix() -> String {
    let id = uuid::Uuid::new_v4();
    id.as_bytes()
        .iter()
        .take(5)
        .map(|b| NAME_ALPHABET[*b as usize % NAME_ALPHABET.len()] as char)
        .collect()
}

/// `fieldValidation`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

pub fn field_validation(ctx: &Ctx) -> Result<FieldValidation, ApiError> {
    match ctx.query.get("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

/// Top-level fields that decoding consumes (upstream's conversion folds a Secret's
/// `stringData` into `data`): present in the type, absent from the decoded object.
const CONSUMED_ON_DECODE: &[(&str, &str, &str)] = &[("", "Secret", "stringData")];

/// Checks a decoded object against the served type: kind and version, wrong JSON types,
/// unknown fields and the `duplicates` the decoder found (per `fieldValidation`). Returns
/// the pruned object (served version) and warnings.
pub fn check_object(
    ctx: &Ctx,
    obj: Value,
    duplicates: &[String],
) -> Result<(Value, Vec<String>), ApiError> {
    check_object_with(ctx.resource, field_validation(ctx)?, obj, duplicates)
}

/// [`check_object`] without a request at hand.
pub fn check_object_with(
    r: &Resource,
    mode: FieldValidation,
    obj: Value,
    duplicates: &[String],
) -> Result<(Value, Vec<String>), ApiError> {
    let Value::Object(mut map) = obj else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    let expected_version = r.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != r.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )));
        }
        _ => {}
    }
    map.insert("apiVersion".into(), expected_version.into());
    map.insert("kind".into(), r.kind.into());
    let input = Value::Object(map);
    // Decoding through the kind's type both applies upstream's defaults (as upstream's
    // decoder does) and drops the fields the type does not have: the difference between
    // what came in and what came out names them.
    let out = match rkube_validation::defaulted_object(
        rkube_validation::Gvk::new(r.group, r.version, r.kind),
        &input,
    ) {
        Ok(out) => out,
        Err(rkube_validation::Error::Decode(e)) => {
            return Err(ApiError::bad_request(e.to_string()));
        }
        Err(rkube_validation::Error::Unsupported { .. }) => {
            let Some(result) = typed::roundtrip(r.group, r.version, r.kind, input.clone()) else {
                return Ok((input, Vec::new()));
            };
            result.map_err(|e| {
                ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
                    kind = r.kind,
                    version = r.version
                ))
            })?
        }
    };
    // Fields the kind's decoding folds into others are known, though gone from `out`.
    let mut compared = input;
    for (group, kind, field) in CONSUMED_ON_DECODE {
        if r.group == *group
            && r.kind == *kind
            && let Some(m) = compared.as_object_mut()
        {
            m.remove(*field);
        }
    }
    let unknown = typed::dropped_fields(&compared, &out);
    let mut warnings = Vec::new();
    if !unknown.is_empty() || !duplicates.is_empty() {
        let listed: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .chain(duplicates.iter().map(|f| format!("duplicate field {f:?}")))
            .collect();
        match mode {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )));
            }
            FieldValidation::Warn => warnings = listed,
            FieldValidation::Ignore => {}
        }
    }
    Ok((out, warnings))
}

/// Decodes a create or update body (JSON, YAML or protobuf).
fn decode_body(ctx: &Ctx, body: &Bytes) -> Result<(Value, Vec<String>), ApiError> {
    let (obj, duplicates) =
        crate::web::decode_object_noting_duplicates(ctx.content_type.as_deref(), body)?;
    check_object(ctx, obj, &duplicates)
}

fn write_options(ctx: &Ctx) -> WriteOptions {
    if strategy::of(ctx.resource).ttl {
        WriteOptions::with_ttl(ctx.state.config.event_ttl)
    } else {
        WriteOptions::default()
    }
}

fn invalid(resource: &Resource, name: &str, causes: Vec<rkube_api::status::Cause>) -> ApiError {
    ApiError::invalid(resource, resource.kind, name, causes)
}

/// Sets the namespace of a namespaced object from the URL (it must match if given) and
/// clears it on cluster-scoped ones.
fn settle_namespace(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
    if ctx.resource.namespaced() {
        let url = ctx.namespace().unwrap_or("");
        match meta::namespace(obj) {
            Some(ns) if ns != url => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta::set(obj, "namespace", url);
                Ok(())
            }
        }
    } else {
        meta::remove(obj, "namespace");
        Ok(())
    }
}

fn respond_object(
    ctx: &Ctx,
    status: u16,
    obj: Value,
    warnings: &[String],
) -> Result<Response<Body>, ApiError> {
    let mut resp = present::object(ctx, status, present::served(ctx.resource, obj))?;
    add_warnings(&mut resp, warnings);
    Ok(resp)
}

pub async fn create(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let dry_run = ctx.dry_run()?;
    let (obj, warnings) = decode_body(ctx, &body)?;
    let (obj, status, stored) = create_object_stored(ctx, obj, dry_run, true).await?;
    // JSON answers of kinds served as stored are the stored bytes with the version spliced
    // in, as the watch cache serves them, instead of encoding the object again.
    if let (Some(stored), Output::Json) = (&stored, &ctx.output)
        && !convert::needs_conversion(ctx.resource)
        && let Some(rv) = meta::resource_version(&obj).and_then(|v| v.parse::<i64>().ok())
        && let Some(json) = crate::cache::splice_version(stored, rv)
    {
        let mut resp = crate::web::respond_bytes(status, Bytes::from(json), "application/json");
        add_warnings(&mut resp, &warnings);
        return Ok(resp);
    }
    respond_object(ctx, status, obj, &warnings)
}

/// The create path shared by POST, apply-creates and create-on-update. `obj` is in the
/// served version; the stored object is returned (in the stored version) with 201.
/// `track`: record the write in managedFields (server-side apply already did).
pub async fn create_object(
    ctx: &Ctx,
    obj: Value,
    dry_run: bool,
    track: bool,
) -> Result<(Value, u16), ApiError> {
    let (obj, status, _) = create_object_stored(ctx, obj, dry_run, track).await?;
    Ok((obj, status))
}

/// [`create_object`], also returning the stored encoding (`None` on a dry run).
async fn create_object_stored(
    ctx: &Ctx,
    mut obj: Value,
    dry_run: bool,
    track: bool,
) -> Result<(Value, u16, Option<Bytes>), ApiError> {
    let r = ctx.resource;
    settle_namespace(ctx, &mut obj)?;
    if meta::name(&obj).is_none()
        && let Some(prefix) = meta::generate_name(&obj).map(String::from)
    {
        let cut: String = prefix.chars().take(63 - 5).collect();
        meta::set(&mut obj, "name", format!("{cut}{}", generate_suffix()));
    }
    // Upstream's order: defaults, admission, system metadata, allocation, the kind's
    // preparation, validation, field ownership, storage.
    let mut obj = convert::to_storage(r, obj);
    // Defaults were applied when the object was checked; a converted object gets its stored
    // version's too.
    if convert::needs_conversion(r) {
        validation::default(r, &mut obj)?;
    }
    let name = meta::name(&obj).unwrap_or("").to_string();
    if let Some(ns) = ctx.namespace() {
        admission::namespace_lifecycle(&ctx.state, r, ns, &name).await?;
        admission::mutate_create(&ctx.state, r, ns, &name, &mut obj)?;
    }
    if r.group.is_empty() && r.plural == "pods" {
        crate::priority::admit_pod(&ctx.state, r, &mut obj, &name).await?;
    }
    {
        let m = meta::meta_mut(&mut obj);
        for system in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(system);
        }
        m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        m.insert("creationTimestamp".into(), meta::now_rfc3339().into());
    }
    let owner = format!("{}/{}", ctx.namespace().unwrap_or(""), name);
    let allocated = if r.plural == "services" && !name.is_empty() {
        Some(services::allocate_for_create(&ctx.state, r, &mut obj, &owner, &name).await?)
    } else {
        None
    };
    validation::prepare_for_create(r, &mut obj);
    let checked = validation::validate_create(r, &obj).and_then(|causes| {
        if causes.is_empty() {
            Ok(())
        } else {
            Err(invalid(r, &name, causes))
        }
    });
    let checked = checked.and_then(|()| {
        if track {
            obj =
                managed::track_update(r, &ctx.field_manager(), "", None, std::mem::take(&mut obj))?;
        }
        Ok(())
    });
    if let Err(e) = checked {
        if let Some(a) = allocated {
            a.release(&ctx.state).await;
        }
        return Err(e);
    }
    if dry_run {
        if let Some(a) = allocated {
            a.release(&ctx.state).await;
        }
        return Ok((obj, 201, None));
    }
    if let Some(ns) = ctx.namespace()
        && let Err(e) = admission::resource_quota(&ctx.state, r, ns, &name, &obj).await
    {
        if let Some(a) = allocated {
            a.release(&ctx.state).await;
        }
        return Err(e);
    }
    let key = r.key(ctx.namespace(), &name);
    let stored = objects::to_storage(&mut obj);
    match ctx
        .state
        .store
        .create(&key, stored.clone(), write_options(ctx))
        .await
    {
        Ok(kv) => {
            meta::set(&mut obj, "resourceVersion", kv.mod_revision.to_string());
            Ok((obj, 201, Some(stored)))
        }
        Err(e) => {
            if let Some(a) = allocated {
                a.release(&ctx.state).await;
            }
            Err(crate::errors::store(r, &name, e))
        }
    }
}

/// Derives a new object (served version) from the old one (served version).
pub type DeriveFn = Box<dyn Fn(&Value) -> Result<Value, ApiError> + Send + Sync>;

/// How an update derives the new object from the stored one.
pub enum Change {
    /// A whole object (served version), as PUT sends it.
    Replace(Value),
    /// A function of the old object (served version) giving the new one (served version).
    Derive(DeriveFn),
}

/// Updates the named object: the shared path of PUT, patch and subresource writes.
/// `status_write`: only `status` may change. Returns the stored object and the HTTP status.
/// `subresource`: `""`, or the subresource written through (`status` writes change only
/// status). `track`: record the write in managedFields (server-side apply already did).
pub async fn update_object(
    ctx: &Ctx,
    change: Change,
    subresource: &str,
    track: bool,
    dry_run: bool,
) -> Result<(Value, u16), ApiError> {
    let status_write = subresource == "status";
    let r = ctx.resource;
    let name = ctx.name().to_string();
    let key = r.key(ctx.namespace(), &name);
    let s = strategy::of(r);
    for _ in 0..MAX_RETRIES {
        let current = ctx
            .state
            .store
            .get(&key)
            .await
            .map_err(|e| crate::errors::store(r, &name, e))?;
        let Some(kv) = current else {
            return match change {
                Change::Replace(ref obj) if s.create_on_update && !status_write => {
                    create_object(ctx, obj.clone(), dry_run, track).await
                }
                _ => Err(ApiError::not_found(r, &name)),
            };
        };
        let old = objects::from_storage(&kv)?;
        let served_old = present::served(r, old.clone());
        let incoming = match &change {
            Change::Replace(obj) => obj.clone(),
            Change::Derive(f) => f(&served_old)?,
        };
        let mut new = incoming;
        if let Some(n) = meta::name(&new)
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        meta::set(&mut new, "name", name.clone());
        settle_namespace(ctx, &mut new)?;
        // A PUT is conditional when its object carries a version. A patch is conditional
        // only when it sets a version of its own: the one it carried over from the object
        // it was applied to is not a precondition, and such a patch is applied again to the
        // newer object when another write got there first (as upstream does). A patch that
        // named the old version fails on that second round.
        let precondition = match &change {
            Change::Replace(_) => meta::resource_version(&new).map(String::from),
            Change::Derive(_) => meta::resource_version(&new)
                .filter(|rv| Some(*rv) != meta::resource_version(&served_old))
                .map(String::from),
        };
        if let Some(rv) = &precondition
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(r, &name, rkube_api::status::MODIFIED));
        }
        let mut new = convert::to_storage(r, new);
        if !status_write && convert::needs_conversion(r) {
            validation::default(r, &mut new)?;
        }
        validation::prepare_for_update(r, subresource, &mut new, &old);
        // An unconditional update is validated as one at the stored version.
        if meta::resource_version(&new).is_none() {
            meta::set(&mut new, "resourceVersion", kv.mod_revision.to_string());
        }
        if meta::deletion_timestamp(&old).is_some() {
            let added: Vec<String> = meta::finalizers(&new)
                .into_iter()
                .filter(|f| !meta::finalizers(&old).contains(f))
                .collect();
            if !added.is_empty() {
                return Err(invalid(
                    r,
                    &name,
                    vec![rkube_api::status::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                            added
                                .iter()
                                .map(|f| format!("{f:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        let causes = validation::validate_update(r, status_write, &new, &old)?;
        if !causes.is_empty() {
            return Err(invalid(r, &name, causes));
        }
        if track {
            new = managed::track_update(r, &ctx.field_manager(), subresource, Some(&old), new)?;
        }
        let owner = format!("{}/{}", ctx.namespace().unwrap_or(""), name);
        let allocated = if r.plural == "services" && !status_write {
            Some(services::allocate_for_update(&ctx.state, r, &mut new, &old, &owner, &name).await?)
        } else {
            None
        };
        // Nothing changed: nothing is written (upstream does not bump the version).
        let unchanged = {
            let mut a = new.clone();
            meta::remove(&mut a, "resourceVersion");
            let mut b = old.clone();
            meta::remove(&mut b, "resourceVersion");
            a == b
        };
        if unchanged {
            if let Some(a) = allocated {
                a.release(&ctx.state).await;
            }
            return Ok((old, 200));
        }
        // An object being deleted goes once its last finalizer is removed.
        if meta::deletion_timestamp(&new).is_some() && finalized(r, &new) {
            if dry_run {
                return Ok((new, 200));
            }
            match ctx.state.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(_) => {
                    if r.plural == "services" {
                        services::release_dropped(&ctx.state, &old, None).await;
                    }
                    return Ok((new, 200));
                }
                Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                Err(e) => return Err(crate::errors::store(r, &name, e)),
            }
        }
        if dry_run {
            if let Some(a) = allocated {
                a.release(&ctx.state).await;
            }
            return Ok((new, 200));
        }
        match ctx
            .state
            .store
            .update(
                &key,
                objects::to_storage(&mut new),
                kv.mod_revision,
                write_options(ctx),
            )
            .await
        {
            Ok(written) => {
                if r.plural == "services" && !status_write {
                    services::release_dropped(&ctx.state, &old, Some(&new)).await;
                }
                meta::set(
                    &mut new,
                    "resourceVersion",
                    written.mod_revision.to_string(),
                );
                return Ok((new, 200));
            }
            Err(StoreError::Conflict { .. }) => {
                if let Some(a) = allocated {
                    a.release(&ctx.state).await;
                }
                if precondition.is_some() {
                    return Err(ApiError::conflict(r, &name, rkube_api::status::MODIFIED));
                }
            }
            Err(e) => {
                if let Some(a) = allocated {
                    a.release(&ctx.state).await;
                }
                return Err(crate::errors::store(r, &name, e));
            }
        }
    }
    Err(ApiError::conflict(r, &name, rkube_api::status::MODIFIED))
}

/// Whether nothing holds a deleted object any more.
fn finalized(r: &Resource, obj: &Value) -> bool {
    if !meta::finalizers(obj).is_empty() {
        return false;
    }
    if r.plural == "namespaces" {
        return obj["spec"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty());
    }
    true
}

pub async fn update(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let dry_run = ctx.dry_run()?;
    let (obj, warnings) = decode_body(ctx, &body)?;
    let (obj, status) = update_object(ctx, Change::Replace(obj), "", true, dry_run).await?;
    respond_object(ctx, status, obj, &warnings)
}

pub async fn patch(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let (obj, status) = patch_object(ctx, body, "").await?;
    respond_object(ctx, status, obj, &[])
}

/// Applies a patch of any type to the named object (through `subresource`, `""` for the
/// main resource) and stores the result. Server-side apply creates a missing object.
pub async fn patch_object(
    ctx: &Ctx,
    body: Bytes,
    subresource: &str,
) -> Result<(Value, u16), ApiError> {
    let r = ctx.resource;
    let dry_run = ctx.dry_run()?;
    let kind = body_type(ctx.content_type.as_deref())?;
    let force = ctx.query.bool("force");
    if force && kind != BodyType::ApplyPatch {
        return Err(ApiError::bad_request(
            "force flag must be unset for non-apply patch requests",
        ));
    }
    let mode = field_validation(ctx)?;
    let ty = managed::served_type(r);
    match kind {
        BodyType::Json | BodyType::Yaml | BodyType::Protobuf => {
            Err(ApiError::unsupported_media_type(
                ctx.content_type.as_deref().unwrap_or(""),
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml",
                ],
            ))
        }
        BodyType::ApplyPatch => {
            let manager = ctx.field_manager_param().ok_or_else(|| {
                ApiError::invalid(
                    r,
                    "PatchOptions",
                    "",
                    vec![rkube_api::status::Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: is required for apply patch".into(),
                        field: "fieldManager".into(),
                    }],
                )
            })?;
            let Some(ty) = ty else {
                return Err(ApiError::unsupported_media_type(
                    "application/apply-patch+yaml",
                    &[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                    ],
                ));
            };
            let config = parse_document(&body, true)?;
            let (config, _) = check_object_with(r, mode, config, &[])?;
            if let Some(n) = meta::name(&config)
                && n != ctx.name()
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    ctx.name()
                )));
            }
            let api_version = r.api_version();
            let sub = subresource.to_string();
            let ignored = managed::ignored(r, subresource);
            let apply = move |live: Option<&Value>| -> Result<Value, ApiError> {
                let now = meta::now_rfc3339();
                let opts = rkube_patch::ApplyOptions {
                    manager: &manager,
                    api_version: &api_version,
                    subresource: &sub,
                    now: &now,
                    force,
                    ignored: ignored.clone(),
                };
                rkube_patch::apply(live, &config, &ty, &opts).map_err(managed::patch_error)
            };
            let apply = std::sync::Arc::new(apply);
            let derive = apply.clone();
            match update_object(
                ctx,
                Change::Derive(Box::new(move |old| derive(Some(old)))),
                subresource,
                false,
                dry_run,
            )
            .await
            {
                Err(e) if e.code == 404 && subresource.is_empty() => {
                    let mut created = apply(None)?;
                    meta::set(&mut created, "name", ctx.name());
                    create_object(ctx, created, dry_run, false).await
                }
                other => other,
            }
        }
        BodyType::JsonPatch | BodyType::MergePatch | BodyType::StrategicMergePatch => {
            if kind == BodyType::StrategicMergePatch && ty.is_none() {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                    &[
                        "application/json-patch+json",
                        "application/merge-patch+json",
                    ],
                ));
            }
            let derive = move |old: &Value| -> Result<Value, ApiError> {
                let patched = match kind {
                    BodyType::JsonPatch => rkube_patch::json_patch::apply_bytes(old, &body),
                    BodyType::MergePatch => rkube_patch::merge_patch::apply_bytes(old, &body),
                    _ => rkube_patch::strategic::apply_bytes(
                        old,
                        &body,
                        ty.as_ref().expect("checked above"),
                    ),
                }
                .map_err(managed::patch_error)?;
                // The patched object is checked like a submitted one.
                Ok(check_object_with(r, mode, patched, &[])?.0)
            };
            update_object(
                ctx,
                Change::Derive(Box::new(derive)),
                subresource,
                true,
                dry_run,
            )
            .await
        }
    }
}

/// `DeleteOptions` from the body and the query.
struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    rv: Option<String>,
    dry_run: bool,
}

fn delete_options(ctx: &Ctx, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let doc: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        crate::web::decode_object(ctx.content_type.as_deref(), body)?
    };
    let mut grace = doc["gracePeriodSeconds"].as_i64();
    if let Some(g) = ctx
        .query
        .int("gracePeriodSeconds")
        .map_err(ApiError::bad_request)?
    {
        grace = Some(g);
    }
    let mut propagation = doc["propagationPolicy"].as_str().map(String::from);
    if let Some(p) = ctx.query.non_empty("propagationPolicy") {
        propagation = Some(p.to_string());
    }
    if propagation.is_none() {
        let orphan = doc["orphanDependents"]
            .as_bool()
            .or_else(|| ctx.query.get("orphanDependents").map(|v| v == "true"));
        if orphan == Some(true) {
            propagation = Some("Orphan".into());
        }
    }
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {p:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
        )));
    }
    if grace.is_some_and(|g| g < 0) {
        grace = Some(0);
    }
    let dry_run = ctx.dry_run()?
        || doc["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace,
        propagation,
        uid: doc["preconditions"]["uid"].as_str().map(String::from),
        rv: doc["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from),
        dry_run,
    })
}

pub async fn delete(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx, &body)?;
    let r = ctx.resource;
    if r.plural == "namespaces" && admission::IMMORTAL.contains(&ctx.name()) {
        return Err(ApiError::forbidden(
            "namespaces",
            ctx.name(),
            "this namespace may not be deleted",
        ));
    }
    let (obj, gone) = delete_object(ctx, ctx.name(), &opts).await?;
    let obj = present::served(r, obj);
    if gone && !strategy::of(r).return_deleted {
        let uid = meta::uid(&obj).unwrap_or("").to_string();
        return Ok(respond(
            200,
            &rkube_api::status::success(r, ctx.name(), &uid),
            ctx.output,
        ));
    }
    present::object(ctx, 200, obj)
}

/// Deletes (or marks for deletion) one object. Returns its last state and whether it is
/// gone (rather than pending finalizers or a grace period).
async fn delete_object(
    ctx: &Ctx,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let r = ctx.resource;
    let key = r.key(ctx.namespace(), name);
    let s = strategy::of(r);
    for _ in 0..MAX_RETRIES {
        let kv = ctx
            .state
            .store
            .get(&key)
            .await
            .map_err(|e| crate::errors::store(r, name, e))?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let old = objects::from_storage(&kv)?;
        if let Some(uid) = &opts.uid
            && meta::uid(&old) != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&old).unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &opts.rv
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let mut new = old.clone();
        let mut pending = false;
        let now = meta::now().0;
        // Pods on a node get a grace period for the kubelet to stop them.
        if s.graceful {
            let scheduled = old["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            let terminal = matches!(
                old["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            let default_grace = old["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            let grace = if scheduled && !terminal {
                opts.grace.unwrap_or(default_grace)
            } else {
                0
            };
            if grace > 0 {
                let current = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
                if current.is_none_or(|c| grace < c) {
                    meta::set(&mut new, "deletionTimestamp", meta::rfc3339(now + grace));
                    meta::set(&mut new, "deletionGracePeriodSeconds", grace);
                }
                pending = true;
            }
        }
        let mut finalizers = meta::finalizers(&new);
        match opts.propagation.as_deref() {
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            _ => {}
        }
        let namespace_held = r.plural == "namespaces"
            && old["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        if !finalizers.is_empty() || namespace_held {
            if meta::deletion_timestamp(&new).is_none() {
                meta::set(&mut new, "deletionTimestamp", meta::rfc3339(now));
                meta::set(&mut new, "deletionGracePeriodSeconds", 0);
                if meta::generation(&new) > 0 {
                    let g = meta::generation(&new) + 1;
                    meta::set(&mut new, "generation", g);
                }
            }
            if !finalizers.is_empty() {
                meta::set(&mut new, "finalizers", finalizers);
            }
            if r.plural == "namespaces" {
                new["status"]["phase"] = "Terminating".into();
            }
            pending = true;
        }
        if pending {
            if new == old {
                return Ok((old, false));
            }
            if opts.dry_run {
                return Ok((new, false));
            }
            match ctx
                .state
                .store
                .update(
                    &key,
                    objects::to_storage(&mut new),
                    kv.mod_revision,
                    WriteOptions::default(),
                )
                .await
            {
                Ok(written) => {
                    meta::set(
                        &mut new,
                        "resourceVersion",
                        written.mod_revision.to_string(),
                    );
                    return Ok((new, false));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(crate::errors::store(r, name, e)),
            }
        }
        if opts.dry_run {
            return Ok((old, true));
        }
        match ctx.state.store.delete(&key, Some(kv.mod_revision)).await {
            Ok(_) => {
                if r.plural == "services" {
                    services::release_dropped(&ctx.state, &old, None).await;
                }
                return Ok((old, true));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(r, name)),
            Err(e) => return Err(crate::errors::store(r, name, e)),
        }
    }
    Err(ApiError::conflict(r, name, rkube_api::status::MODIFIED))
}

pub async fn delete_collection(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx, &body)?;
    let sel = Selectors::parse(ctx)?;
    let r = ctx.resource;
    let _ = ctx.state.caches.wait_fresh(super::read::CACHE_WAIT).await;
    let cache = ctx
        .state
        .caches
        .for_resource(r)
        .ok_or_else(|| ApiError::internal("no cache for the resource"))?;
    let prefix = r.namespace_prefix(ctx.namespace());
    let targets: Vec<(Option<String>, String)> = cache
        .list(&prefix)
        .into_iter()
        .filter(|c| sel.matches_cached(c))
        .map(|c| (c.namespace.clone(), c.name.clone()))
        .collect();
    let mut deleted = Vec::new();
    for (ns, name) in targets {
        if r.plural == "namespaces" && admission::IMMORTAL.contains(&name.as_str()) {
            continue;
        }
        let sub = Ctx {
            state: ctx.state.clone(),
            user: ctx.user.clone(),
            info: crate::request::RequestInfo {
                namespace: ns,
                name: Some(name.clone()),
                ..ctx.info.clone()
            },
            query: ctx.query.clone(),
            resource: r,
            output: ctx.output,
            content_type: ctx.content_type.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        match delete_object(&sub, &name, &opts).await {
            Ok((obj, _)) => deleted.push(present::served(r, obj)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": r.list_kind(),
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": ctx.state.caches.revision().to_string()},
        "items": deleted,
    });
    Ok(respond(200, &list, ctx.output))
}
