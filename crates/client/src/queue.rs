//! A work queue with client-go's semantics (`workqueue.TypedRateLimitingInterface`):
//!
//! - an item added several times before a worker takes it is handed out once (dirty set);
//! - an item being processed (between [`WorkQueue::get`] and [`WorkQueue::done`]) is never
//!   handed out to a second worker; adds meanwhile are deferred and it is queued again on
//!   `done`;
//! - [`WorkQueue::add_after`] delays an add (several pending delays keep the earliest);
//! - [`WorkQueue::add_rate_limited`] delays by the [`RateLimiter`]: per-item exponential
//!   backoff (5 ms doubling to 1000 s by default) and an overall token bucket (10 per
//!   second, burst 100), the larger delay winning; [`WorkQueue::forget`] resets an item.
//!
//! Delayed items need no timer task: waiting workers sleep until the earliest one is due.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-item exponential backoff combined with an overall token bucket.
#[derive(Debug)]
pub struct RateLimiter<T> {
    base: Duration,
    max: Duration,
    failures: HashMap<T, u32>,
    /// Token bucket: tokens per second (0 disables the bucket), burst, and state.
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl<T: Hash + Eq + Clone> RateLimiter<T> {
    /// client-go's `DefaultControllerRateLimiter`: 5 ms × 2ⁿ up to 1000 s, and 10 qps with
    /// a burst of 100 overall.
    pub fn default_controller() -> Self {
        Self::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
            10.0,
            100,
        )
    }

    /// Exponential backoff from `base` to `max` per item, plus a bucket of `qps` (0: none)
    /// with `burst`.
    pub fn new(base: Duration, max: Duration, qps: f64, burst: u32) -> Self {
        RateLimiter {
            base,
            max,
            failures: HashMap::new(),
            qps,
            burst: burst as f64,
            tokens: burst as f64,
            last: None,
        }
    }

    /// Per-item exponential backoff only.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Self::new(base, max, 0.0, 0)
    }

    /// How long to wait before `item` is processed again; counts a failure.
    pub fn when(&mut self, item: &T, now: Instant) -> Duration {
        let n = self.failures.entry(item.clone()).or_insert(0);
        let exp = self
            .base
            .checked_mul(1u32.checked_shl(*n).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max);
        *n = n.saturating_add(1);
        exp.max(self.bucket_delay(now))
    }

    fn bucket_delay(&mut self, now: Instant) -> Duration {
        if self.qps <= 0.0 {
            return Duration::ZERO;
        }
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }

    /// Forgets `item`'s failures.
    pub fn forget(&mut self, item: &T) {
        self.failures.remove(item);
    }

    /// How many times `item` failed since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.failures.get(item).copied().unwrap_or(0)
    }
}

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    /// Delayed adds by due time (with a sequence number for uniqueness), and each item's
    /// pending due time.
    waiting: BTreeMap<(Instant, u64), T>,
    waiting_at: HashMap<T, (Instant, u64)>,
    seq: u64,
    limiter: RateLimiter<T>,
    shutting_down: bool,
}

impl<T: Hash + Eq + Clone> State<T> {
    fn add(&mut self, item: T) -> bool {
        if self.shutting_down || self.dirty.contains(&item) {
            return false;
        }
        self.dirty.insert(item.clone());
        if self.processing.contains(&item) {
            return false;
        }
        self.queue.push_back(item);
        true
    }

    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            self.waiting_at.remove(&item);
            self.add(item);
        }
    }
}

/// A de-duplicating, delaying, rate-limited queue of items (usually object keys). Cheap to
/// clone (shared).
pub struct WorkQueue<T> {
    state: Arc<Mutex<State<T>>>,
    notify: Arc<Notify>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue {
            state: self.state.clone(),
            notify: self.notify.clone(),
        }
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new(RateLimiter::default_controller())
    }
}

