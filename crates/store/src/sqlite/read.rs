//! Reads of the SQLite datastore: a small pool of read connections, each read in its own
//! snapshot (WAL readers never block the writer nor each other), and the history replay that
//! watches use.

use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::schema::{META_COMPACTED, META_FLOOR, open_reader};
use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, RangeRequest, RangeResponse, Result, Revision,
};

/// Read connections to one datastore file. At most [`Pool::size`] reads run at once (callers
/// hold a permit of [`Pool::permits`] while reading); their connections are kept open.
pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    size: usize,
    pub permits: tokio::sync::Semaphore,
}

impl Pool {
    /// Concurrent reads: four per core, at least eight. (Reads spend much of their time
    /// being handed to and from a blocking thread, so more readers than cores pay off.)
    pub fn size() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() * 4)
            .unwrap_or(8)
            .max(8)
    }

    pub fn new(path: PathBuf) -> Self {
        let size = Self::size();
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            size,
            permits: tokio::sync::Semaphore::new(size),
        }
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a pooled connection. The
    /// caller should hold a permit.
    pub fn read<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = (|| {
            let tx = conn.transaction().map_err(|e| self.err(e))?;
            let out = f(&tx)?;
            tx.finish().map_err(|e| self.err(e))?;
            Ok(out)
        })();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.size {
            idle.push(conn);
        }
        result
    }

    pub fn err(&self, e: rusqlite::Error) -> Error {
        Error::Backend(format!("datastore {}: {e}", self.path.display()))
    }
}

/// The current and compacted revisions as of the connection's snapshot.
pub(crate) fn revisions(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    conn.query_row(
        "SELECT (SELECT COALESCE(MAX(rev), 1) FROM kv),
                (SELECT value FROM meta WHERE name = ?1),
                (SELECT value FROM meta WHERE name = ?2)",
        params![META_FLOOR, META_COMPACTED],
        |r| {
            let max: i64 = r.get(0)?;
            let floor: i64 = r.get(1)?;
            Ok((max.max(floor), r.get(2)?))
        },
    )
}

fn key_string(raw: Vec<u8>) -> String {
    String::from_utf8(raw).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// SQL text with its positional parameters, built together so they always match (and so
/// that the few distinct statement texts stay in the statement cache).
#[derive(Default)]
struct Query {
    sql: String,
    params: Vec<Value>,
}

impl Query {
    fn text(mut self, text: &str) -> Self {
        self.sql.push_str(text);
        self
    }

    /// A bound parameter. It is wrapped in a CAST to its own type so that SQLite does not
    /// recompile the statement whenever it is reused (see `writer::LIVE_SQL`).
    fn param(mut self, value: impl Into<Value>) -> Self {
        let value = value.into();
        let ty = match value {
            Value::Integer(_) => "INTEGER",
            Value::Blob(_) => "BLOB",
            Value::Text(_) => "TEXT",
            Value::Real(_) => "REAL",
            Value::Null => "",
        };
        self.params.push(value);
        if ty.is_empty() {
            self.sql.push_str(&format!("?{}", self.params.len()));
        } else {
            self.sql
                .push_str(&format!("CAST(?{} AS {ty})", self.params.len()));
        }
        self
    }

    /// `<col> >= start [AND <col> < end]`.
    fn in_range(self, col: &str, range: &KeyRange) -> Self {
        let q = self.text(&format!("{col} >= ")).param(range.start.clone());
        if range.end.is_empty() {
            q
        } else {
            q.text(&format!(" AND {col} < ")).param(range.end.clone())
        }
    }
}

/// One key at the current revision (parameters in joins are CAST: see `writer::LIVE_SQL`).
const GET_SQL: &str = "SELECT l.rev, k.create_rev, k.version, k.value FROM live l
     JOIN kv k ON k.rev = l.rev WHERE l.key = CAST(?1 AS BLOB)";

pub(crate) fn get(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    tx.prepare_cached(GET_SQL)?
        .query_row([key.as_bytes()], |r| {
            Ok(KeyValue {
                key: key.to_string(),
                mod_revision: r.get(0)?,
                create_revision: r.get(1)?,
                version: r.get(2)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(3)?),
            })
        })
        .optional()
}

