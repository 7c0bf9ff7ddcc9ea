//! WATCH: a stream of `{"type": …, "object": …}` lines from the watch cache.
//!
//! - no `resourceVersion`: the current state as ADDED events (after the cache caught up with
//!   the store), then changes; `resourceVersion=0`: the same from whatever the cache holds;
//! - `resourceVersion=N`: the changes after N (an `ERROR` event with 410 if N is older than
//!   the cache's history);
//! - `sendInitialEvents=true`: the current state, a BOOKMARK annotated
//!   `k8s.io/initial-events-end`, then changes (watch-list);
//! - `allowWatchBookmarks`: periodic BOOKMARKs whose version never runs ahead of an event
//!   not yet sent; `timeoutSeconds` ends the stream.
//!
//! An object that stops matching the selectors is sent as DELETED, one that starts
//! matching as ADDED, as upstream's watch filtering does.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use rkube_api::ApiError;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::list::Selectors;
use super::read::CACHE_WAIT;
use super::{Ctx, present};
use crate::cache::{CacheEvent, Cached, EventType, WatchFromError};
use crate::objects;
use crate::table::{self, Include};
use crate::web::{Body, Output};

/// Encodes watch events for one request.
struct Encoder {
    resource: &'static rkube_api::Resource,
    output: Output,
    include: Include,
    raw: bool,
}

impl Encoder {
    /// The document an event carries for a cached object.
    fn document(&self, c: &Cached) -> Value {
        let obj = present::served(self.resource, c.value());
        match self.output {
            Output::Table => table::table(
                self.resource,
                std::slice::from_ref(&obj),
                self.include,
                json!({"resourceVersion": obj["metadata"]["resourceVersion"].clone()}),
            ),
            Output::Metadata => table::partial_metadata(&obj),
            Output::Json | Output::Yaml | Output::Protobuf { .. } => obj,
        }
    }

    /// One event for a cached object.
    fn object_event(&self, typ: &str, c: &Cached) -> Bytes {
        if self.raw {
            return json_event(typ, &c.json);
        }
        self.event(typ, &self.document(c))
    }

    /// One event in the stream's encoding: a JSON line or a protobuf frame.
    fn event(&self, typ: &str, doc: &Value) -> Bytes {
        if let Output::Protobuf { .. } = self.output {
            match rkube_protobuf::encode_watch_event(typ, doc) {
                Ok(frame) => return Bytes::from(frame),
                Err(e) => {
                    let status = ApiError::internal(format!("encoding a watch event: {e}"));
                    return rkube_protobuf::encode_watch_event("ERROR", &status.to_status())
                        .map(Bytes::from)
                        .unwrap_or_default();
                }
            }
        }
        json_event(typ, &serde_json::to_vec(doc).unwrap_or_default())
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": meta,
        });
        self.event("BOOKMARK", &obj)
    }

    fn error(&self, err: &ApiError) -> Bytes {
        self.event("ERROR", &err.to_status())
    }

    fn content_type(&self) -> &'static str {
        match self.output {
            Output::Protobuf { .. } => rkube_protobuf::WATCH_MEDIA_TYPE,
            _ => "application/json",
        }
    }
}

/// A JSON watch line around an encoded object.
fn json_event(typ: &str, object: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(object.len() + 32);
    buf.put_slice(b"{\"type\":\"");
    buf.put_slice(typ.as_bytes());
    buf.put_slice(b"\",\"object\":");
    buf.put_slice(object);
    buf.put_slice(b"}\n");
    buf.freeze()
}

