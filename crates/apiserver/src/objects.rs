//! Objects between the API and the store: stored as JSON without `resourceVersion` (the
//! store's mod revision is the resource version), read back with it set.

use bytes::Bytes;
use rkube_api::{ApiError, meta};
use rkube_store::KeyValue;
use serde_json::Value;

/// The JSON stored for an object.
pub fn to_storage(obj: &mut Value) -> Bytes {
    // Stored objects carry neither: the version is the store's revision, set when read.
    let m = meta::meta_mut(obj);
    m.remove("resourceVersion");
    m.remove("selfLink");
    Bytes::from(serde_json::to_vec(obj).unwrap_or_default())
}

/// An object read from the store, with its resource version.
pub fn from_storage(kv: &KeyValue) -> Result<Value, ApiError> {
    from_storage_bytes(&kv.value, kv.mod_revision, &kv.key)
}

pub fn from_storage_bytes(bytes: &[u8], revision: i64, key: &str) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored object {key} cannot be decoded: {e}")))?;
    meta::set(&mut obj, "resourceVersion", revision.to_string());
    Ok(obj)
}

/// Parses a `resourceVersion` string (a decimal revision).
pub fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}
