//! Built-in admission: checks and changes made to requests after decoding and before
//! storage, as upstream's admission plugins do: NamespaceLifecycle (objects are created
//! only in namespaces that exist and are not terminating; the system namespaces cannot be
//! deleted), and on creates [`mutate_create`] (LimitRanger defaults and checks,
//! DefaultTolerationSeconds) and [`resource_quota`] (ResourceQuota, see [`quota`]).

use rkube_api::ApiError;
use rkube_api::resources::{self, Resource};
use serde_json::Value;

use crate::State;

pub mod limits;
pub mod quota;

pub use limits::mutate_create;
pub use quota::resource_quota;

/// Namespaces that may not be deleted.
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// NamespaceLifecycle for a create in `namespace`.
pub async fn namespace_lifecycle(
    state: &State,
    resource: &Resource,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let ns_resource = resources::find("", "v1", "namespaces").expect("namespaces are built in");
    let key = ns_resource.key(None, namespace);
    let cached = state
        .caches
        .for_resource(ns_resource)
        .and_then(|c| c.get(&key))
        .map(|c| c.value());
    // The cache may not have seen a namespace created a moment ago: ask the store.
    let ns: Option<Value> = match cached {
        Some(v) => Some(v),
        None => match state.store.get(&key).await {
            Ok(Some(kv)) => serde_json::from_slice(&kv.value).ok(),
            Ok(None) => None,
            Err(e) => return Err(crate::errors::store(ns_resource, namespace, e)),
        },
    };
    let Some(ns) = ns else {
        return Err(ApiError::not_found(ns_resource, namespace));
    };
    if ns["status"]["phase"] == "Terminating" {
        return Err(ApiError::forbidden(
            &resource.group_resource(),
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        ));
    }
    Ok(())
}
