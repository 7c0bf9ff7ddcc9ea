//! LIST, with upstream's resource-version semantics:
//! - no `resourceVersion`: the most recent state — from the watch cache once it has caught
//!   up with the store (a consistent read);
//! - `resourceVersion=0`: whatever the cache holds (`limit` ignored, as upstream);
//! - `resourceVersion=N` (NotOlderThan): the cache once it has reached N;
//! - `resourceVersionMatch=Exact`: the store at exactly N (410 once compacted);
//! - `continue`: the next page of a paged list, at the first page's revision — from the
//!   cache's snapshot of the first page's state while it is kept, else from the store at
//!   that revision (410 once compacted).
//!
//! Label and field selectors filter items; paging keeps reading until `limit` items match.

use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::Response;
use rkube_api::ApiError;
use rkube_api::meta;
use rkube_api::selectors::{FieldSelector, LabelSelector};
use rkube_store::{KeyRange, RangeRequest, Revision};
use serde_json::{Value, json};

use super::read::CACHE_WAIT;
use super::{Ctx, present};
use crate::cache::Cached;
use crate::objects;
use crate::table::{self, Include};
use crate::web::{Body, Output, respond, respond_bytes};

/// The selectors of a request.
pub struct Selectors {
    pub label: LabelSelector,
    pub field: FieldSelector,
}

impl Selectors {
    pub fn parse(ctx: &Ctx) -> Result<Selectors, ApiError> {
        let label = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let field = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        meta::check_field_selector(ctx.resource.group, ctx.resource.plural, &field)
            .map_err(ApiError::bad_request)?;
        Ok(Selectors { label, field })
    }

    pub fn is_everything(&self) -> bool {
        self.label.is_everything() && self.field.is_everything()
    }

    pub fn matches_cached(&self, c: &Cached) -> bool {
        self.label.matches(&c.labels) && self.field.matches(&c.fields)
    }

    pub fn matches_value(&self, ctx: &Ctx, obj: &Value) -> bool {
        self.label.matches_object(obj)
            && (self.field.is_everything()
                || self.field.matches(&meta::field_set(
                    ctx.resource.group,
                    ctx.resource.plural,
                    obj,
                )))
    }
}