impl<T: Hash + Eq + Clone + Send + 'static> WorkQueue<T> {
    pub fn new(limiter: RateLimiter<T>) -> Self {
        WorkQueue {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                waiting: BTreeMap::new(),
                waiting_at: HashMap::new(),
                seq: 0,
                limiter,
                shutting_down: false,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A poisoned lock means a caller panicked mid-call; the queue's sets stay usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless it is already queued; deferred while it is processed.
    pub fn add(&self, item: T) {
        if self.lock().add(item) {
            self.notify.notify_waiters();
        }
    }

    /// Queues `item` after `delay` (at once if zero). A pending earlier delay is kept.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let due = Instant::now() + delay;
        let mut st = self.lock();
        if st.shutting_down {
            return;
        }
        if let Some(&(at, seq)) = st.waiting_at.get(&item) {
            if at <= due {
                return;
            }
            st.waiting.remove(&(at, seq));
        }
        st.seq += 1;
        let key = (due, st.seq);
        st.waiting.insert(key, item.clone());
        st.waiting_at.insert(item, key);
        drop(st);
        self.notify.notify_waiters();
    }

    /// Queues `item` after its rate-limited delay (counts a failure).
    pub fn add_rate_limited(&self, item: T) {
        let delay = self.lock().limiter.when(&item, Instant::now());
        self.add_after(item, delay);
    }

    /// Resets `item`'s backoff (call after it was processed successfully).
    pub fn forget(&self, item: &T) {
        self.lock().limiter.forget(item);
    }

    /// How many rate-limited re-adds `item` had since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.lock().limiter.num_requeues(item)
    }

    /// Waits for the next item; `None` once the queue is shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut st = self.lock();
                st.promote_due(Instant::now());
                if let Some(item) = st.queue.pop_front() {
                    st.dirty.remove(&item);
                    st.processing.insert(item.clone());
                    return Some(item);
                }
                if st.shutting_down {
                    return None;
                }
                st.waiting.keys().next().map(|k| k.0)
            };
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `item` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, item: &T) {
        let mut st = self.lock();
        st.processing.remove(item);
        if st.dirty.contains(item) {
            st.queue.push_back(item.clone());
            drop(st);
            self.notify.notify_waiters();
        }
    }

    /// Items ready to be handed out now (not counting delayed or processing ones).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops handing out items: waiting and later `get` calls return `None`; adds are
    /// ignored.
    pub fn shut_down(&self) {
        let mut st = self.lock();
        st.shutting_down = true;
        st.queue.clear();
        st.waiting.clear();
        st.waiting_at.clear();
        drop(st);
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> WorkQueue<&'static str> {
        WorkQueue::new(RateLimiter::exponential(
            Duration::from_millis(5),
            Duration::from_secs(1),
        ))
    }

    #[tokio::test]
    async fn duplicates_are_handed_out_once() {
        let q = q();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn an_item_being_processed_is_deferred_until_done() {
        let q = q();
        q.add("a");
        let item = q.get().await.unwrap();
        q.add("a");
        q.add("a");
        assert!(q.is_empty(), "not handed out twice while processing");
        let second = tokio::time::timeout(Duration::from_millis(50), q.get()).await;
        assert!(second.is_err(), "a second worker must not get it");
        q.done(&item);
        assert_eq!(q.len(), 1, "re-added once on done");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn add_after_delays_and_keeps_the_earliest() {
        let q = q();
        let start = Instant::now();
        q.add_after("a", Duration::from_millis(400));
        q.add_after("a", Duration::from_millis(100));
        q.add_after("a", Duration::from_millis(800));
        assert!(q.is_empty());
        assert_eq!(q.get().await, Some("a"));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_millis(400), "{waited:?}");
        q.done(&"a");
        let later = tokio::time::timeout(Duration::from_millis(1000), q.get()).await;
        assert!(
            later.is_err(),
            "the later delays were merged into the first"
        );
    }

    #[tokio::test]
    async fn rate_limited_adds_back_off_exponentially_until_forgotten() {
        let q: WorkQueue<&str> = WorkQueue::new(RateLimiter::exponential(
            Duration::from_millis(40),
            Duration::from_secs(10),
        ));
        let mut delays = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            q.add_rate_limited("a");
            let item = q.get().await.unwrap();
            delays.push(t.elapsed());
            q.done(&item);
        }
        for (d, want) in delays.iter().zip([40u64, 80, 160]) {
            assert!(*d >= Duration::from_millis(want), "{delays:?}");
        }
        assert!(delays[2] > delays[0], "{delays:?}");
        assert_eq!(q.num_requeues(&"a"), 3);
        q.forget(&"a");
        assert_eq!(q.num_requeues(&"a"), 0);
        let mut l = RateLimiter::exponential(Duration::from_millis(5), Duration::from_secs(1));
        let now = Instant::now();
        let seq: Vec<u128> = (0..4).map(|_| l.when(&"a", now).as_millis()).collect();
        assert_eq!(seq, vec![5, 10, 20, 40]);
    }

    #[test]
    fn backoff_is_capped_and_the_bucket_limits_overall_rate() {
        let now = Instant::now();
        let mut l = RateLimiter::exponential(Duration::from_millis(5), Duration::from_secs(1));
        for _ in 0..40 {
            l.when(&"x", now);
        }
        assert_eq!(l.when(&"x", now), Duration::from_secs(1));
        let mut l = RateLimiter::new(Duration::ZERO, Duration::ZERO, 10.0, 2);
        assert_eq!(l.when(&"a", now), Duration::ZERO);
        assert_eq!(l.when(&"b", now), Duration::ZERO);
        assert_eq!(l.when(&"c", now), Duration::from_millis(100));
        assert_eq!(l.when(&"d", now), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn shut_down_wakes_waiters() {
        let q = q();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
        q.add("a");
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_workers_never_hold_the_same_item() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let q: WorkQueue<u32> = WorkQueue::default();
        let active: Arc<Mutex<HashSet<u32>>> = Arc::default();
        let handled = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (q, active, handled) = (q.clone(), active.clone(), handled.clone());
            workers.push(tokio::spawn(async move {
                while let Some(i) = q.get().await {
                    assert!(
                        active.lock().unwrap().insert(i),
                        "item {i} handed out twice"
                    );
                    tokio::task::yield_now().await;
                    active.lock().unwrap().remove(&i);
                    handled.fetch_add(1, Ordering::SeqCst);
                    q.done(&i);
                }
            }));
        }
        for round in 0..200u32 {
            q.add(round % 5);
            if round % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        while !q.is_empty() || !q.lock().processing.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        q.shut_down();
        for w in workers {
            w.await.unwrap();
        }
        assert!(handled.load(Ordering::SeqCst) >= 5);
    }
}
