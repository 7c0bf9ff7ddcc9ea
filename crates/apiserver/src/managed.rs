//! Field ownership (`metadata.managedFields`) on every write, through the `rkube-patch`
//! library: ordinary writes are recorded as `Update` entries of their field manager;
//! server-side apply records `Apply` entries itself.

use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};
use rkube_patch::{PatchError, UpdateOptions, field_set};
use rkube_schema::{Gvk, Type, catalog};
use serde_json::Value;

/// The schema of a resource's objects as stored.
pub fn stored_type(r: &Resource) -> Option<Type> {
    let (group, version) = r.storage_version;
    let stored = resources::find_kind(group, version, r.kind).unwrap_or(r);
    catalog().type_for_gvk(&Gvk::new(stored.group, stored.version, stored.kind))
}

/// The schema of a resource's objects as served.
pub fn served_type(r: &Resource) -> Option<Type> {
    catalog().type_for_gvk(&Gvk::new(r.group, r.version, r.kind))
}

/// A patch library error as the API reports it.
pub fn patch_error(e: PatchError) -> ApiError {
    let causes: Vec<rkube_api::status::Cause> = e
        .causes()
        .into_iter()
        .map(|(reason, message, field)| rkube_api::status::Cause {
            reason,
            message,
            field,
        })
        .collect();
    let mut err = ApiError::new(e.status_code(), e.reason(), e.to_string());
    if !causes.is_empty() {
        err.details = Some(Box::new(rkube_api::status::Details {
            causes,
            ..Default::default()
        }));
    }
    err
}

/// Fields a write to `subresource` resets, which it therefore does not own.
pub fn ignored(r: &Resource, subresource: &str) -> rkube_patch::fieldpath::Set {
    match subresource {
        "status" => field_set(&[&["spec"], &["metadata"]]),
        _ if r.subresource("status").is_some() => field_set(&[&["status"]]),
        _ => field_set(&[]),
    }
}

/// Records an ordinary write by `manager` of `new` (stored version) over `old`.
pub fn track_update(
    r: &Resource,
    manager: &str,
    subresource: &str,
    old: Option<&Value>,
    new: Value,
) -> Result<Value, ApiError> {
    let Some(ty) = stored_type(r) else {
        return Ok(new);
    };
    let now = rkube_api::meta::now_rfc3339();
    let api_version = r.api_version();
    let opts = UpdateOptions {
        manager,
        api_version: &api_version,
        subresource,
        now: &now,
        ignored: ignored(r, subresource),
    };
    rkube_patch::update_owned(old, new, &ty, &opts).map_err(patch_error)
}