pub async fn watch(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let sel = Selectors::parse(ctx)?;
    let rv = ctx.query.non_empty("resourceVersion");
    let send_initial = match ctx.query.get("sendInitialEvents") {
        Some("true") => {
            if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !ctx.query.bool("allowWatchBookmarks") {
                return Err(ApiError::bad_request(
                    "allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
            true
        }
        _ => false,
    };
    let bookmarks = ctx.query.bool("allowWatchBookmarks");
    let timeout = match ctx
        .query
        .int("timeoutSeconds")
        .map_err(ApiError::bad_request)?
    {
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        _ => {
            // Upstream spreads long watches between 30 and 60 minutes.
            let jitter = (rkube_api::meta::now().1 as u64) % 1800;
            Duration::from_secs(1800 + jitter)
        }
    };
    let caches = ctx.state.caches.clone();
    let cache = caches
        .for_resource(ctx.resource)
        .ok_or_else(|| ApiError::internal("no cache for the resource"))?
        .clone();
    let prefix = ctx.resource.namespace_prefix(ctx.namespace());
    let encoder = Encoder {
        resource: ctx.resource,
        output: ctx.output,
        include: Include::parse(ctx.query.get("includeObject")).map_err(ApiError::bad_request)?,
        raw: ctx.output == Output::Json && !crate::convert::needs_conversion(ctx.resource),
    };

    // Where the stream starts: a snapshot (initial events) or a backlog after a version.
    let mut initial: Vec<Arc<Cached>> = Vec::new();
    let mut backlog: Vec<Arc<CacheEvent>> = Vec::new();
    let rx: broadcast::Receiver<Arc<CacheEvent>>;
    let start_revision;
    let mut first: Option<Bytes> = None;
    let parsed_rv = rv.map(objects::parse_rv).transpose()?;
    match parsed_rv {
        None | Some(0) => {
            if parsed_rv.is_none() && caches.wait_fresh(CACHE_WAIT).await.is_err() {
                return Err(ApiError::timeout(
                    "the watch cache is not up to date with the store",
                    1,
                ));
            }
            start_revision = caches.revision();
            let (objs, r) = cache.snapshot_and_watch(&prefix);
            initial = objs;
            rx = r;
        }
        Some(n) => {
            if !caches.wait_for(n, CACHE_WAIT).await {
                return Err(ApiError::timeout(
                    format!(
                        "Too large resource version: {n}, current: {}",
                        caches.revision()
                    ),
                    1,
                ));
            }
            if send_initial {
                start_revision = caches.revision();
                let (objs, r) = cache.snapshot_and_watch(&prefix);
                initial = objs;
                rx = r;
            } else {
                start_revision = n;
                match cache.watch_from(Some(n)) {
                    Ok((b, r)) => {
                        backlog = b;
                        rx = r;
                    }
                    Err(WatchFromError::TooOld { requested, oldest }) => {
                        first = Some(encoder.error(&ApiError::expired(format!(
                            "too old resource version: {requested} ({oldest})"
                        ))));
                        rx = cache.watch_from(None).map(|(_, r)| r).map_err(|_| {
                            ApiError::internal("watch cache refused a current watch")
                        })?;
                    }
                }
            }
        }
    }

    let encoder_content_type = encoder.content_type();
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let bookmark_every = ctx.state.config.bookmark_interval;
    let initial_send = initial
        .into_iter()
        .filter(|c| c.key.starts_with(&prefix) && sel.matches_cached(c))
        .collect::<Vec<_>>();
    let ended_with_error = first.is_some();
    tokio::spawn(async move {
        let sel = sel;
        if let Some(err) = first {
            let _ = tx.send(err).await;
        }
        if ended_with_error {
            return;
        }
        let mut last = start_revision;
        for c in &initial_send {
            if tx.send(encoder.object_event("ADDED", c)).await.is_err() {
                return;
            }
        }
        if send_initial
            && tx
                .send(encoder.bookmark(start_revision, true))
                .await
                .is_err()
        {
            return;
        }
        let mut rx = rx;
        let deliver = |e: &CacheEvent, last: &mut i64| -> Option<Bytes> {
            if e.revision <= *last {
                return None;
            }
            *last = e.revision;
            if !e.object.key.starts_with(&prefix) {
                return None;
            }
            let now = sel.matches_cached(&e.object);
            let before = e.prev.as_ref().is_some_and(|p| sel.matches_cached(p));
            let typ = match (e.kind, before, now) {
                (EventType::Deleted, true, _) => "DELETED",
                (EventType::Deleted, false, _) => return None,
                (_, false, true) => "ADDED",
                (_, true, true) => "MODIFIED",
                (_, true, false) => "DELETED",
                (_, false, false) => return None,
            };
            Some(encoder.object_event(typ, &e.object))
        };
        for e in &backlog {
            if let Some(b) = deliver(e, &mut last)
                && tx.send(b).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next_bookmark = tokio::time::Instant::now() + bookmark_every;
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(e) => {
                        if let Some(b) = deliver(&e, &mut last)
                            && tx.send(b).await.is_err()
                        {
                            return;
                        }
                    }
                    // Too slow or the cache was rebuilt: end; the client re-watches.
                    Err(_) => return,
                },
                _ = tokio::time::sleep_until(next_bookmark), if bookmarks => {
                    next_bookmark = tokio::time::Instant::now() + bookmark_every;
                    // Read the revision before checking for pending events: every event up
                    // to it has then been received.
                    let revision = caches.revision();
                    if rx.is_empty() && revision >= last {
                        last = revision;
                        if tx.send(encoder.bookmark(revision, false)).await.is_err() {
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });

    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let content_type = encoder_content_type;
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
