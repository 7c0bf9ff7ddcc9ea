//! The SQLite datastore's single writer: one thread that owns the write connection.
//!
//! Requests queue on a channel; the thread takes every request waiting (up to
//! [`MAX_BATCH`]) and applies them in one transaction, so that concurrent writers share one
//! commit and one fsync (group commit). Each request's compare-and-swap is checked inside the
//! transaction; a request that fails its check does not disturb the others. If the
//! transaction itself fails (disk full, I/O error) it is rolled back whole, every request in it
//! gets the error, and nothing is published.
//!
//! Between batches the thread deletes keys whose TTL has passed and physically removes
//! compacted history in small chunks, so neither stalls writers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::schema::{META_COMPACT_DONE, META_COMPACTED};
use crate::hub::Hub;
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How often keys with a TTL are checked for expiry.
const EXPIRY_TICK: Duration = Duration::from_millis(250);
/// Revisions physically compacted per transaction.
const COMPACT_CHUNK: i64 = 2000;

/// A write.
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
        expires: u64,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        expires: u64,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// The outcome of a write.
pub(crate) enum Done {
    Written(KeyValue),
    Deleted(KeyValue, Revision),
    Compacted,
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done>>,
}

/// The live row of a key. (Bound parameters in joins are wrapped in CAST throughout: without
/// it SQLite flags the statement as plan-dependent on its parameters and recompiles it each
/// time it comes back from rusqlite's statement cache, which cost the writer 15% of its time.)
const LIVE_SQL: &str = "SELECT l.rev, k.create_rev, k.version, k.value, l.expires FROM live l
     JOIN kv k ON k.rev = l.rev WHERE l.key = CAST(?1 AS BLOB)";

/// The live row of a key.
struct Live {
    rev: Revision,
    create_rev: Revision,
    version: i64,
    value: Vec<u8>,
    expires: i64,
}

impl Live {
    fn kv(self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: Bytes::from(self.value),
            create_revision: self.create_rev,
            mod_revision: self.rev,
            version: self.version,
        }
    }
}

pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    hub: Arc<Hub>,
    /// The last committed revision.
    revision: Revision,
    compacted: Revision,
    compact_done: Revision,
    next_expiry_check: Instant,
}

