//! Errors of the storage layer. Callers branch on the variant (the API server maps them to
//! HTTP statuses: `AlreadyExists` → 409, `Conflict` → 409, `NotFound` → 404, `Compacted` →
//! 410, `Unavailable` → 503), so each backend reports the same variant for the same case.

use std::path::PathBuf;

use crate::{KeyValue, Revision};

/// The result type of the storage layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a storage operation.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// A create found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    /// An update or delete found no such key.
    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// An update or delete guarded by a mod revision found the key modified since.
    #[error("key {key:?} has been modified: expected mod revision {expected}, found {}", current.mod_revision)]
    Conflict {
        key: String,
        expected: Revision,
        /// The key as it is now.
        current: Box<KeyValue>,
    },

    /// A read or watch asked for history that compaction has discarded.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },

    /// A read asked for a revision that does not exist yet.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },

    /// The request itself is malformed.
    #[error("invalid storage request: {0}")]
    InvalidArgument(String),

    /// The backend cannot be reached or is not answering (etcd down, timeouts). Retrying later
    /// may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),

    /// The datastore file exists but cannot be used (corrupt, not a database, unreadable).
    #[error("datastore {}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },

    /// The datastore is open in another process.
    #[error("datastore {} is in use by another process (is an rkube server running on this data directory?)", path.display())]
    InUse { path: PathBuf },

    /// The backend failed the operation (for example: the disk is full). Nothing was written.
    #[error("storage error: {0}")]
    Backend(String),

    /// The store has been closed.
    #[error("storage is closed")]
    Closed,
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Backend(_))
    }
}
