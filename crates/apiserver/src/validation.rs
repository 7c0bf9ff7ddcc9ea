//! The write path's calls into `rkube-validation`: upstream's defaulting, create/update
//! preparation (status reset or kept, generation, finalizers, QoS, Job selectors, …) and
//! validation of every built-in kind, with its field errors turned into `metav1.Status`
//! causes. Objects are passed in their stored version.

use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};
use rkube_api::status::Cause;
use rkube_validation::{Error, FieldError, Gvk};
use serde_json::Value;

/// The stored version's kind of a resource.
fn gvk(r: &Resource) -> Gvk<'static> {
    let (group, version) = r.storage_version;
    let stored = resources::find_kind(group, version, r.kind).unwrap_or(r);
    Gvk::new(stored.group, stored.version, stored.kind)
}

fn decode_error(e: Error) -> Option<ApiError> {
    match e {
        Error::Decode(d) => Some(ApiError::bad_request(d.to_string())),
        Error::Unsupported { .. } => None,
    }
}

fn causes(errors: Vec<FieldError>) -> Vec<Cause> {
    errors
        .into_iter()
        .map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.body(),
            field: e.field.clone(),
        })
        .collect()
}

/// Applies upstream's defaults.
pub fn default(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    match rkube_validation::default_object(gvk(r), obj) {
        Ok(()) => Ok(()),
        Err(e) => decode_error(e).map_or(Ok(()), Err),
    }
}

/// `PrepareForCreate`: after defaulting and after the uid is set, before validation.
pub fn prepare_for_create(r: &Resource, obj: &mut Value) {
    rkube_validation::prepare_for_create(gvk(r), obj);
    crate::strategy::after_prepare(r, obj);
}

/// `PrepareForUpdate` of the main resource or of a subresource written through
/// (`status`; `finalize`, which changes only a namespace's `spec.finalizers`, built by its
/// handler, and keeps the rest as stored).
pub fn prepare_for_update(r: &Resource, subresource: &str, new: &mut Value, old: &Value) {
    match subresource {
        "status" => rkube_validation::prepare_for_status_update(gvk(r), new, old),
        "finalize" => {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let m = rkube_api::meta::meta_mut(new);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match old_meta.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
        }
        _ => rkube_validation::prepare_for_update(gvk(r), new, old),
    }
    crate::strategy::after_prepare(r, new);
}

/// Field errors of a new object.
pub fn validate_create(r: &Resource, obj: &Value) -> Result<Vec<Cause>, ApiError> {
    match rkube_validation::validate_create(gvk(r), obj) {
        Ok(errors) => Ok(causes(errors)),
        Err(e) => decode_error(e).map_or(Ok(Vec::new()), Err),
    }
}

/// Field errors of an update (through `status` when `status_write`).
pub fn validate_update(
    r: &Resource,
    status_write: bool,
    new: &Value,
    old: &Value,
) -> Result<Vec<Cause>, ApiError> {
    let result = if status_write {
        rkube_validation::validate_status_update(gvk(r), new, old)
    } else {
        rkube_validation::validate_update(gvk(r), new, old)
    };
    match result {
        Ok(errors) => Ok(causes(errors)),
        Err(e) => decode_error(e).map_or(Ok(Vec::new()), Err),
    }
}
