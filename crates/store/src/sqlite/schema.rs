//! The SQLite datastore's schema, connection settings and the checks made when a datastore
//! file is opened.
//!
//! Layout:
//! - `kv`: the log. One row per revision (`rev` is the revision): the key, its value, create
//!   revision, version, a deletion flag, the key's previous row (`prev`, 0 for none) and an
//!   expiry time in ms since the epoch (0 for none). It has no index on the key: every write
//!   appends to it, and an index would cost each write a random page (15% of throughput).
//!   Reads at past revisions work from `live` and the `prev` links instead (see `read.rs`).
//! - `live`: for each existing key, the revision of its current row and its expiry.
//! - `ttl`: `(expiry, key)` of the existing keys that have one, so expired keys are found
//!   without a scan. (A separate table rather than a partial index on `live`: SQLite
//!   recompiles every statement on a table with a partial index each time a parameter is
//!   bound, which cost the writer 15% of its time.)
//! - `meta`: named integers: schema version, compacted revision, how far compaction has
//!   physically deleted, and a revision floor (raised by a snapshot restore so that revisions
//!   never go backwards).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Error, Result};

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const CREATE: &str = "
CREATE TABLE kv (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    create_rev INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    prev       INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    value      BLOB    NOT NULL
);
CREATE TABLE live (
    key     BLOB PRIMARY KEY,
    rev     INTEGER NOT NULL,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE ttl (
    expires INTEGER NOT NULL,
    key     BLOB    NOT NULL,
    PRIMARY KEY (expires, key)
) WITHOUT ROWID;
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Meta names.
pub(crate) const META_SCHEMA: &str = "schema_version";
pub(crate) const META_COMPACTED: &str = "compacted";
pub(crate) const META_COMPACT_DONE: &str = "compact_done";
pub(crate) const META_FLOOR: &str = "revision_floor";

fn sql_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Settings every connection gets.
fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| sql_err(path, e))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;")
        .map_err(|e| sql_err(path, e))?;
    Ok(())
}

/// Opens (creating if absent) the datastore for writing, checks it and brings its schema up.
///
/// An existing file that is not a readable, intact rkube datastore is an error naming the
/// file; it is never replaced.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let exists = path.exists();
    if exists {
        check_readable(path)?;
    } else if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Corrupt {
            path: dir.to_path_buf(),
            message: format!("cannot create the datastore directory: {e}"),
        })?;
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if !exists {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_err(path, e))?;
    configure(&conn, path)?;
    // WAL: readers never block the writer; FULL: a commit is on disk when it returns.
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(|e| sql_err(path, e))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA wal_autocheckpoint = 4000;",
    )
    .map_err(|e| sql_err(path, e))?;
    if verify(&conn, path)? == Contents::Empty {
        initialize(&conn).map_err(|e| sql_err(path, e))?;
    }
    Ok(conn)
}

/// Creates the schema in an empty database. A database left empty by an interrupted first
/// start is initialised the same way.
fn initialize(conn: &Connection) -> rusqlite::Result<()> {
    // auto_vacuum must be chosen before the first table exists (VACUUM applies it).
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(CREATE)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2), (?3, 0), (?4, 0), (?5, 1)",
        rusqlite::params![
            META_SCHEMA,
            SCHEMA_VERSION,
            META_COMPACTED,
            META_COMPACT_DONE,
            META_FLOOR
        ],
    )?;
    tx.commit()
}

/// Opens a connection for reads of an existing datastore.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_err(path, e))?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Opens a datastore file read-only (for snapshots and inspection), after checking it.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    check_readable(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_err(path, e))?;
    configure(&conn, path)?;
    match verify(&conn, path)? {
        Contents::Datastore => Ok(conn),
        Contents::Empty => Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: "the file is an empty database, not an rkube datastore".into(),
        }),
    }
}

/// Fails with a clear error if the file cannot be read or is not an SQLite database.
fn check_readable(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("cannot open the datastore: {e}"),
    })?;
    let n = file.read(&mut header).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("cannot read the datastore: {e}"),
    })?;
    if n == 0 {
        // An empty file is what SQLite itself leaves when creation was interrupted before the
        // first page; it holds no data, and SQLite initialises it in place.
        return Ok(());
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: "the file is not an SQLite database (bad header); refusing to use or \
                      replace it — restore it from a snapshot (rkube snapshot restore) or move it away"
                .into(),
        });
    }
    Ok(())
}

/// What [`verify`] found.
#[derive(Debug, PartialEq, Eq)]
enum Contents {
    /// No tables at all: a new database.
    Empty,
    /// An rkube datastore this build can use.
    Datastore,
}

/// Checks that the file is intact and is an rkube datastore of a schema version this build
/// understands.
fn verify(conn: &Connection, path: &Path) -> Result<Contents> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let mut problems: Vec<String> = Vec::new();
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| corrupt(format!("integrity check failed: {e}")))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| corrupt(format!("integrity check failed: {e}")))?;
    for row in rows {
        let line = row.map_err(|e| corrupt(format!("integrity check failed: {e}")))?;
        if line != "ok" {
            problems.push(line);
        }
    }
    if !problems.is_empty() {
        return Err(corrupt(format!(
            "the database is corrupt ({}); restore it from a snapshot (rkube snapshot restore)",
            problems.join("; ")
        )));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('kv', 'live', 'ttl', 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| corrupt(e.to_string()))?;
    if tables == 0 {
        let any: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if any == 0 {
            return Ok(Contents::Empty);
        }
        return Err(corrupt(
            "the file is an SQLite database but not an rkube datastore".into(),
        ));
    }
    if tables != 4 {
        return Err(corrupt(
            "the datastore is missing some of its tables (kv, live, ttl, meta)".into(),
        ));
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [META_SCHEMA],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| corrupt(e.to_string()))?;
    match version {
        Some(SCHEMA_VERSION) => Ok(Contents::Datastore),
        Some(v) => Err(corrupt(format!(
            "the datastore has schema version {v}; this rkube understands version {SCHEMA_VERSION}"
        ))),
        None => Err(corrupt("the datastore has no schema version".into())),
    }
}
