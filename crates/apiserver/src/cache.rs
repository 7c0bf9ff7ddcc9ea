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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

    /// The object as JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
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
    tx: broadcast::Sender<Arc<CacheEvent>>,
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
                tx,
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
        state.oldest = revision;
        // Watchers of the old contents end; they re-list and re-watch.
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        state.tx = tx;
    }

    fn apply(&self, key: String, kind: EventKind, revision: Revision, value: &[u8]) {
        let mut state = self.write();
        let prev = state.objects.get(&key).cloned();
        let event = match kind {
            EventKind::Put => {
                let Ok(obj) = serde_json::from_slice::<Value>(value) else {
                    tracing::warn!(%key, "undecodable object in the store; not cached");
                    return;
                };
                let cached = Arc::new(Cached::new(self.resource, key.clone(), revision, obj));
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
            EventKind::Delete => {
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
                    match serde_json::from_slice::<Value>(&kv.value) {
                        Ok(obj) => {
                            let cached =
                                Cached::new(cache.resource, kv.key.clone(), kv.mod_revision, obj);
                            objects.insert(kv.key.clone(), Arc::new(cached));
                        }
                        Err(e) => tracing::warn!(key = %kv.key, error = %e, "undecodable object"),
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
