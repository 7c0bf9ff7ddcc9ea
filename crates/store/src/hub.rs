//! Watch fan-out for the backends that own their log (SQLite and memory).
//!
//! The backend's single writer publishes each committed batch of events, in revision order,
//! to a broadcast channel. A watch is one task that first replays history from the backend
//! (revisions `[start, committed]`) and then follows the broadcast. A watcher that falls
//! behind the broadcast buffer does not lose events: it goes back to replaying history from
//! the first revision it has not delivered, then rejoins. Compaction is detected by the
//! history read, which answers [`Error::Compacted`] in the same snapshot it reads events in.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::{Error, Event, KeyRange, Result, Revision, WatchMessage, WatchOptions, WatchStream};

/// Events replayed from history per read.
const REPLAY_PAGE: usize = 1000;
/// Committed batches the broadcast channel keeps for slow watchers before they must replay.
const BROADCAST_CAPACITY: usize = 4096;
/// Messages buffered per watch before the watch task waits for its consumer.
const WATCH_CHANNEL_CAPACITY: usize = 128;

/// A backend's committed history, read by watches that start in the past or fell behind.
#[async_trait]
pub(crate) trait History: Send + Sync + 'static {
    /// Events with revisions in `[from, to]` whose keys are in `range`, in revision order, at
    /// most `limit` of them, each with its previous value where history still has it.
    /// Fails with [`Error::Compacted`] if `from` is below the compacted revision.
    async fn events(
        self: Arc<Self>,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        limit: usize,
    ) -> Result<Vec<Event>>;
}

/// One committed batch: its events (with previous values) in revision order.
pub(crate) struct Batch {
    pub events: Vec<Event>,
    /// The revision the store is at after this batch.
    pub revision: Revision,
}

struct HubState {
    tx: broadcast::Sender<Arc<Batch>>,
    revision: Revision,
    closed: bool,
}

/// The publish side of watches, owned by a backend.
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    pub fn new(revision: Revision) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Hub {
            state: Mutex::new(HubState {
                tx,
                revision,
                closed: false,
            }),
        }
    }

    /// Publishes a committed batch. Must be called in commit order.
    pub fn publish(&self, events: Vec<Event>, revision: Revision) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.revision = revision;
        if state.tx.receiver_count() > 0 {
            let _ = state.tx.send(Arc::new(Batch { events, revision }));
        }
    }

    /// The revision of the last published batch.
    pub fn revision(&self) -> Revision {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revision
    }

    /// Ends every watch (they yield [`Error::Closed`]).
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        let (tx, _) = broadcast::channel(1);
        // Dropping the old sender closes every receiver.
        state.tx = tx;
    }

    fn subscribe(&self) -> Result<(broadcast::Receiver<Arc<Batch>>, Revision)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Err(Error::Closed);
        }
        Ok((state.tx.subscribe(), state.revision))
    }

    /// Starts a watch of `range` from `start` (0: after the current revision).
    pub fn watch(
        self: &Arc<Self>,
        history: Arc<dyn History>,
        range: KeyRange,
        start: Revision,
        opts: WatchOptions,
    ) -> Result<WatchStream> {
        if start < 0 {
            return Err(Error::InvalidArgument(format!(
                "watch start revision {start} is negative"
            )));
        }
        // Subscribe before returning so that a watch "from now" sees every later write.
        let first = self.subscribe()?;
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        let hub = self.clone();
        let task = tokio::spawn(async move {
            let mut watcher = Watcher {
                hub,
                history,
                range,
                opts,
                tx,
                last_sent: Instant::now(),
            };
            if let Err(e) = watcher.run(start, first).await {
                let _ = watcher.tx.send(Err(e)).await;
            }
        });
        Ok(WatchStream::new(rx, task))
    }
}

struct Watcher {
    hub: Arc<Hub>,
    history: Arc<dyn History>,
    range: KeyRange,
    opts: WatchOptions,
    tx: mpsc::Sender<Result<WatchMessage>>,
    last_sent: Instant,
}

/// Why the live phase ended.
enum Live {
    /// The consumer went away.
    Done,
    /// The broadcast overtook this watcher: replay history from here.
    Lagged(Revision),
}

impl Watcher {
    async fn run(
        &mut self,
        start: Revision,
        first: (broadcast::Receiver<Arc<Batch>>, Revision),
    ) -> Result<()> {
        let (mut rx, mut committed) = first;
        // `next` is the first revision not yet delivered.
        let mut next = if start == 0 { committed + 1 } else { start };
        loop {
            while next <= committed {
                let events = self
                    .history
                    .clone()
                    .events(&self.range, next, committed, REPLAY_PAGE)
                    .await?;
                let full_page = events.len() == REPLAY_PAGE;
                next = match (full_page, events.last()) {
                    (true, Some(last)) => last.revision() + 1,
                    _ => committed + 1,
                };
                if !events.is_empty() && !self.send_events(events).await {
                    return Ok(());
                }
            }
            match self.live(&mut rx, next).await? {
                Live::Done => return Ok(()),
                Live::Lagged(from) => {
                    next = from;
                    (rx, committed) = self.hub.subscribe()?;
                }
            }
        }
    }

    async fn live(
        &mut self,
        rx: &mut broadcast::Receiver<Arc<Batch>>,
        mut next: Revision,
    ) -> Result<Live> {
        loop {
            let progress_at = self.opts.progress_interval.map(|d| self.last_sent + d);
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(batch) => {
                        if batch.revision < next {
                            continue;
                        }
                        let events: Vec<Event> = batch
                            .events
                            .iter()
                            .filter(|e| e.revision() >= next && self.range.contains(e.kv.key.as_bytes()))
                            .cloned()
                            .collect();
                        next = batch.revision + 1;
                        if !events.is_empty() && !self.send_events(events).await {
                            return Ok(Live::Done);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return Ok(Live::Lagged(next)),
                    Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed),
                },
                _ = crate::sleep_until_opt(progress_at) => {
                    if !self.send(WatchMessage::Progress(next - 1)).await {
                        return Ok(Live::Done);
                    }
                }
                _ = self.tx.closed() => return Ok(Live::Done),
            }
        }
    }

    async fn send_events(&mut self, mut events: Vec<Event>) -> bool {
        if !self.opts.prev_kv {
            for e in &mut events {
                e.prev_kv = None;
            }
        }
        self.send(WatchMessage::Events(events)).await
    }

    async fn send(&mut self, msg: WatchMessage) -> bool {
        self.last_sent = Instant::now();
        self.tx.send(Ok(msg)).await.is_ok()
    }
}
