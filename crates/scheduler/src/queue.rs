//! The scheduling queue, shaped after upstream's `PriorityQueue`:
//!
//! - **activeQ**: pods ready to be tried, highest priority first, then oldest;
//! - **backoffQ**: pods that failed, waiting out a per-pod backoff (1 s doubling per
//!   attempt up to 10 s);
//! - **unschedulable**: pods no node fits, parked until a cluster event that could make
//!   them schedulable (a node added or changed, an assigned pod deleted, …, matched
//!   against the plugins that rejected them) or for at most 5 minutes.
//!
//! A pod that fails while an event arrived during its cycle goes to backoffQ instead of
//! being parked (upstream's moveRequestCycle), so no event is missed.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cache::PodInfo;
use crate::plugins::Plugin;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest a pod stays parked as unschedulable without an event.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);
/// How often parked pods are checked against [`MAX_UNSCHEDULABLE`] (upstream: 30 s).
const UNSCHEDULABLE_FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// A cluster change that may make parked pods schedulable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdd,
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
    VolumeChange,
}

impl ClusterEvent {
    /// Whether a pod rejected by `plugin` may fit after this event.
    fn helps(self, plugin: Plugin) -> bool {
        use Plugin::*;
        match self {
            ClusterEvent::NodeAdd | ClusterEvent::NodeUpdate => true,
            ClusterEvent::AssignedPodAdd | ClusterEvent::AssignedPodUpdate => {
                matches!(plugin, InterPodAffinity | PodTopologySpread)
            }
            ClusterEvent::AssignedPodDelete => matches!(
                plugin,
                NodeResourcesFit | NodePorts | InterPodAffinity | PodTopologySpread | VolumeBinding
            ),
            ClusterEvent::VolumeChange => matches!(plugin, VolumeBinding),
        }
    }
}

/// A pod in the queue.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Scheduling attempts so far (1 during the first).
    pub attempts: u32,
    /// When it (re-)entered activeQ, for ordering.
    pub timestamp: Instant,
    /// The scheduling cycle it was popped in.
    pub cycle: u64,
    /// The plugins that rejected it last time.
    pub unschedulable_plugins: HashSet<Plugin>,
    last_failure: Option<Instant>,
}

impl QueuedPod {
    fn backoff_until(&self) -> Option<Instant> {
        let failed = self.last_failure?;
        Some(failed + backoff_duration(self.attempts))
    }
}

/// upstream's per-pod backoff: 1 s doubled per further attempt, at most 10 s.
pub fn backoff_duration(attempts: u32) -> Duration {
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        d *= 2;
        if d > MAX_BACKOFF {
            return MAX_BACKOFF;
        }
    }
    d
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Active(u64),
    Backoff(Instant, u64),
    Unschedulable(Instant),
    InFlight,
}

struct Entry {
    pod: QueuedPod,
    loc: Loc,
}

#[derive(PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Reverse<Instant>,
    seq: Reverse<u64>,
    key: String,
}

impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.timestamp, self.seq).cmp(&(other.priority, other.timestamp, other.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BTreeMap<(Instant, u64), String>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
    last_flush: Option<Instant>,
}

impl Inner {
    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.pod.timestamp = Instant::now();
        e.loc = Loc::Active(seq);
        self.active.push(ActiveItem {
            priority: e.pod.info.priority,
            timestamp: Reverse(e.pod.timestamp),
            seq: Reverse(seq),
            key: key.to_string(),
        });
    }

    fn push_backoff(&mut self, key: &str, until: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.entries.get_mut(key) {
            e.loc = Loc::Backoff(until, seq);
            self.backoff.insert((until, seq), key.to_string());
        }
    }

    fn unlink(&mut self, key: &str) {
        if let Some(e) = self.entries.get(key)
            && let Loc::Backoff(t, s) = e.loc
        {
            self.backoff.remove(&(t, s));
        }
        // Active items are dropped lazily when popped.
    }

    /// Moves a parked (or backing-off) pod to backoffQ or activeQ by its backoff.
    fn requeue(&mut self, key: &str, now: Instant) {
        let Some(until) = self.entries.get(key).map(|e| e.pod.backoff_until()) else {
            return;
        };
        self.unlink(key);
        match until {
            Some(t) if t > now => self.push_backoff(key, t),
            _ => self.push_active(key),
        }
    }

    fn flush_backoff(&mut self, now: Instant) {
        while let Some((&(t, s), _)) = self.backoff.iter().next() {
            if t > now {
                break;
            }
            if let Some(key) = self.backoff.remove(&(t, s)) {
                self.push_active(&key);
            }
        }
    }

    fn flush_unschedulable(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.loc, Loc::Unschedulable(since) if now.duration_since(since) >= MAX_UNSCHEDULABLE))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.requeue(&k, now);
        }
    }
}

