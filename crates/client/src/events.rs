//! core/v1 Events as client-go's `record` package writes them: an [`EventBroadcaster`]
//! owns one writer task and one [`Correlator`]; [`Recorder`]s (one per component, the
//! Event's `source.component`) hand events to it through a bounded channel and never wait
//! (a full channel drops the event, as upstream's broadcaster does).
//!
//! The correlator is upstream's `EventCorrelator`, in its order:
//! 1. **aggregation**: events that differ only in their message (same source, involved
//!    object, type, reason) are counted per 10-minute window; from the 10th distinct message
//!    on they are folded into one Event whose message is prefixed
//!    `(combined from similar events): `;
//! 2. **de-duplication**: an event identical to one already written (same source, object,
//!    type, reason, message) is not created again — the existing Event is PATCHed with the
//!    next `count`, the new `lastTimestamp` and message (created anew if it is gone);
//! 3. **spam filter**: a token bucket per source and object (burst 25, one token per 5
//!    minutes) drops what exceeds it, including de-duplicated updates.
//!
//! Each of the three caches is an LRU of 4096 entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

/// Event type `Normal`.
pub const NORMAL: &str = "Normal";
/// Event type `Warning`.
pub const WARNING: &str = "Warning";

/// Events waiting for the writer (upstream's `maxQueuedEvents`).
const QUEUE_LEN: usize = 1000;
/// Attempts to write one event when the API server cannot be reached (upstream's
/// `maxTriesPerEvent`), and the pause between them (its default `sleepDuration`).
const MAX_TRIES: u32 = 12;
const RETRY_SLEEP: Duration = Duration::from_secs(10);

/// The correlator's limits; [`CorrelatorConfig::default`] is upstream's.
#[derive(Debug, Clone)]
pub struct CorrelatorConfig {
    /// Entries in each LRU cache.
    pub cache_size: usize,
    /// Distinct messages of similar events after which they are aggregated.
    pub max_events: usize,
    /// The window of similar events.
    pub max_interval: Duration,
    /// Spam filter: bucket size …
    pub burst: f64,
    /// … and tokens added per second.
    pub qps: f64,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            cache_size: 4096,
            max_events: 10,
            max_interval: Duration::from_secs(600),
            burst: 25.0,
            qps: 1.0 / 300.0,
        }
    }
}

