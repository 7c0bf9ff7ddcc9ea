//! The watch cache: every stored object, per resource, in memory, so that LIST and WATCH are
//! served without touching the store (DESIGN §5).
//!
//! One store watch on `/registry/` feeds all resources: the dispatcher primes every cache from
//! one revision, then applies the store's events in order and advances a single revision
//! cursor, so after it reaches revision R every cache reflects the store at R. A consistent
//! read waits until the cursor reaches the store's current revision. Each resource keeps a
//! bounded history of recent events so that watches can resume from a resource version; one
//! older than the history gets `410 Gone`. If the store watch fails (e.g. compacted), the
//! caches are primed afresh and open watches are ended (clients re-list, as upstream's).
//!
//! Paged lists are served from **snapshots**: the first page of a `limit`ed list keeps the
//! matching objects as they were at its revision (a vector of shared pointers, no copies),
//! and the following pages read that snapshot, so a whole paged list is one consistent
//! view without going to the store. Snapshots live for [`SNAPSHOT_TTL`]; a continue token
//! whose snapshot is gone is served from the store at its revision, as before.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_api::meta;
use rkube_api::resources::{BUILTIN, Resource};
use rkube_store::{EventKind, KeyRange, RangeRequest, Revision, Store, WatchMessage, WatchOptions};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// Events kept per resource for resuming watches.
const HISTORY: usize = 4096;
/// Buffered live events per resource before a slow watcher is dropped.
const LIVE_BUFFER: usize = 1024;
/// Objects read per page while priming.
const PRIME_PAGE: i64 = 5000;
/// How long a paged list's snapshot is kept for its continue tokens.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(60);
/// Snapshots kept per resource (the oldest is dropped first).
const MAX_SNAPSHOTS: usize = 16;

/// The objects under a key prefix at one revision, in key order.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub revision: Revision,
    pub prefix: String,
    pub items: Arc<Vec<Arc<Cached>>>,
    taken: Instant,
}

/// One object as cached.
#[derive(Debug)]
pub struct Cached {
    pub key: String,
    pub revision: Revision,
    /// The object's JSON with `resourceVersion` set.
    pub json: Bytes,
    pub namespace: Option<String>,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<&'static str, String>,
}

impl Cached {
    fn new(res: &Resource, key: String, revision: Revision, mut obj: Value) -> Cached {
        meta::set(&mut obj, "resourceVersion", revision.to_string());
        Cached {
            namespace: meta::namespace(&obj).map(String::from),
            name: meta::name(&obj).unwrap_or("").to_string(),
            labels: meta::labels(&obj),
            fields: meta::field_set(res.group, res.plural, &obj),
            json: Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
            key,
            revision,
        }
    }

    /// From the stored encoding `stored` (which has no `resourceVersion`): the served JSON
    /// is the stored bytes with the version spliced into `metadata`, which spares decoding
    /// and encoding the object again; only what the cache indexes is decoded
    /// ([`crate::index_view`]). `None` if the bytes are not a JSON object.
    fn from_stored(
        res: &Resource,
        key: String,
        revision: Revision,
        stored: &[u8],
    ) -> Option<Cached> {
        let view = crate::index_view::decode(stored).ok()?;
        let has_version = meta::resource_version(&view).is_some();
        let Some(at) = (!has_version).then(|| metadata_body(stored)).flatten() else {
            let obj: Value = serde_json::from_slice(stored).ok()?;
            return Some(Cached::new(res, key, revision, obj));
        };
        let json = splice_at(stored, at, revision);
        Some(Cached {
            namespace: meta::namespace(&view).map(String::from),
            name: meta::name(&view).unwrap_or("").to_string(),
            labels: meta::labels(&view),
            fields: meta::field_set(res.group, res.plural, &view),
            json: Bytes::from(json),
            key,
            revision,
        })
    }