/// A continue token: upstream's format, base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":K}`
/// with K the next key relative to the resource's key prefix.
fn encode_continue(rv: Revision, start: &str) -> String {
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|_| bad("not a valid token"))?;
    if doc["v"] != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rv = doc["rv"]
        .as_i64()
        .filter(|r| *r > 0)
        .ok_or_else(|| bad("invalid resource version"))?;
    let start = doc["start"].as_str().ok_or_else(|| bad("missing start"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("invalid start key"));
    }
    Ok((rv, start.to_string()))
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let sel = Selectors::parse(ctx)?;
    let limit = ctx
        .query
        .int("limit")
        .map_err(ApiError::bad_request)?
        .unwrap_or(0)
        .max(0);
    let cont = ctx.query.non_empty("continue");
    let rv = ctx.query.non_empty("resourceVersion");
    let rv_match = ctx.query.non_empty("resourceVersionMatch");
    match (rv, rv_match, cont) {
        (None, Some(_), _) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        (Some(_), _, Some(_)) => {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        (Some("0"), Some("Exact"), _) => {
            return Err(ApiError::bad_request(
                "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        (_, Some(m), _) if m != "Exact" && m != "NotOlderThan" => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        _ => {}
    }
    let prefix = ctx.resource.namespace_prefix(ctx.namespace());
    if let Some(token) = cont {
        let (rv, start) = decode_continue(token)?;
        let start_key = format!("{}{start}", ctx.resource.key_prefix());
        if let Some(snap) = ctx
            .state
            .caches
            .for_resource(ctx.resource)
            .and_then(|c| c.snapshot(&prefix, rv))
        {
            // Tokens stay valid exactly as long as the store could serve them: until the
            // history they point into is compacted.
            let compacted = ctx
                .state
                .store
                .compacted_revision()
                .await
                .map_err(|e| crate::errors::store(ctx.resource, "", e))?;
            if rv < compacted {
                return Err(ApiError::expired(EXPIRED_CONTINUE));
            }
            return page_from_cache(ctx, &sel, limit, &prefix, rv, snap.items, &start_key);
        }
        return from_store(
            ctx,
            &sel,
            limit,
            rv,
            &format!("{}{start}", ctx.resource.key_prefix()),
            true,
        )
        .await;
    }
    match (rv, rv_match) {
        (Some(rv), Some("Exact")) => {
            let rv = objects::parse_rv(rv)?;
            from_store(ctx, &sel, limit, rv, &prefix, false).await
        }
        (None, _) => match ctx.state.caches.wait_fresh(CACHE_WAIT).await {
            Ok(_) if limit > 0 => first_page_from_cache(ctx, &sel, limit, &prefix),
            Ok(_) => from_cache(ctx, &sel, &prefix),
            // A cache that cannot catch up must not serve a stale "consistent" read.
            Err(_) => from_store(ctx, &sel, limit, 0, &prefix, false).await,
        },
        (Some(rv), _) if rv != "0" && limit > 0 => {
            let rv = objects::parse_rv(rv)?;
            if rv > 0 && !ctx.state.caches.wait_for(rv, CACHE_WAIT).await {
                return from_store(ctx, &sel, limit, 0, &prefix, false).await;
            }
            first_page_from_cache(ctx, &sel, limit, &prefix)
        }
        (Some(rv), _) => {
            let rv = objects::parse_rv(rv)?;
            if rv > 0 && !ctx.state.caches.wait_for(rv, CACHE_WAIT).await {
                return Err(ApiError::timeout(
                    format!(
                        "Too large resource version: {rv}, current: {}",
                        ctx.state.caches.revision()
                    ),
                    1,
                ));
            }
            from_cache(ctx, &sel, &prefix)
        }
    }
}

fn cache_of(ctx: &Ctx) -> Result<&Arc<crate::cache::ResourceCache>, ApiError> {
    ctx.state
        .caches
        .for_resource(ctx.resource)
        .ok_or_else(|| ApiError::internal("no cache for the resource"))
}

fn from_cache(ctx: &Ctx, sel: &Selectors, prefix: &str) -> Result<Response<Body>, ApiError> {
    let cache = cache_of(ctx)?;
    let cursor = ctx.state.caches.revision();
    // `metadata.name=x` narrows the scan to one key.
    let (revision, items): (Revision, Vec<Arc<Cached>>) =
        match sel.field.required_value("metadata.name") {
            Some(name) if ctx.namespace().is_some() || !ctx.resource.namespaced() => (
                cursor,
                cache
                    .get(&ctx.resource.key(ctx.namespace(), name))
                    .into_iter()
                    .filter(|c| sel.matches_cached(c))
                    .collect(),
            ),
            _ => {
                let (revision, all) = cache.list_at(prefix, cursor);
                (
                    revision,
                    all.into_iter().filter(|c| sel.matches_cached(c)).collect(),
                )
            }
        };
    let list_meta = json!({"resourceVersion": revision.to_string()});
    cached_items(ctx, &items, list_meta)
}

/// The first page of a paged list: from the cache's current state, which is kept as a
/// snapshot when more pages follow.
fn first_page_from_cache(
    ctx: &Ctx,
    sel: &Selectors,
    limit: i64,
    prefix: &str,
) -> Result<Response<Body>, ApiError> {
    let cache = cache_of(ctx)?;
    let (revision, items) = cache.list_at(prefix, ctx.state.caches.revision());
    page_from_cache(ctx, sel, limit, prefix, revision, Arc::new(items), "")
}

/// One page of `limit` matching objects from `items` (the state under `prefix` at
/// `revision`), starting at the key `start`.
fn page_from_cache(
    ctx: &Ctx,
    sel: &Selectors,
    limit: i64,
    prefix: &str,
    revision: Revision,
    items: Arc<Vec<Arc<Cached>>>,
    start: &str,
) -> Result<Response<Body>, ApiError> {
    let first = items.partition_point(|c| c.key.as_str() < start);
    let mut page = Vec::new();
    let mut last = None;
    for (i, c) in items.iter().enumerate().skip(first) {
        if limit > 0 && page.len() as i64 >= limit {
            break;
        }
        last = Some(i);
        if sel.matches_cached(c) {
            page.push(c.clone());
        }
    }
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some(last) = last.filter(|l| l + 1 < items.len() && page.len() as i64 >= limit) {
        let key = &items[last].key;
        let relative = key.strip_prefix(&ctx.resource.key_prefix()).unwrap_or(key);
        list_meta["continue"] = encode_continue(revision, &format!("{relative}\u{0}")).into();
        if sel.is_everything() {
            list_meta["remainingItemCount"] = ((items.len() - last - 1) as i64).into();
        }
        if start.is_empty() {
            cache_of(ctx)?.keep_snapshot(prefix, revision, items.clone());
        }
    }
    cached_items(ctx, &page, list_meta)
}

/// A list of cached objects in the negotiated form.
fn cached_items(
    ctx: &Ctx,
    items: &[Arc<Cached>],
    list_meta: Value,
) -> Result<Response<Body>, ApiError> {
    let raw_json = ctx.output == Output::Json && !crate::convert::needs_conversion(ctx.resource);
    if raw_json {
        return Ok(raw_list(ctx, items, &list_meta));
    }
    let values: Vec<Value> = items
        .iter()
        .map(|c| present::served(ctx.resource, c.value()))
        .collect();
    render(ctx, values, list_meta)
}

/// A JSON list made by splicing the cached encodings together.
fn raw_list(ctx: &Ctx, items: &[Arc<Cached>], list_meta: &Value) -> Response<Body> {
    let mut buf =
        BytesMut::with_capacity(64 + items.iter().map(|c| c.json.len() + 1).sum::<usize>());
    buf.put_slice(b"{\"apiVersion\":");
    buf.put_slice(
        Value::from(ctx.resource.api_version())
            .to_string()
            .as_bytes(),
    );
    buf.put_slice(b",\"items\":[");
    for (i, c) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&c.json);
    }
    buf.put_slice(b"],\"kind\":");
    buf.put_slice(Value::from(ctx.resource.list_kind()).to_string().as_bytes());
    buf.put_slice(b",\"metadata\":");
    buf.put_slice(list_meta.to_string().as_bytes());
    buf.put_u8(b'}');
    respond_bytes(200, Bytes::from(buf), "application/json")
}

/// The list in the negotiated form.
fn render(ctx: &Ctx, items: Vec<Value>, list_meta: Value) -> Result<Response<Body>, ApiError> {
    let doc = match ctx.output {
        Output::Table => {
            let include =
                Include::parse(ctx.query.get("includeObject")).map_err(ApiError::bad_request)?;
            table::table(ctx.resource, &items, include, list_meta)
        }
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Output::Json | Output::Yaml | Output::Protobuf { .. } => json!({
            "kind": ctx.resource.list_kind(),
            "apiVersion": ctx.resource.api_version(),
            "metadata": list_meta,
            "items": items,
        }),
    };
    Ok(respond(200, &doc, ctx.output))
}

/// Reads a page (or everything, `limit` 0) from the store at `revision` (0: current),
/// starting at `start`.
async fn from_store(
    ctx: &Ctx,
    sel: &Selectors,
    limit: i64,
    revision: Revision,
    start: &str,
    continuing: bool,
) -> Result<Response<Body>, ApiError> {
    let prefix = ctx.resource.namespace_prefix(ctx.namespace());
    let range = KeyRange::prefix(&prefix);
    let mut at = revision;
    let mut next_start = start.as_bytes().to_vec();
    let mut items = Vec::new();
    let mut cont = None;
    let mut remaining = None;
    loop {
        let want = if limit > 0 {
            limit - items.len() as i64
        } else {
            0
        };
        let req = RangeRequest::new(range.starting_at(next_start.clone()))
            .limit(if limit > 0 { want.max(1) } else { 0 })
            .at_revision(at);
        let resp = match ctx.state.store.range(req).await {
            Ok(r) => r,
            Err(rkube_store::Error::Compacted { .. }) if continuing => {
                return Err(ApiError::expired(EXPIRED_CONTINUE));
            }
            Err(rkube_store::Error::Compacted { .. }) => {
                return Err(ApiError::expired(
                    "The resourceVersion for the provided list is too old.",
                ));
            }
            Err(e) => return Err(crate::errors::store(ctx.resource, "", e)),
        };
        if at == 0 {
            at = resp.revision;
        }
        let mut last_key = None;
        for kv in &resp.kvs {
            last_key = Some(kv.key.clone());
            let obj = objects::from_storage(kv)?;
            if sel.matches_value(ctx, &obj) {
                items.push(obj);
            }
            if limit > 0 && items.len() as i64 >= limit {
                break;
            }
        }
        let consumed_all = last_key.as_deref() == resp.kvs.last().map(|kv| kv.key.as_str());
        let more = resp.more || !consumed_all;
        if limit > 0 && items.len() as i64 >= limit && more {
            let last = last_key.unwrap_or_default();
            let relative = last
                .strip_prefix(&ctx.resource.key_prefix())
                .unwrap_or(&last)
                .to_string();
            cont = Some(encode_continue(at, &format!("{relative}\u{0}")));
            if sel.is_everything() {
                let returned_in_this_read = resp
                    .kvs
                    .iter()
                    .position(|kv| Some(&kv.key) == Some(&last))
                    .map(|p| p as i64 + 1)
                    .unwrap_or(0);
                remaining = Some(resp.count - returned_in_this_read);
            }
            break;
        }
        if !resp.more {
            break;
        }
        let mut s = last_key.unwrap_or_default().into_bytes();
        s.push(0);
        next_start = s;
    }
    let mut list_meta = json!({"resourceVersion": at.to_string()});
    if let Some(c) = cont {
        list_meta["continue"] = c.into();
    }
    if let Some(r) = remaining.filter(|r| *r > 0) {
        list_meta["remainingItemCount"] = r.into();
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| present::served(ctx.resource, o))
        .collect();
    render(ctx, items, list_meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "default/web\u{0}");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/web\u{0}".to_string())
        );
        assert!(decode_continue("garbage!").is_err());
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/x"}"#);
        assert!(decode_continue(&evil).is_err());
    }
}
