//! GET of one object: a consistent read from the store when no resource version is given,
//! otherwise from the watch cache once it has reached that version.

use std::time::Duration;

use http::Response;
use rkube_api::ApiError;

use super::{Ctx, present};
use crate::objects;
use crate::web::Body;

/// How long a read waits for the watch cache to reach a requested resource version.
pub const CACHE_WAIT: Duration = Duration::from_secs(3);

pub async fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let obj = load(ctx, ctx.query.get("resourceVersion")).await?;
    present::object(ctx, 200, present::served(ctx.resource, obj))
}

/// Reads the named object in its stored version, honouring `resourceVersion` semantics.
pub async fn load(ctx: &Ctx, rv: Option<&str>) -> Result<serde_json::Value, ApiError> {
    let resource = ctx.resource;
    let key = resource.key(ctx.namespace(), ctx.name());
    match rv {
        None | Some("") => {
            let kv = ctx
                .state
                .store
                .get(&key)
                .await
                .map_err(|e| crate::errors::store(resource, ctx.name(), e))?
                .ok_or_else(|| ApiError::not_found(resource, ctx.name()))?;
            objects::from_storage(&kv)
        }
        Some(rv) => {
            let rv = objects::parse_rv(rv)?;
            let caches = &ctx.state.caches;
            if rv > 0 && !caches.wait_for(rv, CACHE_WAIT).await {
                return Err(ApiError::timeout(
                    format!(
                        "Too large resource version: {rv}, current: {}",
                        caches.revision()
                    ),
                    1,
                ));
            }
            let cache = caches
                .for_resource(resource)
                .ok_or_else(|| ApiError::internal("no cache for the resource"))?;
            cache
                .get(&key)
                .map(|c| c.value())
                .ok_or_else(|| ApiError::not_found(resource, ctx.name()))
        }
    }
}
