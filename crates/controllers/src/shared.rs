//! Informers shared by the controllers of one set, so that each object is held once
//! whatever number of controllers read it (client-go's SharedInformerFactory): pods,
//! nodes, Services and namespaces. A controller registers its handlers and indices, then
//! starts the informer (only the first start runs it) and waits for it to sync. A handler
//! registered after the informer started is first called with every cached object as
//! `Added`, so late controllers see the same picture as early ones.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::Api;
use kube::runtime::watcher;
use rkube_client::{Change, Informer, Store, strip_managed_fields};
use serde::de::DeserializeOwned;

use crate::base::Tasks;

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

/// One informer, many handlers.
pub struct SharedInformer<K> {
    store: Store<K>,
    handlers: Arc<RwLock<Vec<Handler<K>>>>,
    informer: Mutex<Option<Informer<K>>>,
    started: Mutex<bool>,
    tasks: Arc<Mutex<Tasks>>,
}

impl<K> SharedInformer<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn new(api: Api<K>, tasks: &Arc<Mutex<Tasks>>) -> Self {
        let handlers: Arc<RwLock<Vec<Handler<K>>>> = Arc::default();
        let h = handlers.clone();
        let informer = Informer::new(api, watcher::Config::default())
            .with_transform(strip_managed_fields)
            .on_change(move |c: &Change<K>| {
                for f in h.read().unwrap_or_else(|e| e.into_inner()).iter() {
                    f(c);
                }
            });
        SharedInformer {
            store: informer.store(),
            handlers,
            informer: Mutex::new(Some(informer)),
            started: Mutex::new(false),
            tasks: tasks.clone(),
        }
    }

    /// The shared cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Adds a named index to the shared cache (a no-op when it exists).
    pub fn index(&self, name: &str, f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static) {
        if !self.store.has_index(name) {
            self.store.add_index(name, Arc::new(f));
        }
    }

    /// Registers a handler; when the informer runs already, it first sees every cached
    /// object as added.
    pub fn on_change(&self, f: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let mut handlers = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        if *self.started.lock().unwrap_or_else(|e| e.into_inner()) {
            for o in self.store.list() {
                f(&Change::Added(o));
            }
        }
        handlers.push(Box::new(f));
    }

    /// Runs the informer (only the first call does anything) and waits until it synced.
    pub async fn start(&self) {
        {
            let _handlers = self.handlers.write().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = self
                .informer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                *self.started.lock().unwrap_or_else(|e| e.into_inner()) = true;
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .spawn(i.run());
            }
        }
        self.store.wait_synced().await;
    }
}

/// The shared informers of one controller set; their tasks end when it is dropped.
pub struct Shared {
    pub pods: SharedInformer<Pod>,
    pub nodes: SharedInformer<Node>,
    pub services: SharedInformer<Service>,
    pub namespaces: SharedInformer<Namespace>,
}

impl Shared {
    pub fn new(client: &kube::Client) -> Arc<Self> {
        let tasks = Arc::new(Mutex::new(Tasks::new()));
        Arc::new(Shared {
            pods: SharedInformer::new(Api::all(client.clone()), &tasks),
            nodes: SharedInformer::new(Api::all(client.clone()), &tasks),
            services: SharedInformer::new(Api::all(client.clone()), &tasks),
            namespaces: SharedInformer::new(Api::all(client.clone()), &tasks),
        })
    }
}
