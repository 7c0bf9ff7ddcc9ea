//! Scheduled compaction: keeps a fixed span of history (5 minutes by default) by compacting,
//! at regular intervals, to the revision the store was at that long ago. The same task serves
//! every backend (for etcd, compactions are coordinated between servers by the backend).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Revision, Store};

/// How much history to keep and how often to check.
#[derive(Clone, Copy, Debug)]
pub struct CompactorConfig {
    /// History younger than this is kept.
    pub retention: Duration,
    /// How often the current revision is sampled (and compaction attempted).
    pub interval: Duration,
}

impl CompactorConfig {
    /// Keep `retention` of history, checking ten times per retention period (at most once a
    /// minute, at least every 50 ms).
    pub fn keep(retention: Duration) -> Self {
        CompactorConfig {
            retention,
            interval: (retention / 10).clamp(Duration::from_millis(50), Duration::from_secs(60)),
        }
    }
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self::keep(Duration::from_secs(300))
    }
}

/// Starts compacting `store` on a schedule; abort the handle to stop.
pub fn spawn(store: Arc<dyn Store>, config: CompactorConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut samples: VecDeque<(Instant, Revision)> = VecDeque::new();
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            match store.current_revision().await {
                Ok(rev) => samples.push_back((now, rev)),
                Err(e) => {
                    tracing::warn!(error = %e, "compactor: cannot read the current revision");
                    continue;
                }
            }
            // The newest sample at least `retention` old is the compaction target.
            let mut target = None;
            while let Some(&(at, rev)) = samples.front() {
                if now.duration_since(at) >= config.retention {
                    target = Some(rev);
                    samples.pop_front();
                } else {
                    break;
                }
            }
            if let Some(rev) = target {
                // Keep the sample so the next round does not lose the target.
                samples.push_front((now - config.retention, rev));
                match store.compact(rev).await {
                    Ok(()) => tracing::debug!(revision = rev, "compacted"),
                    Err(e) => tracing::warn!(error = %e, revision = rev, "compaction failed"),
                }
            }
        }
    })
}
