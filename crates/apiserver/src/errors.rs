//! Storage errors as API errors.

use rkube_api::ApiError;
use rkube_api::resources::Resource;
use rkube_store::Error;

/// Maps a store error for a request about `resource`/`name`.
pub fn store(resource: &Resource, name: &str, e: Error) -> ApiError {
    match e {
        Error::NotFound { .. } => ApiError::not_found(resource, name),
        Error::AlreadyExists { .. } => ApiError::already_exists(resource, name),
        Error::Conflict { .. } => ApiError::conflict(resource, name, rkube_api::status::MODIFIED),
        Error::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        Error::FutureRevision { requested, current } => ApiError::timeout(
            format!("Too large resource version: {requested}, current: {current}"),
            1,
        ),
        Error::Unavailable(m) => ApiError::unavailable(format!("storage is unavailable: {m}")),
        Error::Closed => ApiError::unavailable("storage is shutting down"),
        other => ApiError::internal(other),
    }
}
