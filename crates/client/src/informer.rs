//! Shared informers: one list+watch per resource keeping an indexed in-memory [`Store`]
//! current, and handlers called with every [`Change`].
//!
//! The watch is `kube::runtime::watcher` with its default backoff: it lists, watches from
//! the list's resourceVersion with bookmarks, resumes from the last seen version after a
//! dropped connection and re-lists after `410 Gone`. A re-list replaces the store
//! atomically; objects that vanished meanwhile are reported as deleted, changed ones as
//! updated, so handlers see every difference exactly once.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// client-go's object key: `namespace/name`, or `name` for cluster-scoped objects.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let name = obj.meta().name.as_deref().unwrap_or("");
    match obj.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// A function naming the index values of an object (for example its node name).
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// What happened to an object.
#[derive(Debug, Clone)]
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it is now (or was last, for a deletion).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

struct Inner<K> {
    objects: HashMap<String, Arc<K>>,
    indexers: HashMap<String, IndexFn<K>>,
    /// index name → value → keys.
    indices: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl<K> Inner<K> {
    fn unindex(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            let idx = self.indices.entry(name.clone()).or_default();
            for v in f(obj) {
                if let Some(keys) = idx.get_mut(&v) {
                    keys.remove(key);
                    if keys.is_empty() {
                        idx.remove(&v);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            let idx = self.indices.entry(name.clone()).or_default();
            for v in f(obj) {
                idx.entry(v).or_default().insert(key.to_string());
            }
        }
    }

    fn put(&mut self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.objects.remove(&key);
        if let Some(o) = &old {
            self.unindex(&key, o);
        }
        self.index(&key, &obj);
        self.objects.insert(key, obj);
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let old = self.objects.remove(key);
        if let Some(o) = &old {
            self.unindex(key, o);
        }
        old
    }
}

/// The informer's cache: objects by key, with named indices. Cheap to clone (shared).
pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
            synced: self.synced.clone(),
        }
    }
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            inner: Arc::new(RwLock::new(Inner {
                objects: HashMap::new(),
                indexers: HashMap::new(),
                indices: HashMap::new(),
            })),
            synced: tokio::sync::watch::channel(false).0,
        }
    }
}

impl<K> Store<K> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K>> {
        // A poisoned lock means a handler panicked; the map itself is consistent.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The object with key `key` (`namespace/name` or `name`).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        self.read().objects.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Objects whose index `index` has the value `value`; empty for an unknown index.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        let Some(keys) = inner.indices.get(index).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| inner.objects.get(k).cloned())
            .collect()
    }

    /// Keys of the objects whose index `index` has the value `value`.
    pub fn index_keys(&self, index: &str, value: &str) -> Vec<String> {
        self.read()
            .indices
            .get(index)
            .and_then(|i| i.get(value))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether an index of that name exists.
    pub fn has_index(&self, name: &str) -> bool {
        self.read().indexers.contains_key(name)
    }

    /// Adds an index; existing objects are indexed at once.
    pub fn add_index(&self, name: &str, f: IndexFn<K>) {
        let mut inner = self.write();
        let mut idx: HashMap<String, HashSet<String>> = HashMap::new();
        for (k, o) in &inner.objects {
            for v in f(o) {
                idx.entry(v).or_default().insert(k.clone());
            }
        }
        inner.indices.insert(name.to_string(), idx);
        inner.indexers.insert(name.to_string(), f);
    }

    /// Whether the first complete list has been loaded.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first complete list has been loaded.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|s| *s).await;
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;
type Transform<K> = Box<dyn Fn(&mut K) + Send + Sync>;

/// A transform dropping `metadata.managedFields`, which most components never read and
/// which is often the larger part of a small object (client-go users do the same).
pub fn strip_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// A list+watch of one resource feeding a [`Store`] and handlers.
pub struct Informer<K> {
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    handlers: Vec<Handler<K>>,
    transform: Option<Transform<K>>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer over `api` (all namespaces or one) with `config`'s selectors.
    pub fn new(api: Api<K>, config: watcher::Config) -> Self {
        Informer {
            api,
            config,
            store: Store::default(),
            handlers: Vec::new(),
            transform: None,
        }
    }

    /// Adds a named index (before or after the informer runs).
    pub fn with_index(
        self,
        name: &str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.store.add_index(name, Arc::new(f));
        self
    }

    /// Registers a handler, called in order with every change (keep it short: it runs on
    /// the informer's task, like client-go's handlers; typically it adds keys to a queue).
    pub fn on_change(mut self, f: impl Fn(&Change<K>) + Send + Sync + 'static) -> Self {
        self.handlers.push(Box::new(f));
        self
    }

    /// Changes every object before it is stored (client-go's `SetTransform`), for
    /// example [`strip_managed_fields`] to save memory.
    pub fn with_transform(mut self, f: impl Fn(&mut K) + Send + Sync + 'static) -> Self {
        self.transform = Some(Box::new(f));
        self
    }

    /// The store this informer keeps current.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Runs the list+watch until the returned future is dropped. Errors (connection
    /// lost, 410 Gone) are retried with backoff.
    pub async fn run(self) {
        let Informer {
            api,
            config,
            store,
            handlers,
            transform,
        } = self;
        let shape = |mut o: K| {
            if let Some(t) = &transform {
                t(&mut o);
            }
            o
        };
        let stream = watcher(api, config).default_backoff();
        futures::pin_mut!(stream);
        let mut relist: Option<HashMap<String, Arc<K>>> = None;
        while let Some(ev) = stream.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::debug!(error = %e, "informer watch error, retrying");
                    continue;
                }
            };
            let mut changes = Vec::new();
            match ev {
                watcher::Event::Init => relist = Some(HashMap::new()),
                watcher::Event::InitApply(o) => {
                    let o = shape(o);
                    if let Some(buf) = relist.as_mut() {
                        buf.insert(key_of(&o), Arc::new(o));
                    }
                }
                watcher::Event::InitDone => {
                    let fresh = relist.take().unwrap_or_default();
                    let mut inner = store.write();
                    let gone: Vec<String> = inner
                        .objects
                        .keys()
                        .filter(|k| !fresh.contains_key(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        if let Some(old) = inner.remove(&k) {
                            changes.push(Change::Deleted(old));
                        }
                    }
                    for (k, new) in fresh {
                        match inner.put(k, new.clone()) {
                            None => changes.push(Change::Added(new)),
                            Some(old) if old.resource_version() != new.resource_version() => {
                                changes.push(Change::Updated { old, new })
                            }
                            Some(_) => {}
                        }
                    }
                    drop(inner);
                    store.synced.send_replace(true);
                }
                watcher::Event::Apply(o) => {
                    let new = Arc::new(shape(o));
                    match store.write().put(key_of(new.as_ref()), new.clone()) {
                        None => changes.push(Change::Added(new)),
                        Some(old) => changes.push(Change::Updated { old, new }),
                    }
                }
                watcher::Event::Delete(o) => {
                    let o = shape(o);
                    let key = key_of(&o);
                    store.write().remove(&key);
                    // The watch's final state is newer than the cached one.
                    changes.push(Change::Deleted(Arc::new(o)));
                }
            }
            for c in &changes {
                for h in &handlers {
                    h(c);
                }
            }
        }
    }
}