    /// The object as JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// The stored JSON of an object (which has no `resourceVersion`) as served at `revision`:
/// the version spliced into its `metadata`. `None` if the document has no metadata object.
pub(crate) fn splice_version(stored: &[u8], revision: Revision) -> Option<Vec<u8>> {
    metadata_body(stored).map(|at| splice_at(stored, at, revision))
}

fn splice_at(stored: &[u8], at: usize, revision: Revision) -> Vec<u8> {
    let field = format!("\"resourceVersion\":\"{revision}\"");
    let mut json = Vec::with_capacity(stored.len() + field.len() + 1);
    json.extend_from_slice(&stored[..at]);
    json.extend_from_slice(field.as_bytes());
    if stored.get(at) != Some(&b'}') {
        json.push(b',');
    }
    json.extend_from_slice(&stored[at..]);
    json
}

/// The offset just after the `{` that opens the top-level `metadata` object of the JSON
/// document `doc` (compact or not), or `None` if it has none or is not valid JSON.
fn metadata_body(doc: &[u8]) -> Option<usize> {
    let mut i = skip_ws(doc, 0);
    if doc.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(doc, i);
        match doc.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(doc, i)?;
        let key = &doc[i..key_end];
        i = skip_ws(doc, key_end);
        if doc.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(doc, i + 1);
        if key == b"\"metadata\"" {
            return (doc.get(i) == Some(&b'{')).then_some(i + 1);
        }
        i = skip_value(doc, i)?;
    }
}