pub(crate) fn range(tx: &Transaction<'_>, req: &RangeRequest) -> Result<RangeResponse> {
    let sql_err = |e: rusqlite::Error| Error::Backend(format!("datastore read: {e}"));
    let (current, compacted) = revisions(tx).map_err(sql_err)?;
    let at = if req.revision == 0 {
        current
    } else {
        req.revision
    };
    if at > current {
        return Err(Error::FutureRevision {
            requested: at,
            current,
        });
    }
    if at < compacted {
        return Err(Error::Compacted {
            requested: at,
            compacted,
        });
    }
    // The rows visible at `at`. At the current revision: `live`. At a past one: the keys in
    // `live` not changed since `at`, plus, for each key changed since, the row its first
    // change after `at` replaced (`prev`; 0 when the key did not exist at `at`). That row is
    // never compacted away: its successor lies above `at`, which is at or above the
    // compacted revision.
    let source = if at == current {
        Query::default()
            .text(
                "SELECT l.key AS key, l.rev AS rev, k.create_rev AS create_rev,
                        k.version AS version, k.value AS value
                 FROM live l JOIN kv k ON k.rev = l.rev WHERE ",
            )
            .in_range("l.key", &req.range)
    } else {
        Query::default()
            .text(
                "SELECT v.key AS key, v.rev AS rev, k.create_rev AS create_rev,
                        k.version AS version, k.value AS value
                 FROM (SELECT key, rev FROM live WHERE ",
            )
            .in_range("key", &req.range)
            .text(" AND rev <= ")
            .param(at)
            .text(
                " UNION ALL
                   SELECT key, prev AS rev FROM (
                     SELECT key, MIN(rev) AS first, prev FROM kv NOT INDEXED WHERE rev > ",
            )
            .param(at)
            .text(" AND ")
            .in_range("key", &req.range)
            .text(" GROUP BY key) WHERE prev > 0) v JOIN kv k ON k.rev = v.rev")
    };
    let count: i64 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM ({})", source.sql))
        .map_err(sql_err)?
        .query_row(rusqlite::params_from_iter(&source.params), |r| r.get(0))
        .map_err(sql_err)?;
    let mut resp = RangeResponse {
        count,
        revision: current,
        ..Default::default()
    };
    if req.count_only || count == 0 {
        return Ok(resp);
    }
    let select =
        source
            .text(" ORDER BY key LIMIT ")
            .param(if req.limit > 0 { req.limit } else { -1 });
    let mut stmt = tx.prepare_cached(&select.sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&select.params), |r| {
            Ok(KeyValue {
                key: key_string(r.get(0)?),
                mod_revision: r.get(1)?,
                create_revision: r.get(2)?,
                version: r.get(3)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(4)?),
            })
        })
        .map_err(sql_err)?;
    for row in rows {
        resp.kvs.push(row.map_err(sql_err)?);
    }
    resp.more = (resp.kvs.len() as i64) < count;
    Ok(resp)
}

/// Events with revisions in `[from, to]` in `range`, with previous values, for watches.
pub(crate) fn events(
    tx: &Transaction<'_>,
    range: &KeyRange,
    from: Revision,
    to: Revision,
    limit: usize,
) -> Result<Vec<Event>> {
    let sql_err = |e: rusqlite::Error| Error::Backend(format!("datastore read: {e}"));
    let (_, compacted) = revisions(tx).map_err(sql_err)?;
    if from < compacted {
        return Err(Error::Compacted {
            requested: from,
            compacted,
        });
    }
    // Walk the log by revision (NOT INDEXED keeps SQLite on the rowid range rather than the
    // key index), filtering keys as we go.
    let query = Query::default()
        .text(
            "SELECT k.rev, k.key, k.create_rev, k.version, k.deleted, k.value,
                    p.rev, p.create_rev, p.version, p.deleted, p.value
             FROM kv AS k NOT INDEXED LEFT JOIN kv AS p ON p.rev = k.prev
             WHERE k.rev >= ",
        )
        .param(from)
        .text(" AND k.rev <= ")
        .param(to)
        .text(" AND ")
        .in_range("k.key", range)
        .text(" ORDER BY k.rev LIMIT ")
        .param(limit as i64);
    let mut stmt = tx.prepare_cached(&query.sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(&query.params), |r| {
            let rev: Revision = r.get(0)?;
            let key = key_string(r.get(1)?);
            let deleted: bool = r.get(4)?;
            let prev_rev: Option<Revision> = r.get(6)?;
            let prev_kv = match prev_rev {
                Some(prev_rev) if !r.get::<_, bool>(9)? => Some(KeyValue {
                    key: key.clone(),
                    mod_revision: prev_rev,
                    create_revision: r.get(7)?,
                    version: r.get(8)?,
                    value: Bytes::from(r.get::<_, Vec<u8>>(10)?),
                }),
                _ => None,
            };
            let kv = if deleted {
                KeyValue {
                    key,
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                }
            } else {
                KeyValue {
                    key,
                    mod_revision: rev,
                    create_revision: r.get(2)?,
                    version: r.get(3)?,
                    value: Bytes::from(r.get::<_, Vec<u8>>(5)?),
                }
            };
            Ok(Event {
                kind: if deleted {
                    EventKind::Delete
                } else {
                    EventKind::Put
                },
                kv,
                prev_kv,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reuse_compiled_statements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(super::super::schema::open_writer(&path).unwrap());
        let mut conn = open_reader(&path).unwrap();
        let req = RangeRequest::prefix("/a/").limit(10);
        for i in 0..20 {
            let tx = conn.transaction().unwrap();
            get(&tx, &format!("/a/{i}")).unwrap();
            range(&tx, &req).unwrap();
            events(&tx, &KeyRange::prefix("/a/"), 1, 10, 100).unwrap();
            tx.finish().unwrap();
        }
        let st = conn.prepare_cached(GET_SQL).unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 20);
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