impl Writer {
    pub fn new(conn: Connection, path: PathBuf, hub: Arc<Hub>) -> Result<Self> {
        let (revision, compacted, compact_done) = super::read::revisions(&conn)
            .and_then(|(cur, compacted)| {
                let done: i64 = conn.query_row(
                    "SELECT value FROM meta WHERE name = ?1",
                    [META_COMPACT_DONE],
                    |r| r.get(0),
                )?;
                Ok((cur, compacted, done))
            })
            .map_err(|e| Error::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Writer {
            conn,
            path,
            hub,
            revision,
            compacted,
            compact_done,
            next_expiry_check: Instant::now(),
        })
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, rx: Receiver<Request>) {
        loop {
            let wait = if self.compact_done < self.compacted {
                Duration::ZERO
            } else {
                EXPIRY_TICK
            };
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(req) => batch.push(req),
                            Err(_) => break,
                        }
                    }
                    self.run_batch(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= self.next_expiry_check {
                self.expire();
                self.next_expiry_check = Instant::now() + EXPIRY_TICK;
            }
            if self.compact_done < self.compacted {
                self.compact_chunk();
            }
        }
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }

    fn run_batch(&mut self, batch: Vec<Request>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        match self.commit(ops) {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Applies `ops` in one transaction and publishes their events. On a storage failure
    /// nothing is kept and the error is returned for all of them.
    fn commit(&mut self, ops: Vec<Op>) -> Result<Vec<Result<Done>>> {
        let start_revision = self.revision;
        let start_compacted = self.compacted;
        let mut events = Vec::new();
        let outcome = (|| -> rusqlite::Result<Vec<Result<Done>>> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                results.push(self.apply(op, &mut events)?);
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(results)
        })();
        match outcome {
            Ok(results) => {
                if !events.is_empty() {
                    self.hub.publish(events, self.revision);
                }
                Ok(results)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.revision = start_revision;
                self.compacted = start_compacted;
                tracing::warn!(path = %self.path.display(), error = %e, "datastore write failed");
                Err(Error::Backend(format!(
                    "datastore {}: {e}",
                    self.path.display()
                )))
            }
        }
    }

    fn live(&self, key: &str) -> rusqlite::Result<Option<Live>> {
        self.conn
            .prepare_cached(LIVE_SQL)?
            .query_row([key.as_bytes()], |r| {
                Ok(Live {
                    rev: r.get(0)?,
                    create_rev: r.get(1)?,
                    version: r.get(2)?,
                    value: r.get(3)?,
                    expires: r.get(4)?,
                })
            })
            .optional()
    }

    /// Keeps the `ttl` table in step with a key's expiry changing from `old` to `new`.
    fn set_expiry(&self, key: &str, old: i64, new: i64) -> rusqlite::Result<()> {
        if old == new {
            return Ok(());
        }
        if old > 0 {
            self.conn
                .prepare_cached("DELETE FROM ttl WHERE expires = ?1 AND key = ?2")?
                .execute(params![old, key.as_bytes()])?;
        }
        if new > 0 {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO ttl (expires, key) VALUES (?1, ?2)")?
                .execute(params![new, key.as_bytes()])?;
        }
        Ok(())
    }

    /// Appends a row for `key` at the next revision and points `live` at it.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: &str,
        value: &[u8],
        create_rev: Revision,
        version: i64,
        prev: Revision,
        old_expires: i64,
        expires: u64,
    ) -> rusqlite::Result<Revision> {
        self.set_expiry(key, old_expires, expires as i64)?;
        let rev = self.revision + 1;
        self.conn
            .prepare_cached(
                "INSERT INTO kv (rev, key, create_rev, version, deleted, prev, expires, value)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)",
            )?
            .execute(params![
                rev,
                key.as_bytes(),
                if create_rev == 0 { rev } else { create_rev },
                version,
                prev,
                expires as i64,
                value
            ])?;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO live (key, rev, expires) VALUES (?1, ?2, ?3)")?
            .execute(params![key.as_bytes(), rev, expires as i64])?;
        self.revision = rev;
        Ok(rev)
    }

    fn remove(
        &mut self,
        key: &str,
        prev: Revision,
        old_expires: i64,
    ) -> rusqlite::Result<Revision> {
        self.set_expiry(key, old_expires, 0)?;
        let rev = self.revision + 1;
        self.conn
            .prepare_cached(
                "INSERT INTO kv (rev, key, create_rev, version, deleted, prev, expires, value)
                 VALUES (?1, ?2, 0, 0, 1, ?3, 0, x'')",
            )?
            .execute(params![rev, key.as_bytes(), prev])?;
        self.conn
            .prepare_cached("DELETE FROM live WHERE key = ?1")?
            .execute([key.as_bytes()])?;
        self.revision = rev;
        Ok(rev)
    }

    /// Applies one write inside the open transaction. The outer error is a storage failure
    /// (the batch is abandoned); the inner one is this write's own outcome.
    fn apply(&mut self, op: Op, events: &mut Vec<Event>) -> rusqlite::Result<Result<Done>> {
        match op {
            Op::Create {
                key,
                value,
                expires,
            } => {
                if self.live(&key)?.is_some() {
                    return Ok(Err(Error::AlreadyExists { key }));
                }
                let rev = self.put(&key, &value, 0, 1, 0, 0, expires)?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                };
                events.push(Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: None,
                });
                Ok(Ok(Done::Written(kv)))
            }
            Op::Update {
                key,
                value,
                expected,
                expires,
            } => {
                let Some(cur) = self.live(&key)? else {
                    return Ok(Err(Error::NotFound { key }));
                };
                if cur.rev != expected {
                    return Ok(Err(Error::Conflict {
                        current: Box::new(cur.kv(&key)),
                        key,
                        expected,
                    }));
                }
                let (create_rev, version, prev) = (cur.create_rev, cur.version + 1, cur.rev);
                let rev = self.put(
                    &key,
                    &value,
                    create_rev,
                    version,
                    prev,
                    cur.expires,
                    expires,
                )?;
                let kv = KeyValue {
                    key: key.clone(),
                    value,
                    create_revision: create_rev,
                    mod_revision: rev,
                    version,
                };
                events.push(Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev_kv: Some(cur.kv(&key)),
                });
                Ok(Ok(Done::Written(kv)))
            }
            Op::Delete { key, expected } => {
                let Some(cur) = self.live(&key)? else {
                    return Ok(Err(Error::NotFound { key }));
                };
                if let Some(expected) = expected
                    && cur.rev != expected
                {
                    return Ok(Err(Error::Conflict {
                        current: Box::new(cur.kv(&key)),
                        key,
                        expected,
                    }));
                }
                let rev = self.remove(&key, cur.rev, cur.expires)?;
                let prev = cur.kv(&key);
                events.push(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key,
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: rev,
                        version: 0,
                    },
                    prev_kv: Some(prev.clone()),
                });
                Ok(Ok(Done::Deleted(prev, rev)))
            }
            Op::Compact { revision } => {
                if revision > self.revision {
                    return Ok(Err(Error::FutureRevision {
                        requested: revision,
                        current: self.revision,
                    }));
                }
                if revision > self.compacted {
                    self.conn
                        .prepare_cached("UPDATE meta SET value = ?1 WHERE name = ?2")?
                        .execute(params![revision, META_COMPACTED])?;
                    self.compacted = revision;
                }
                Ok(Ok(Done::Compacted))
            }
        }
    }

    /// Deletes keys whose TTL has passed, as ordinary deletions with events.
    fn expire(&mut self) {
        let now = crate::now_ms() as i64;
        let expired: rusqlite::Result<Vec<(String, Revision)>> = (|| {
            let mut stmt = self.conn.prepare_cached(
                "SELECT t.key, l.rev FROM ttl t JOIN live l ON l.key = t.key
                 WHERE t.expires <= CAST(?1 AS INTEGER) ORDER BY t.expires LIMIT 1000",
            )?;
            let rows = stmt.query_map([now], |r| {
                let key: Vec<u8> = r.get(0)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), r.get(1)?))
            })?;
            rows.collect()
        })();
        match expired {
            Ok(keys) if !keys.is_empty() => {
                let ops = keys
                    .into_iter()
                    .map(|(key, rev)| Op::Delete {
                        key,
                        expected: Some(rev),
                    })
                    .collect();
                if let Err(e) = self.commit(ops) {
                    tracing::warn!(error = %e, "expiring keys failed; will retry");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading expired keys failed"),
        }
    }

    /// Physically deletes history below the compacted revision, one chunk per call: every row
    /// superseded by a newer row of the same key below the compacted revision, and every
    /// deletion record below it.
    fn compact_chunk(&mut self) {
        let from = self.compact_done;
        let to = (from + COMPACT_CHUNK).min(self.compacted);
        let result = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.conn
                .prepare_cached(
                    "DELETE FROM kv WHERE rev IN
                       (SELECT prev FROM kv WHERE rev >= ?1 AND rev < ?2 AND prev > 0)",
                )?
                .execute(params![from, to])?;
            self.conn
                .prepare_cached("DELETE FROM kv WHERE rev >= ?1 AND rev < ?2 AND deleted = 1")?
                .execute(params![from, to])?;
            self.conn
                .prepare_cached("UPDATE meta SET value = ?1 WHERE name = ?2")?
                .execute(params![to, META_COMPACT_DONE])?;
            self.conn.execute_batch("COMMIT")
        })();
        match result {
            Ok(()) => {
                self.compact_done = to;
                if to == self.compacted {
                    self.release_free_pages();
                }
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                tracing::warn!(error = %e, "compacting the datastore failed; will retry");
            }
        }
    }

    /// Gives free pages back to the file system when more than a quarter of the file is free,
    /// so that the file shrinks after large deletions (free pages are otherwise reused).
    fn release_free_pages(&mut self) {
        let counts: rusqlite::Result<(i64, i64)> = self.conn.query_row(
            "SELECT (SELECT freelist_count FROM pragma_freelist_count),
                    (SELECT page_count FROM pragma_page_count)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        );
        if let Ok((free, total)) = counts
            && free > 1024
            && free * 4 > total
        {
            let _ = self
                .conn
                .execute_batch(&format!("PRAGMA incremental_vacuum({})", free / 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hot statements must come back from the statement cache without being recompiled.
    #[test]
    fn cached_statements_are_not_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open_writer(&dir.path().join("t.db")).unwrap();
        for i in 0..50 {
            conn.prepare_cached(LIVE_SQL)
                .unwrap()
                .query_row([format!("k{i}").as_bytes()], |_| Ok(()))
                .optional()
                .unwrap();
        }
        let st = conn.prepare_cached(LIVE_SQL).unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 50);
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