/// A map holding at most `cap` entries, evicting the least recently used.
struct Lru<K, V> {
    cap: usize,
    tick: u64,
    map: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new(cap: usize) -> Self {
        Lru {
            cap: cap.max(1),
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn touch(&mut self, k: &K) {
        self.tick += 1;
        if let Some((_, t)) = self.map.get_mut(k) {
            self.order.remove(t);
            *t = self.tick;
            self.order.insert(self.tick, k.clone());
        }
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.touch(k);
        self.map.get_mut(k).map(|(v, _)| v)
    }

    fn insert(&mut self, k: K, v: V) {
        self.tick += 1;
        if let Some((_, t)) = self.map.insert(k.clone(), (v, self.tick)) {
            self.order.remove(&t);
        }
        self.order.insert(self.tick, k);
        while self.map.len() > self.cap {
            match self.order.pop_first() {
                Some((_, old)) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Messages of similar events seen in the current window.
struct AggregateRecord {
    messages: BTreeSet<String>,
    last: Timestamp,
}

/// The Event written for a key: where to patch it and its count so far.
#[derive(Clone)]
struct EventLog {
    count: i32,
    first: Option<Time>,
    name: String,
}

/// A token bucket of the spam filter.
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// What to do with a recorded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Correlated {
    /// Dropped by the spam filter.
    Skip,
    /// A new Event to create.
    Create(Event),
    /// An existing Event (named in `event`) to update with this strategic merge patch;
    /// `event` is what to create should it be gone.
    Patch {
        event: Event,
        patch: serde_json::Value,
    },
}

impl Correlated {
    /// The event to write, if any.
    pub fn event(&self) -> Option<&Event> {
        match self {
            Correlated::Skip => None,
            Correlated::Create(e) | Correlated::Patch { event: e, .. } => Some(e),
        }
    }
}

/// Upstream's `EventCorrelator`: aggregation, de-duplication and the spam filter.
pub struct Correlator {
    config: CorrelatorConfig,
    aggregates: Lru<String, AggregateRecord>,
    logs: Lru<String, EventLog>,
    buckets: Lru<String, Bucket>,
}

fn source_of(e: &Event) -> (String, String) {
    let s = e.source.clone().unwrap_or_default();
    (s.component.unwrap_or_default(), s.host.unwrap_or_default())
}

/// Source, object and type: the spam filter's key.
fn spam_key(e: &Event) -> String {
    let (component, host) = source_of(e);
    let o = &e.involved_object;
    [
        component,
        host,
        o.kind.clone().unwrap_or_default(),
        o.namespace.clone().unwrap_or_default(),
        o.name.clone().unwrap_or_default(),
        o.uid.clone().unwrap_or_default(),
        o.api_version.clone().unwrap_or_default(),
        e.type_.clone().unwrap_or_default(),
    ]
    .join("\u{0}")
}

/// Everything but the message: the key of similar events.
fn aggregate_key(e: &Event) -> String {
    [
        spam_key(e),
        e.reason.clone().unwrap_or_default(),
        e.reporting_component.clone().unwrap_or_default(),
        e.reporting_instance.clone().unwrap_or_default(),
    ]
    .join("\u{0}")
}

/// Everything that makes two events identical.
fn event_key(e: &Event) -> String {
    [
        spam_key(e),
        e.involved_object.field_path.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        e.message.clone().unwrap_or_default(),
    ]
    .join("\u{0}")
}

/// `<object name>.<hex nanoseconds>`, upstream's Event names.
fn event_name(object: &ObjectReference, now: Timestamp) -> String {
    format!(
        "{}.{:x}",
        object.name.as_deref().unwrap_or_default(),
        now.as_nanosecond()
    )
}

impl Correlator {
    pub fn new(config: CorrelatorConfig) -> Self {
        Correlator {
            aggregates: Lru::new(config.cache_size),
            logs: Lru::new(config.cache_size),
            buckets: Lru::new(config.cache_size),
            config,
        }
    }

    /// Decides what to write for `event`, observed at `now`.
    pub fn correlate(&mut self, event: Event, now: Timestamp) -> Correlated {
        self.correlate_keyed(event, now).0
    }

    /// [`Correlator::correlate`], with the key the decision was made under.
    fn correlate_keyed(&mut self, event: Event, now: Timestamp) -> (Correlated, String) {
        let (event, key) = self.aggregate(event, now);
        let spam = spam_key(&event);
        let observed = self.observe(event, &key);
        if !self.allow(spam, now) {
            return (Correlated::Skip, key);
        }
        (observed, key)
    }

    /// Notes what the API server stored for an event correlated under `key` (its name, as
    /// a re-created Event may differ, and its count).
    fn written(&mut self, key: &str, stored: &Event) {
        self.logs.insert(
            key.to_string(),
            EventLog {
                count: stored.count.unwrap_or(1),
                first: stored.first_timestamp.clone(),
                name: stored.metadata.name.clone().unwrap_or_default(),
            },
        );
    }

    /// Step 1: the event itself and its de-duplication key, or from the `max_events`-th
    /// distinct message in the window, the aggregate Event and the aggregate key.
    fn aggregate(&mut self, event: Event, now: Timestamp) -> (Event, String) {
        let akey = aggregate_key(&event);
        let message = event.message.clone().unwrap_or_default();
        let window = self.config.max_interval;
        let fresh = || AggregateRecord {
            messages: BTreeSet::new(),
            last: now,
        };
        let mut record = match self.aggregates.get_mut(&akey) {
            Some(r) => std::mem::replace(r, fresh()),
            None => fresh(),
        };
        let elapsed = now.duration_since(record.last);
        if elapsed.as_secs_f64() > window.as_secs_f64() {
            record = fresh();
        }
        record.messages.insert(message.clone());
        record.last = now;
        let n = record.messages.len();
        if n < self.config.max_events {
            self.aggregates.insert(akey, record);
            let key = event_key(&event);
            return (event, key);
        }
        // Keep the set one below the limit, so each new message lands here again.
        if let Some(first) = record.messages.iter().next().cloned() {
            record.messages.remove(&first);
        }
        self.aggregates.insert(akey.clone(), record);
        let t = Time(now);
        let combined = Event {
            metadata: ObjectMeta {
                name: Some(event_name(&event.involved_object, now)),
                namespace: event.metadata.namespace.clone(),
                ..Default::default()
            },
            count: Some(1),
            first_timestamp: Some(t.clone()),
            last_timestamp: Some(t),
            message: Some(format!("(combined from similar events): {message}")),
            involved_object: event.involved_object,
            type_: event.type_,
            reason: event.reason,
            source: event.source,
            reporting_component: event.reporting_component,
            reporting_instance: event.reporting_instance,
            ..Default::default()
        };
        (combined, akey)
    }

    /// Step 2: a create for a key not seen before, else a patch of the Event written for
    /// it with the next count.
    fn observe(&mut self, mut event: Event, key: &str) -> Correlated {
        let last = self.logs.get_mut(&key.to_string()).cloned();
        let Some(last) = last else {
            self.logs.insert(
                key.to_string(),
                EventLog {
                    count: event.count.unwrap_or(1),
                    first: event.first_timestamp.clone(),
                    name: event.metadata.name.clone().unwrap_or_default(),
                },
            );
            return Correlated::Create(event);
        };
        let count = last.count.saturating_add(1);
        event.metadata.name = Some(last.name.clone());
        event.first_timestamp = last.first.clone();
        event.count = Some(count);
        self.logs.insert(
            key.to_string(),
            EventLog {
                count,
                ..last.clone()
            },
        );
        let patch = json!({
            "count": count,
            "lastTimestamp": event.last_timestamp,
            "message": event.message,
        });
        Correlated::Patch { event, patch }
    }

    /// Step 3: whether the source+object's bucket has a token left.
    fn allow(&mut self, key: String, now: Timestamp) -> bool {
        let (burst, qps) = (self.config.burst, self.config.qps);
        if self.buckets.get_mut(&key).is_none() {
            let full = Bucket {
                tokens: burst,
                at: now,
            };
            self.buckets.insert(key.clone(), full);
        }
        let Some(bucket) = self.buckets.get_mut(&key) else {
            return true;
        };
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * qps).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Entries in the (aggregation, de-duplication, spam) caches.
    pub fn cache_lens(&self) -> (usize, usize, usize) {
        (self.aggregates.len(), self.logs.len(), self.buckets.len())
    }
}

/// A core/v1 Event about `object` as upstream's recorder makes it (`makeEvent`).
pub fn make_event(
    source: &EventSource,
    object: &ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Event {
    let namespace = object
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let t = Time(now);
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(object, now)),
            namespace: Some(namespace),
            ..Default::default()
        },
        involved_object: object.clone(),
        reason: Some(reason.into()),
        message: Some(message),
        first_timestamp: Some(t.clone()),
        last_timestamp: Some(t),
        count: Some(1),
        type_: Some(type_.into()),
        source: Some(source.clone()),
        reporting_component: source.component.clone(),
        reporting_instance: source.host.clone(),
        ..Default::default()
    }
}

/// An ObjectReference to a typed object (what events are about).
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

/// The shared end of the event pipeline: makes [`Recorder`]s, feeds the writer.
#[derive(Clone)]
pub struct EventBroadcaster {
    tx: mpsc::Sender<Event>,
}

impl EventBroadcaster {
    /// A broadcaster and its writer future (run it as long as the recorders are used; it
    /// ends when every sender is dropped).
    pub fn new(client: Client) -> (EventBroadcaster, impl Future<Output = ()> + Send + 'static) {
        Self::with_config(client, CorrelatorConfig::default())
    }

    pub fn with_config(
        client: Client,
        config: CorrelatorConfig,
    ) -> (EventBroadcaster, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        (EventBroadcaster { tx }, write_events(client, config, rx))
    }

    /// A recorder whose events come from `component`.
    pub fn recorder(&self, component: &str) -> Recorder {
        Recorder {
            tx: self.tx.clone(),
            source: EventSource {
                component: Some(component.into()),
                host: None,
            },
        }
    }

    /// Records an event about `obj` from `component` (see [`Recorder::event`]).
    pub fn event<K>(&self, component: &str, obj: &K, type_: &str, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.recorder(component).event(obj, type_, reason, message);
    }
}

/// Records events from one component; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    source: EventSource,
}

impl Recorder {
    /// A recorder with its own writer future (one component's broadcaster).
    pub fn new(
        client: Client,
        component: &str,
    ) -> (Recorder, impl Future<Output = ()> + Send + 'static) {
        let (b, writer) = EventBroadcaster::new(client);
        (b.recorder(component), writer)
    }

    /// Records an event about `obj`.
    pub fn event<K>(&self, obj: &K, type_: &str, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.event_ref(&object_reference(obj), type_, reason, message);
    }

    /// Records an event about the object `object` refers to.
    pub fn event_ref(&self, object: &ObjectReference, type_: &str, reason: &str, message: String) {
        let ev = make_event(
            &self.source,
            object,
            type_,
            reason,
            message,
            Timestamp::now(),
        );
        if let Err(mpsc::error::TrySendError::Full(ev)) = self.tx.try_send(ev) {
            tracing::debug!(reason = ?ev.reason, object = ?ev.involved_object.name, "event queue full; event dropped");
        }
    }
}

/// The writer: correlates each event and creates or patches it.
async fn write_events(client: Client, config: CorrelatorConfig, mut rx: mpsc::Receiver<Event>) {
    let mut correlator = Correlator::new(config);
    while let Some(ev) = rx.recv().await {
        let (decision, key) = correlator.correlate_keyed(ev, Timestamp::now());
        let Some(event) = decision.event().cloned() else {
            continue;
        };
        for attempt in 0..MAX_TRIES {
            match write_one(&client, &decision, &event).await {
                Ok(Some(stored)) => {
                    correlator.written(&key, &stored);
                    break;
                }
                Ok(None) => break,
                Err(()) if attempt + 1 < MAX_TRIES => {
                    let pause = if attempt == 0 {
                        RETRY_SLEEP.mul_f64(rand::random::<f64>())
                    } else {
                        RETRY_SLEEP
                    };
                    tokio::time::sleep(pause).await;
                }
                Err(()) => {
                    tracing::warn!(reason = ?event.reason, "unable to write event (retry limit exceeded)")
                }
            }
        }
    }
}

/// One attempt: `Ok(Some(stored))` when written, `Ok(None)` when the server rejected it
/// (not retried, as upstream), `Err` when it could not be reached (retried).
async fn write_one(
    client: &Client,
    decision: &Correlated,
    event: &Event,
) -> Result<Option<Event>, ()> {
    let ns = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let mut result = None;
    if let Correlated::Patch { patch, .. } = decision {
        let name = event.name_any();
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            r => result = Some(r),
        }
    }
    let result = match result {
        Some(r) => r,
        None => {
            let mut fresh = event.clone();
            fresh.metadata.resource_version = None;
            api.create(&PostParams::default(), &fresh).await
        }
    };
    match result {
        Ok(stored) => Ok(Some(stored)),
        Err(kube::Error::Api(s)) => {
            tracing::debug!(reason = ?event.reason, error = %s.message, "server rejected event (will not retry)");
            Ok(None)
        }
        Err(e) => {
            tracing::debug!(reason = ?event.reason, error = %e, "unable to write event (may retry)");
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(reason: &str, message: &str, at: Timestamp) -> Event {
        let src = EventSource {
            component: Some("replicaset-controller".into()),
            host: None,
        };
        let obj = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("ReplicaSet".into()),
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        make_event(&src, &obj, WARNING, reason, message.into(), at)
    }

    fn t0() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("valid time")
    }

    fn secs(s: i64) -> Timestamp {
        t0() + k8s_openapi::jiff::SignedDuration::from_secs(s)
    }

    #[test]
    fn identical_events_patch_one_event_with_growing_count() {
        let mut c = Correlator::new(CorrelatorConfig::default());
        let first = c.correlate(ev("FailedCreate", "quota", t0()), t0());
        let Correlated::Create(created) = first else {
            panic!("first event must be created, got {first:?}");
        };
        let name = created.metadata.name.clone();
        for n in 2..=5 {
            let d = c.correlate(ev("FailedCreate", "quota", secs(n)), secs(n));
            let Correlated::Patch { event, patch } = d else {
                panic!("repeat must be a patch, got {d:?}");
            };
            assert_eq!(event.metadata.name, name, "patches the first Event");
            assert_eq!(event.count, Some(n as i32));
            assert_eq!(event.first_timestamp, created.first_timestamp);
            assert_eq!(patch["count"], json!(n));
            assert_eq!(patch["message"], json!("quota"));
            assert_eq!(patch["lastTimestamp"], json!(Time(secs(n))));
        }
        // A different reason is a different Event.
        assert!(matches!(
            c.correlate(ev("FailedDelete", "quota", secs(9)), secs(9)),
            Correlated::Create(_)
        ));
    }

    #[test]
    fn the_tenth_distinct_message_is_aggregated() {
        let mut c = Correlator::new(CorrelatorConfig::default());
        for i in 0..9 {
            let d = c.correlate(ev("FailedCreate", &format!("m{i}"), secs(i)), secs(i));
            assert!(matches!(d, Correlated::Create(_)), "message {i}: {d:?}");
        }
        let d = c.correlate(ev("FailedCreate", "m9", secs(10)), secs(10));
        let Correlated::Create(agg) = d else {
            panic!("aggregate must be created first, got {d:?}");
        };
        assert_eq!(
            agg.message.as_deref(),
            Some("(combined from similar events): m9")
        );
        assert_eq!(agg.count, Some(1));
        // Further distinct messages update the aggregate.
        let d = c.correlate(ev("FailedCreate", "m10", secs(11)), secs(11));
        let Correlated::Patch { event, patch } = d else {
            panic!("next similar event must patch the aggregate, got {d:?}");
        };
        assert_eq!(event.metadata.name, agg.metadata.name);
        assert_eq!(event.count, Some(2));
        assert_eq!(
            patch["message"],
            json!("(combined from similar events): m10")
        );
        // After the 10-minute window the count starts over.
        let late = secs(11 + 601);
        let d = c.correlate(ev("FailedCreate", "m11", late), late);
        assert_eq!(
            d.event().and_then(|e| e.message.clone()).as_deref(),
            Some("m11")
        );
    }

    #[test]
    fn spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let mut c = Correlator::new(CorrelatorConfig::default());
        let mut written = 0;
        for i in 0..40 {
            // Distinct reasons so neither aggregation nor de-duplication interferes.
            let d = c.correlate(ev(&format!("R{i}"), "m", secs(0)), secs(0));
            if d != Correlated::Skip {
                written += 1;
            }
        }
        assert_eq!(written, 25);
        assert_eq!(
            c.correlate(ev("X", "m", secs(299)), secs(299)),
            Correlated::Skip
        );
        assert_ne!(
            c.correlate(ev("Y", "m", secs(301)), secs(301)),
            Correlated::Skip
        );
        assert_eq!(
            c.correlate(ev("Z", "m", secs(302)), secs(302)),
            Correlated::Skip
        );
        // Another object has its own bucket.
        let mut other = ev("R0", "m", secs(302));
        other.involved_object.name = Some("db".into());
        other.involved_object.uid = Some("u2".into());
        assert_ne!(c.correlate(other, secs(302)), Correlated::Skip);
    }

    #[test]
    fn caches_are_bounded() {
        let mut c = Correlator::new(CorrelatorConfig {
            cache_size: 8,
            ..Default::default()
        });
        for i in 0..100 {
            let mut e = ev("R", "m", secs(i));
            e.involved_object.name = Some(format!("o{i}"));
            c.correlate(e, secs(i));
        }
        assert_eq!(c.cache_lens(), (8, 8, 8));
        // The most recent object is still de-duplicated after the evictions.
        let mut e = ev("R", "m", secs(200));
        e.involved_object.name = Some("o99".into());
        assert!(matches!(
            c.correlate(e, secs(200)),
            Correlated::Patch { .. }
        ));
    }
}
