//! rkube's storage layer.
//!
//! Everything rkube keeps lives behind one trait, [`Store`], whose semantics are those of the
//! etcd v3 key-value API, so that etcd itself is a drop-in backend:
//!
//! - one cluster-wide revision that grows by one with every write; each key carries the
//!   revision it was created at, the revision it was last modified at and a version (writes
//!   since creation);
//! - create-if-absent, and update/delete guarded by the expected mod revision
//!   (compare-and-swap), plus [`guaranteed_update`] that retries a closure on conflict;
//! - range reads over `[start, end)` with a limit, a count, and at a past revision;
//! - watches of a key range from a revision, ordered, without gaps or duplicates, with the
//!   previous value of each key and progress notifications;
//! - compaction of history older than a revision ([`Error::Compacted`] below it);
//! - keys with a time to live that expire on their own.
//!
//! Backends: [`sqlite::SqliteStore`] (embedded default), [`etcd::EtcdStore`] and
//! [`memory::MemoryStore`] (tests). [`open`] picks one from a datastore endpoint string.

pub mod compactor;
mod error;
pub mod etcd;
pub mod etcd_process;
mod hub;
pub mod memory;
mod open;
pub mod sqlite;
mod types;
mod update;

pub use error::{Error, Result};
pub use open::{Datastore, EtcdTlsFiles, open};
pub use types::{
    Event, EventKind, KeyRange, KeyValue, RangeRequest, RangeResponse, Revision, WatchMessage,
    WatchOptions, WatchStream, WriteOptions,
};
pub use update::{UpdateAction, guaranteed_update};

use async_trait::async_trait;
use bytes::Bytes;

/// The storage interface every rkube component uses, with etcd v3 semantics.
///
/// All methods are safe to call concurrently. Every successful write returns the stored
/// [`KeyValue`] whose `mod_revision` is the new cluster revision.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The key at the current revision, or `None` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys in a range, in key order, at the current or a past revision.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, value: Bytes, opts: WriteOptions) -> Result<KeyValue>;

    /// Replaces `key` if its mod revision is still `expected_mod_revision`.
    ///
    /// Fails with [`Error::NotFound`] if the key does not exist and with [`Error::Conflict`]
    /// (carrying the current value) if it was modified since.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        opts: WriteOptions,
    ) -> Result<KeyValue>;

    /// Deletes `key`, guarded by its mod revision when `expected_mod_revision` is given.
    ///
    /// Returns the deleted value, with `mod_revision` being the value's last modification;
    /// the revision of the deletion itself is returned alongside it.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)>;

    /// Watches a key range, starting at `start_revision` (inclusive; `0` means "changes after
    /// now"). Events arrive in revision order without gaps or duplicates. If the start lies
    /// below the compacted revision the stream yields [`Error::Compacted`] and ends.
    async fn watch(
        &self,
        range: KeyRange,
        start_revision: Revision,
        opts: WatchOptions,
    ) -> Result<WatchStream>;

    /// The revision of the most recent write.
    async fn current_revision(&self) -> Result<Revision>;

    /// Discards history below `revision`: reads at older revisions and watches starting
    /// before it fail with [`Error::Compacted`]. Compacting to or below the already compacted
    /// revision is a no-op.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision history was last compacted to (0 if never).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// A short name of the backend, for logs and benchmarks ("sqlite", "etcd", "memory").
    fn backend(&self) -> &'static str;

    /// Finishes queued writes and releases the backend's resources (files, locks). Later
    /// calls fail with [`Error::Closed`] where the backend cannot serve them any more.
    async fn close(&self) {}
}

/// Wall-clock milliseconds since the Unix epoch (TTL expiry times are stored this way so they
/// survive restarts).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleeps until `at`, or forever if there is no deadline.
pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