fn skip_ws(doc: &[u8], mut i: usize) -> usize {
    while doc.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The offset after the string starting at `i` (at its opening quote).
fn skip_string(doc: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match doc.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The offset after the value starting at `i`.
fn skip_value(doc: &[u8], i: usize) -> Option<usize> {
    match doc.get(i)? {
        b'"' => skip_string(doc, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match doc.get(j)? {
                    b'"' => {
                        j = skip_string(doc, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while doc
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to a cached resource.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub revision: Revision,
    /// The object after the change (for a deletion: its last state, at the deletion's
    /// revision).
    pub object: Arc<Cached>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<Cached>>,
}

struct CacheState {
    objects: BTreeMap<String, Arc<Cached>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Every event after this revision is in `history`.
    oldest: Revision,
    /// The revision of the last event applied (or of the priming).
    last: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
    snapshots: VecDeque<Snapshot>,
}

/// The cache of one stored resource.
pub struct ResourceCache {
    /// The resource whose representation is stored (the storage version).
    pub resource: &'static Resource,
    state: RwLock<CacheState>,
}

/// Buffered events and a receiver of later ones.
pub type WatchStart = (Vec<Arc<CacheEvent>>, broadcast::Receiver<Arc<CacheEvent>>);

/// Why a watch cannot start where asked.
#[derive(Debug)]
pub enum WatchFromError {
    /// The resource version is older than the history: upstream's message numbers.
    TooOld {
        requested: Revision,
        oldest: Revision,
    },
}

impl ResourceCache {
    fn new(resource: &'static Resource) -> Self {
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        ResourceCache {
            resource,
            state: RwLock::new(CacheState {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest: 0,
                last: 0,
                tx,
                snapshots: VecDeque::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached objects under a key prefix (a namespace, or all), in key order.
    pub fn list(&self, prefix: &str) -> Vec<Arc<Cached>> {
        let state = self.read();
        state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The cached objects under a key prefix and the revision they are the state at, given
    /// `cursor`, the revision the dispatcher last published: every event up to it has been
    /// applied, and any applied after it belong to this cache only up to its last one.
    pub fn list_at(&self, prefix: &str, cursor: Revision) -> (Revision, Vec<Arc<Cached>>) {
        let state = self.read();
        let items = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (cursor.max(state.last), items)
    }

    /// Keeps `items` (the state under `prefix` at `revision`) for the following pages of a
    /// paged list.
    pub fn keep_snapshot(&self, prefix: &str, revision: Revision, items: Arc<Vec<Arc<Cached>>>) {
        let snap = Snapshot {
            revision,
            prefix: prefix.to_string(),
            items,
            taken: Instant::now(),
        };
        let mut state = self.write();
        state.snapshots.retain(|s| {
            s.taken.elapsed() < SNAPSHOT_TTL && (s.revision, &s.prefix) != (revision, &snap.prefix)
        });
        if state.snapshots.len() >= MAX_SNAPSHOTS {
            state.snapshots.pop_front();
        }
        state.snapshots.push_back(snap);
    }

    /// The kept snapshot of `prefix` at `revision`, if it has not expired.
    pub fn snapshot(&self, prefix: &str, revision: Revision) -> Option<Snapshot> {
        self.read()
            .snapshots
            .iter()
            .find(|s| {
                s.revision == revision && s.prefix == prefix && s.taken.elapsed() < SNAPSHOT_TTL
            })
            .cloned()
    }

    /// One cached object.
    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.read().objects.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a watch after `from`: the buffered events after it, and a receiver of later
    /// ones. `None` starts at the current state (no backlog).
    pub fn watch_from(&self, from: Option<Revision>) -> Result<WatchStart, WatchFromError> {
        let state = self.read();
        let rx = state.tx.subscribe();
        let Some(from) = from else {
            return Ok((Vec::new(), rx));
        };
        if from < state.oldest {
            return Err(WatchFromError::TooOld {
                requested: from,
                oldest: state.oldest,
            });
        }
        let backlog = state
            .history
            .iter()
            .filter(|e| e.revision > from)
            .cloned()
            .collect();
        Ok((backlog, rx))
    }

    /// The current objects and a receiver of later events, taken together (for watches that
    /// start with the current state).
    pub fn snapshot_and_watch(
        &self,
        prefix: &str,
    ) -> (Vec<Arc<Cached>>, broadcast::Receiver<Arc<CacheEvent>>) {
        let state = self.read();
        let rx = state.tx.subscribe();
        let objects = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (objects, rx)
    }

    fn replace(&self, objects: BTreeMap<String, Arc<Cached>>, revision: Revision) {
        let mut state = self.write();
        state.objects = objects;
        state.history.clear();
        state.snapshots.clear();
        state.oldest = revision;
        state.last = revision;
        // Watchers of the old contents end; they re-list and re-watch.
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        state.tx = tx;
    }

    fn apply(&self, key: String, kind: EventKind, revision: Revision, value: &[u8]) {
        // Decoded before the lock is taken: readers and other writers are not held up.
        let decoded = match kind {
            EventKind::Put => {
                match Cached::from_stored(self.resource, key.clone(), revision, value) {
                    Some(c) => Some(Arc::new(c)),
                    None => {
                        tracing::warn!(%key, "undecodable object in the store; not cached");
                        return;
                    }
                }
            }
            EventKind::Delete => None,
        };
        let mut state = self.write();
        state.last = revision;
        let prev = state.objects.get(&key).cloned();
        let event = match (kind, decoded) {
            (EventKind::Put, Some(cached)) => {
                state.objects.insert(key, cached.clone());
                CacheEvent {
                    kind: if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    revision,
                    object: cached,
                    prev,
                }
            }
            (EventKind::Put, None) => return,
            (EventKind::Delete, _) => {
                let Some(prev) = prev else { return };
                state.objects.remove(&key);
                let last = Arc::new(Cached::new(self.resource, key, revision, prev.value()));
                CacheEvent {
                    kind: EventType::Deleted,
                    revision,
                    object: last,
                    prev: Some(prev),
                }
            }
        };
        let event = Arc::new(event);
        if state.history.len() >= HISTORY
            && let Some(dropped) = state.history.pop_front()
        {
            state.oldest = dropped.revision;
        }
        state.history.push_back(event.clone());
        let _ = state.tx.send(event);
    }
}

/// All resource caches and the dispatcher that feeds them.
pub struct Caches {
    store: Arc<dyn Store>,
    by_storage: HashMap<&'static str, Arc<ResourceCache>>,
    revision: watch::Sender<Revision>,
    ready: AtomicBool,
}

impl Caches {
    /// Caches for every stored built-in resource, keyed by storage name.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        let mut by_storage = HashMap::new();
        for r in BUILTIN {
            // The cache holds the storage version's representation.
            let stored = BUILTIN
                .iter()
                .find(|s| {
                    s.storage == r.storage
                        && (s.group, s.version) == r.storage_version
                        && s.plural == r.storage
                })
                .unwrap_or(r);
            by_storage
                .entry(r.storage)
                .or_insert_with(|| Arc::new(ResourceCache::new(stored)));
        }
        let (revision, _) = watch::channel(0);
        Arc::new(Caches {
            store,
            by_storage,
            revision,
            ready: AtomicBool::new(false),
        })
    }

    pub fn for_resource(&self, resource: &Resource) -> Option<&Arc<ResourceCache>> {
        self.by_storage.get(resource.storage)
    }

    /// Whether the caches have been primed.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The revision every cache reflects.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the caches reflect `revision` (true), or `timeout` passes (false).
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// Waits until the caches reflect everything the store has committed.
    pub async fn wait_fresh(&self, timeout: Duration) -> Result<Revision, rkube_store::Error> {
        let current = self.store.current_revision().await?;
        if self.wait_for(current, timeout).await {
            Ok(self.revision())
        } else {
            Err(rkube_store::Error::Unavailable(format!(
                "the watch cache did not reach revision {current} in {timeout:?}"
            )))
        }
    }

    /// Runs the dispatcher until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.prime_and_follow().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "watch cache: store watch ended; re-listing");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn cache_for_key(&self, key: &str) -> Option<&Arc<ResourceCache>> {
        let storage = key.strip_prefix("/registry/")?.split('/').next()?;
        self.by_storage.get(storage)
    }

    async fn prime_and_follow(&self) -> Result<(), rkube_store::Error> {
        let revision = self.store.current_revision().await?;
        for cache in self.by_storage.values() {
            let prefix = cache.resource.key_prefix();
            let range = KeyRange::prefix(&prefix);
            let mut objects = BTreeMap::new();
            let mut req = RangeRequest::new(range.clone())
                .limit(PRIME_PAGE)
                .at_revision(revision);
            loop {
                let resp = self.store.range(req.clone()).await?;
                for kv in &resp.kvs {
                    match Cached::from_stored(
                        cache.resource,
                        kv.key.clone(),
                        kv.mod_revision,
                        &kv.value,
                    ) {
                        Some(cached) => {
                            objects.insert(kv.key.clone(), Arc::new(cached));
                        }
                        None => tracing::warn!(key = %kv.key, "undecodable object"),
                    }
                }
                if !resp.more {
                    break;
                }
                let mut start = resp
                    .kvs
                    .last()
                    .map(|kv| kv.key.clone().into_bytes())
                    .unwrap_or_default();
                start.push(0);
                req = RangeRequest::new(range.starting_at(start))
                    .limit(PRIME_PAGE)
                    .at_revision(revision);
            }
            cache.replace(objects, revision);
        }
        self.revision.send_replace(revision);
        self.ready.store(true, Ordering::Release);
        let mut watch = self
            .store
            .watch(
                KeyRange::prefix("/registry/"),
                revision + 1,
                WatchOptions {
                    prev_kv: false,
                    progress_interval: Some(Duration::from_millis(100)),
                },
            )
            .await?;
        while let Some(msg) = watch.next_message().await {
            match msg? {
                WatchMessage::Events(events) => {
                    let mut last = self.revision();
                    for e in events {
                        last = e.revision();
                        if let Some(cache) = self.cache_for_key(&e.kv.key) {
                            cache.apply(e.kv.key, e.kind, last, &e.kv.value);
                        }
                    }
                    self.revision.send_replace(last);
                }
                WatchMessage::Progress(rev) => {
                    if rev > self.revision() {
                        self.revision.send_replace(rev);
                    }
                }
            }
        }
        Err(rkube_store::Error::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spliced(doc: &str) -> Value {
        let res = rkube_api::resources::find("", "v1", "configmaps").expect("configmaps");
        let c = Cached::from_stored(res, "k".into(), 42, doc.as_bytes()).expect("cached");
        serde_json::from_slice(&c.json).expect("spliced JSON parses")
    }

    #[test]
    fn the_version_is_spliced_into_metadata() {
        for doc in [
            r#"{"apiVersion":"v1","data":{"metadata":"{\"x\":1}"},"kind":"ConfigMap","metadata":{"name":"a"}}"#,
            r#"{"a":[{"metadata":{}},"]}\\"],"metadata":{},"z":1}"#,
            r#" { "n" : -1.5e3 , "b" : true , "metadata" : { "name" : "a" } } "#,
        ] {
            let v = spliced(doc);
            assert_eq!(v["metadata"]["resourceVersion"], "42", "{doc}");
            let mut want: Value = serde_json::from_str(doc).unwrap();
            want["metadata"]["resourceVersion"] = "42".into();
            assert_eq!(v, want, "{doc}");
        }
        // No metadata object: encoded afresh.
        assert_eq!(
            spliced(r#"{"kind":"X"}"#)["metadata"]["resourceVersion"],
            "42"
        );
        assert_eq!(metadata_body(br#"{"metadata":null}"#), None);
        assert_eq!(metadata_body(br#"{"a":"unterminated"#), None);
        assert_eq!(metadata_body(br#"[1]"#), None);
    }
}