/// The queue. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct SchedulingQueue {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
}

/// Counts per sub-queue, for tests and logs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lengths {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub in_flight: usize,
}

fn spec_changed(old: &PodInfo, new: &PodInfo) -> bool {
    old.pod.spec != new.pod.spec
        || old.pod.metadata.labels != new.pod.metadata.labels
        || old.pod.metadata.annotations != new.pod.metadata.annotations
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new pending pod, or updates it if queued: a parked pod whose spec or labels
    /// changed is tried again.
    pub fn add_or_update(&self, info: Arc<PodInfo>) {
        let mut q = self.lock();
        let key = info.key.clone();
        match q.entries.get_mut(&key) {
            Some(e) => {
                let changed = spec_changed(&e.pod.info, &info);
                e.pod.info = info;
                if changed && matches!(e.loc, Loc::Unschedulable(_)) {
                    let now = Instant::now();
                    q.requeue(&key, now);
                    drop(q);
                    self.notify.notify_one();
                } else if let Loc::Active(_) = e.loc {
                    // Priority may have changed: re-push (the old item is skipped).
                    q.push_active(&key);
                }
            }
            None => {
                q.entries.insert(
                    key.clone(),
                    Entry {
                        pod: QueuedPod {
                            info,
                            attempts: 0,
                            timestamp: Instant::now(),
                            cycle: 0,
                            unschedulable_plugins: HashSet::new(),
                            last_failure: None,
                        },
                        loc: Loc::InFlight,
                    },
                );
                q.push_active(&key);
                drop(q);
                self.notify.notify_one();
            }
        }
    }

    /// Removes a pod (deleted, or bound by someone else).
    pub fn delete(&self, key: &str) {
        let mut q = self.lock();
        q.unlink(key);
        q.entries.remove(key);
    }

    /// Waits for the next pod to try; `None` once closed.
    pub async fn pop(&self) -> Option<QueuedPod> {
        loop {
            let notified = self.notify.notified();
            let wake = {
                let mut q = self.lock();
                if q.closed {
                    return None;
                }
                let now = Instant::now();
                q.flush_backoff(now);
                let last_flush = *q.last_flush.get_or_insert(now);
                if now.duration_since(last_flush) >= UNSCHEDULABLE_FLUSH_PERIOD {
                    q.flush_unschedulable(now);
                    q.last_flush = Some(now);
                }
                while let Some(item) = q.active.pop() {
                    let valid = q
                        .entries
                        .get(&item.key)
                        .is_some_and(|e| e.loc == Loc::Active(item.seq.0));
                    if !valid {
                        continue;
                    }
                    q.scheduling_cycle += 1;
                    let cycle = q.scheduling_cycle;
                    let Some(e) = q.entries.get_mut(&item.key) else {
                        continue;
                    };
                    e.loc = Loc::InFlight;
                    e.pod.attempts += 1;
                    e.pod.cycle = cycle;
                    return Some(e.pod.clone());
                }
                let next_backoff = q.backoff.keys().next().map(|(t, _)| *t);
                let next_flush = q.last_flush.unwrap_or(now) + UNSCHEDULABLE_FLUSH_PERIOD;
                next_backoff.map_or(next_flush, |t| t.min(next_flush))
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// The pod was bound (or assumed and handed to binding): it leaves the queue.
    pub fn done(&self, key: &str) {
        let mut q = self.lock();
        if q.entries.get(key).is_some_and(|e| e.loc == Loc::InFlight) {
            q.entries.remove(key);
        }
    }

    /// The pod failed its cycle. `plugins`: the plugins that rejected it (empty for an
    /// error, which always backs off). A pod deleted meanwhile is dropped.
    pub fn failed(&self, pod: &QueuedPod, plugins: HashSet<Plugin>, unschedulable: bool) {
        let mut q = self.lock();
        let now = Instant::now();
        let move_request_cycle = q.move_request_cycle;
        let Some(e) = q.entries.get_mut(&pod.info.key) else {
            return;
        };
        if e.loc != Loc::InFlight {
            return;
        }
        e.pod.last_failure = Some(now);
        e.pod.unschedulable_plugins = plugins;
        let until = e.pod.backoff_until().unwrap_or(now);
        let key = pod.info.key.clone();
        if unschedulable && move_request_cycle < pod.cycle {
            if let Some(e) = q.entries.get_mut(&key) {
                e.loc = Loc::Unschedulable(now);
            }
        } else {
            q.push_backoff(&key, until);
        }
        drop(q);
        self.notify.notify_one();
    }

    /// A binding failed after the pod left the queue: it comes back with backoff.
    pub fn requeue_after_bind_failure(&self, info: Arc<PodInfo>, attempts: u32) {
        let mut q = self.lock();
        let key = info.key.clone();
        let now = Instant::now();
        q.entries.insert(
            key.clone(),
            Entry {
                pod: QueuedPod {
                    info,
                    attempts,
                    timestamp: now,
                    cycle: 0,
                    unschedulable_plugins: HashSet::new(),
                    last_failure: Some(now),
                },
                loc: Loc::InFlight,
            },
        );
        let until = now + backoff_duration(attempts);
        q.push_backoff(&key, until);
        drop(q);
        self.notify.notify_one();
    }

    /// A cluster event: parked pods it may help are tried again (after their backoff).
    pub fn on_event(&self, event: ClusterEvent) {
        let mut q = self.lock();
        q.move_request_cycle = q.scheduling_cycle;
        let now = Instant::now();
        let keys: Vec<String> = q
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.loc, Loc::Unschedulable(_)))
            .filter(|(_, e)| {
                e.pod.unschedulable_plugins.is_empty()
                    || e.pod.unschedulable_plugins.iter().any(|p| event.helps(*p))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        for k in keys {
            q.requeue(&k, now);
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Wakes `pop` for good: it returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub fn lengths(&self) -> Lengths {
        let q = self.lock();
        let mut l = Lengths::default();
        for e in q.entries.values() {
            match e.loc {
                Loc::Active(_) => l.active += 1,
                Loc::Backoff(..) => l.backoff += 1,
                Loc::Unschedulable(_) => l.unschedulable += 1,
                Loc::InFlight => l.in_flight += 1,
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::pod_labeled;
    use serde_json::json;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(pod_labeled(
            name,
            json!({}),
            json!({"priority": priority}),
        )))
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff_duration(1), Duration::from_secs(1));
        assert_eq!(backoff_duration(2), Duration::from_secs(2));
        assert_eq!(backoff_duration(4), Duration::from_secs(8));
        assert_eq!(backoff_duration(5), Duration::from_secs(10));
        assert_eq!(backoff_duration(50), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_age() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("low", 0));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add_or_update(info("high", 10));
        tokio::time::advance(Duration::from_millis(1)).await;
        q.add_or_update(info("low2", 0));
        let order: Vec<String> = [
            q.pop().await.unwrap(),
            q.pop().await.unwrap(),
            q.pop().await.unwrap(),
        ]
        .iter()
        .map(|p| p.info.name.clone())
        .collect();
        assert_eq!(order, vec!["high", "low", "low2"]);
        assert_eq!(q.lengths().in_flight, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_a_relevant_event_then_backoff() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p", 0));
        let p = q.pop().await.unwrap();
        q.failed(&p, [Plugin::NodeResourcesFit].into(), true);
        assert_eq!(q.lengths().unschedulable, 1);
        // An assigned pod added does not help a resource failure.
        q.on_event(ClusterEvent::AssignedPodAdd);
        assert_eq!(q.lengths().unschedulable, 1);
        q.on_event(ClusterEvent::NodeAdd);
        // Still within its 1 s backoff.
        assert_eq!(q.lengths().backoff, 1);
        let start = Instant::now();
        let p = q.pop().await.unwrap();
        assert!(Instant::now() - start >= Duration::from_millis(900));
        assert_eq!(p.attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_during_the_cycle_sends_the_pod_to_backoff() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p", 0));
        let p = q.pop().await.unwrap();
        q.on_event(ClusterEvent::AssignedPodDelete);
        q.failed(&p, [Plugin::NodeResourcesFit].into(), true);
        assert_eq!(q.lengths().backoff, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn parked_pods_are_flushed_after_five_minutes() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p", 0));
        let p = q.pop().await.unwrap();
        q.failed(&p, [Plugin::TaintToleration].into(), true);
        let start = Instant::now();
        let p = q.pop().await.unwrap();
        assert!(Instant::now() - start >= MAX_UNSCHEDULABLE);
        assert_eq!(p.info.name, "p");
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_and_updated_pods() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p", 0));
        let p = q.pop().await.unwrap();
        q.delete("default/p");
        q.failed(&p, HashSet::new(), true);
        assert_eq!(q.lengths(), Lengths::default());

        q.add_or_update(info("u", 0));
        let p = q.pop().await.unwrap();
        q.failed(&p, [Plugin::NodeAffinity].into(), true);
        let changed = Arc::new(PodInfo::new(pod_labeled(
            "u",
            json!({"new": "label"}),
            json!({}),
        )));
        q.add_or_update(changed);
        assert_eq!(q.lengths().unschedulable, 0);
    }
}
