//! The embedded SQLite backend, rkube's default datastore: one file (plus its WAL) under the
//! data directory.
//!
//! One writer thread owns the only write connection and commits concurrent writes together
//! ([`writer`]); reads run on a pool of connections, each in its own snapshot ([`read`]);
//! watches replay history from the file and then follow the writer's commits
//! ([`crate::hub`]). A lock file keeps a second process from opening the same datastore for
//! writing. [`snapshot`] makes and restores consistent copies.

mod read;
mod schema;
pub mod snapshot;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::hub::{History, Hub};
use crate::{
    Error, Event, KeyRange, KeyValue, RangeRequest, RangeResponse, Result, Revision, Store,
    WatchOptions, WatchStream, WriteOptions,
};
use read::Pool;
use writer::{Done, Op, Request, Writer};

/// Holds an exclusive `flock` on `<datastore>.lock` for as long as it lives.
pub(crate) struct DatastoreLock {
    _file: File,
}

impl DatastoreLock {
    /// Takes the lock of the datastore at `db`, failing at once if another process holds it.
    pub(crate) fn acquire(db: &Path) -> Result<Self> {
        use std::os::fd::AsRawFd;
        let path = lock_path(db);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Corrupt {
                path: dir.to_path_buf(),
                message: format!("cannot create the datastore directory: {e}"),
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Corrupt {
                path: path.clone(),
                message: format!("cannot open the datastore lock file: {e}"),
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(Error::InUse {
                path: db.to_path_buf(),
            });
        }
        Ok(DatastoreLock { _file: file })
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

struct Inner {
    path: PathBuf,
    pool: Pool,
    hub: Arc<Hub>,
    tx: Mutex<Option<std::sync::mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    _lock: DatastoreLock,
}

impl Inner {
    async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Closed)?;
        let inner = self.clone();
        tokio::task::spawn_blocking(move || inner.pool.read(f))
            .await
            .map_err(|e| Error::Backend(format!("datastore read task failed: {e}")))?
    }

    async fn write(&self, op: Op) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            let tx = tx.as_ref().ok_or(Error::Closed)?;
            tx.send(Request { op, reply }).map_err(|_| Error::Closed)?;
        }
        rx.await.map_err(|_| Error::Closed)?
    }
}

#[async_trait]
impl History for Inner {
    async fn events(
        self: Arc<Self>,
        range: &KeyRange,
        from: Revision,
        to: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let range = range.clone();
        self.read(move |tx| read::events(tx, &range, from, to, limit))
            .await
    }
}

/// The SQLite datastore.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl SqliteStore {
    /// Opens the datastore file at `path`, creating it (and its directory) if absent.
    ///
    /// Fails with [`Error::Corrupt`] naming the file if it exists but is unreadable, corrupt or
    /// not an rkube datastore, and with [`Error::InUse`] if another process has it open. Must
    /// be called inside a tokio runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let lock = DatastoreLock::acquire(&path)?;
        let conn = schema::open_writer(&path)?;
        let hub = Arc::new(Hub::new(0));
        let writer = Writer::new(conn, path.clone(), hub.clone())?;
        hub.publish(Vec::new(), writer.revision());
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("datastore-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Backend(format!("cannot start the datastore writer: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                pool: Pool::new(path.clone()),
                path,
                hub,
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                _lock: lock,
            }),
        })
    }

    /// The datastore file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops accepting writes, lets the writer finish what is queued and checkpoints the WAL.
    /// Watches end with [`Error::Closed`].
    pub async fn close(&self) {
        Store::close(self).await
    }
}

impl SqliteStore {
    async fn shutdown(&self) {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.inner.hub.close();
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Dropping the sender ends the writer thread once its queue is empty.
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.inner.hub.close();
    }
}

fn expiry(opts: &WriteOptions) -> u64 {
    opts.ttl
        .map(|ttl| crate::now_ms() + ttl.as_millis() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        let inner = self.inner.clone();
        self.inner
            .read(move |tx| read::get(tx, &key).map_err(|e| inner.pool.err(e)))
            .await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.inner.read(move |tx| read::range(tx, &req)).await
    }

    async fn create(&self, key: &str, value: Bytes, opts: WriteOptions) -> Result<KeyValue> {
        match self
            .inner
            .write(Op::Create {
                key: key.to_string(),
                value,
                expires: expiry(&opts),
            })
            .await?
        {
            Done::Written(kv) => Ok(kv),
            _ => Err(Error::Backend("unexpected writer reply".into())),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        opts: WriteOptions,
    ) -> Result<KeyValue> {
        match self
            .inner
            .write(Op::Update {
                key: key.to_string(),
                value,
                expected: expected_mod_revision,
                expires: expiry(&opts),
            })
            .await?
        {
            Done::Written(kv) => Ok(kv),
            _ => Err(Error::Backend("unexpected writer reply".into())),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        match self
            .inner
            .write(Op::Delete {
                key: key.to_string(),
                expected: expected_mod_revision,
            })
            .await?
        {
            Done::Deleted(kv, rev) => Ok((kv, rev)),
            _ => Err(Error::Backend("unexpected writer reply".into())),
        }
    }

    async fn watch(
        &self,
        range: KeyRange,
        start_revision: Revision,
        opts: WatchOptions,
    ) -> Result<WatchStream> {
        self.inner
            .hub
            .watch(self.inner.clone(), range, start_revision, opts)
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.hub.revision())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.inner.write(Op::Compact { revision }).await? {
            Done::Compacted => Ok(()),
            _ => Err(Error::Backend("unexpected writer reply".into())),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner
            .read(|tx| {
                read::revisions(tx)
                    .map(|(_, compacted)| compacted)
                    .map_err(|e| Error::Backend(e.to_string()))
            })
            .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.shutdown().await
    }
}
