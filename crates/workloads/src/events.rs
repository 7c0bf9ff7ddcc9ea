//! Events as upstream's controllers record them (`record.EventRecorder`): core/v1 Events
//! with the controller's component as source, so `kubectl describe` shows
//! `Normal  SuccessfulCreate  …  replicaset-controller  Created pod: web-x2x9k`.
//!
//! Recording never blocks a sync: events go through a channel to one writer task.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;

/// Sends events to the writer task.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
}

/// `Normal` or `Warning`.
pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

impl Recorder {
    /// A recorder and the writer future that posts its events (run it with the controllers).
    pub fn new(client: Client) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let writer = async move {
            while let Some(ev) = rx.recv().await {
                let ns = ev.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                if let Err(e) = api.create(&PostParams::default(), &ev).await {
                    tracing::debug!(error = %e, "writing event failed");
                }
            }
        };
        (Recorder { tx }, writer)
    }

    /// Records an event about `obj` from `component`.
    pub fn event<K>(&self, component: &str, obj: &K, kind: &str, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let ns = obj.namespace().unwrap_or_else(|| "default".into());
        let now = jiff::Timestamp::now();
        let involved = ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(obj.name_any()),
            namespace: obj.namespace(),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            field_path: None,
        };
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", obj.name_any(), now.as_nanosecond())),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.into()),
            message: Some(message),
            source: Some(EventSource {
                component: Some(component.into()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            type_: Some(kind.into()),
            reporting_component: Some(component.into()),
            reporting_instance: Some(component.into()),
            ..Default::default()
        };
        // The writer lives as long as the controllers; a send error means shutdown.
        let _ = self.tx.send(ev);
    }
}
