//! Writing the scheduler's effects on pods besides binding: `events.k8s.io/v1` Events
//! (`Scheduled`, `FailedScheduling`, `Preempted`, reported by `default-scheduler`) and the
//! pod's `PodScheduled` condition and `nominatedNodeName`. Events go through a bounded
//! queue drained by a few workers; when it is full, events are dropped, as upstream's
//! event broadcaster drops them, so events never slow scheduling down.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

use crate::cache::PodInfo;

/// Events waiting to be written before new ones are dropped (upstream's 1000).
pub const MAX_QUEUED_EVENTS: usize = 1000;
const WORKERS: usize = 4;

/// One event about a pod.
#[derive(Debug)]
pub struct PodEvent {
    pub pod: Arc<PodInfo>,
    pub type_: &'static str,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// Sends events to the writer workers.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<PodEvent>,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Now in RFC 3339 with whole seconds, as conditions carry it.
pub fn now_seconds() -> String {
    let t = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

impl Recorder {
    /// A recorder and the future that writes its events (run it as a task).
    pub fn new(
        client: kube::Client,
        scheduler_name: String,
        instance: String,
    ) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel::<PodEvent>(MAX_QUEUED_EVENTS);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let run = async move {
            let workers = (0..WORKERS).map(|_| {
                let rx = rx.clone();
                let client = client.clone();
                let scheduler_name = scheduler_name.clone();
                let instance = instance.clone();
                async move {
                    loop {
                        let Some(ev) = rx.lock().await.recv().await else {
                            return;
                        };
                        write(&client, &scheduler_name, &instance, ev).await;
                    }
                }
            });
            futures::future::join_all(workers).await;
        };
        (Recorder { tx }, run)
    }

    /// Queues an event; drops it when the queue is full.
    pub fn record(&self, ev: PodEvent) {
        if let Err(mpsc::error::TrySendError::Full(ev)) = self.tx.try_send(ev) {
            tracing::debug!(pod = %ev.pod.key, reason = ev.reason, "event queue full, dropping event");
        }
    }
}

async fn write(client: &kube::Client, scheduler_name: &str, instance: &str, ev: PodEvent) {
    let t = now();
    let stamp = t.0.as_nanosecond();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", ev.pod.name, stamp)),
            namespace: Some(ev.pod.namespace.clone()),
            ..Default::default()
        },
        event_time: Some(t),
        reporting_controller: Some(scheduler_name.to_string()),
        reporting_instance: Some(instance.to_string()),
        action: Some(ev.action.to_string()),
        reason: Some(ev.reason.to_string()),
        note: Some(ev.note),
        type_: Some(ev.type_.to_string()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(ev.pod.name.clone()),
            namespace: Some(ev.pod.namespace.clone()),
            uid: Some(ev.pod.uid.clone()),
            resource_version: ev.pod.pod.metadata.resource_version.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &ev.pod.namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(error = %e, "writing event");
    }
}

/// Sets `PodScheduled=False` (reason `Unschedulable` with `message`) and, when given,
/// `status.nominatedNodeName`, unless the pod already shows exactly that.
pub async fn update_pod_status(
    client: &kube::Client,
    pod: &Pod,
    reason: &str,
    message: &str,
    nominated: Option<&str>,
) -> Result<(), kube::Error> {
    let status = pod.status.as_ref();
    let same_condition = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        });
    let current_nominated = status.and_then(|s| s.nominated_node_name.as_deref());
    let nominated_same = nominated.is_none_or(|n| current_nominated == Some(n));
    if same_condition && nominated_same {
        return Ok(());
    }
    let mut patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now_seconds(),
    }]}});
    if let Some(n) = nominated {
        patch["status"]["nominatedNodeName"] = json!(n);
    }
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    api.patch_status(
        pod.metadata.name.as_deref().unwrap_or(""),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
}
