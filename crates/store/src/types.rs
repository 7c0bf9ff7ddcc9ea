//! The values that cross the [`Store`](crate::Store) interface: keys and ranges, stored
//! values with their revisions, range requests, write options, watch events and streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Result;

/// A cluster-wide revision. Every write increases it by one; an empty store is at 1.
pub type Revision = i64;

/// A stored key and value with its revisions, as etcd reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last modification (for a delete event: the deletion's revision).
    pub mod_revision: Revision,
    /// Number of writes since creation, starting at 1.
    pub version: i64,
}

/// A half-open key range `[start, end)`, compared bytewise. An empty `end` means "no upper
/// bound".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl KeyRange {
    /// All keys that start with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        let start = prefix.as_bytes().to_vec();
        let mut end = start.clone();
        // The smallest byte string greater than every string with this prefix: drop trailing
        // 0xff bytes and increment the last remaining one; none left means "unbounded".
        while let Some(&last) = end.last() {
            if last == 0xff {
                end.pop();
            } else {
                *end.last_mut().expect("non-empty") = last + 1;
                break;
            }
        }
        KeyRange { start, end }
    }

    /// Exactly one key.
    pub fn key(key: &str) -> Self {
        let start = key.as_bytes().to_vec();
        let mut end = start.clone();
        end.push(0);
        KeyRange { start, end }
    }

    /// Keys from `start` (inclusive) to `end` (exclusive; empty for unbounded).
    pub fn between(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: start.into(),
            end: end.into(),
        }
    }

    /// Whether `key` falls inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }

    /// The same range with its start moved to `start` (used for paging).
    pub fn starting_at(&self, start: impl Into<Vec<u8>>) -> Self {
        KeyRange {
            start: start.into(),
            end: self.end.clone(),
        }
    }
}

/// A read of a key range.
#[derive(Clone, Debug)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// At most this many keys (0: no limit).
    pub limit: i64,
    /// Read at this revision (0: the current one).
    pub revision: Revision,
    /// Return only the count, no keys.
    pub count_only: bool,
}

impl RangeRequest {
    pub fn new(range: KeyRange) -> Self {
        RangeRequest {
            range,
            limit: 0,
            revision: 0,
            count_only: false,
        }
    }

    pub fn prefix(prefix: &str) -> Self {
        Self::new(KeyRange::prefix(prefix))
    }

    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    pub fn at_revision(mut self, revision: Revision) -> Self {
        self.revision = revision;
        self
    }

    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }
}

/// The result of a range read.
#[derive(Clone, Debug, Default)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// Whether keys beyond `limit` exist in the range.
    pub more: bool,
    /// The number of keys in the whole range (not only those returned).
    pub count: i64,
    /// The revision the read was served at.
    pub revision: Revision,
}

/// Options of a create or update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// The key is deleted on its own this long after the write.
    pub ttl: Option<Duration>,
}

impl WriteOptions {
    pub fn with_ttl(ttl: Duration) -> Self {
        WriteOptions { ttl: Some(ttl) }
    }
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The new value (for a delete: the key, an empty value and the deletion's revision as
    /// `mod_revision`).
    pub kv: KeyValue,
    /// The value before this change, when the watch asked for it and history still has it.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// What a watch stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// Changes in revision order.
    Events(Vec<Event>),
    /// Every change up to and including this revision has been delivered.
    Progress(Revision),
}

/// Options of a watch.
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchOptions {
    /// Attach the previous value to each event.
    pub prev_kv: bool,
    /// Send [`WatchMessage::Progress`] after this long without other messages.
    pub progress_interval: Option<Duration>,
}

/// A stream of watch messages. Dropping it ends the watch.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchMessage>>,
    task: Option<JoinHandle<()>>,
}

impl WatchStream {
    /// A stream fed through `rx` by `task`, which is aborted when the stream is dropped.
    pub(crate) fn new(rx: mpsc::Receiver<Result<WatchMessage>>, task: JoinHandle<()>) -> Self {
        WatchStream {
            rx,
            task: Some(task),
        }
    }

    /// The next message; `None` once the watch has ended.
    pub async fn next_message(&mut self) -> Option<Result<WatchMessage>> {
        self.rx.recv().await
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_bounds() {
        let r = KeyRange::prefix("/registry/pods/");
        assert_eq!(r.start, b"/registry/pods/");
        assert_eq!(r.end, b"/registry/pods0");
        assert!(r.contains(b"/registry/pods/default/a"));
        assert!(!r.contains(b"/registry/pods0"));
        assert!(!r.contains(b"/registry/pod"));
        let all = KeyRange::prefix("");
        assert!(all.end.is_empty());
        assert!(all.contains(b"anything"));
    }

    #[test]
    fn single_key_range() {
        let r = KeyRange::key("a");
        assert!(r.contains(b"a"));
        assert!(!r.contains(b"a\0"));
        assert!(!r.contains(b"ab"));
    }
}
