//! Backups of the SQLite datastore: `rkube snapshot save` and `rkube snapshot restore`.
//!
//! A snapshot is a compact, self-contained copy of the datastore made in one read
//! transaction (`VACUUM INTO`), so it is consistent even while the server keeps writing.
//! Restoring checks the snapshot, keeps the replaced datastore beside it, and raises the
//! revision floor above every revision the replaced datastore handed out, marking older
//! history compacted: revisions never go backwards, and clients watching from before the
//! restore are told to re-list (410 Gone) instead of silently missing changes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::DatastoreLock;
use super::read::revisions;
use super::schema::{META_COMPACTED, META_FLOOR, open_read_only};
use crate::{Error, Result, Revision};

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The revision the snapshot was taken at.
    pub revision: Revision,
    /// Keys that exist at that revision.
    pub keys: i64,
    /// Size of the snapshot file in bytes.
    pub size: u64,
}

/// The outcome of a restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreInfo {
    pub snapshot: SnapshotInfo,
    /// Where the replaced datastore was kept, if there was one.
    pub previous: Option<PathBuf>,
    /// The revision the restored datastore continues from.
    pub revision: Revision,
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("{what} {}: {e}", path.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Reads what a snapshot (or datastore) file holds, checking that it is intact.
pub fn inspect(file: &Path) -> Result<SnapshotInfo> {
    let conn = open_read_only(file)?;
    info(&conn, file)
}

fn info(conn: &Connection, file: &Path) -> Result<SnapshotInfo> {
    let (revision, _) = revisions(conn).map_err(|e| io_err(file, "reading", e))?;
    let keys: i64 = conn
        .query_row("SELECT COUNT(*) FROM live", [], |r| r.get(0))
        .map_err(|e| io_err(file, "reading", e))?;
    let size = std::fs::metadata(file)
        .map_err(|e| io_err(file, "reading", e))?
        .len();
    Ok(SnapshotInfo {
        revision,
        keys,
        size,
    })
}

/// Writes a consistent copy of the datastore `db` to `dest` (replacing `dest` if it exists).
/// Safe while a server has the datastore open.
pub fn save(db: &Path, dest: &Path) -> Result<SnapshotInfo> {
    if !db.exists() {
        return Err(Error::Backend(format!(
            "no datastore at {} (is --data-dir right?)",
            db.display()
        )));
    }
    let conn = open_read_only(db)?;
    let tmp = sibling(dest, &format!(".part-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(|e| io_err(dest, "writing snapshot", e))?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, dest).map_err(|e| io_err(dest, "writing snapshot", e))?;
        sync_parent(dest)?;
        inspect(dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces the datastore `db` with the snapshot `snapshot`. The server must not be running
/// ([`Error::InUse`] otherwise). The replaced datastore, if any, is kept as
/// `<db>.before-restore-<unix time>`.
pub fn restore(snapshot: &Path, db: &Path) -> Result<RestoreInfo> {
    let snap = inspect(snapshot)?;
    let _lock = DatastoreLock::acquire(db)?;

    // The revision the replaced datastore reached; a corrupt one cannot tell, and then the
    // restored datastore continues from the snapshot's own revision.
    let previous_revision = if db.exists() {
        match checkpoint_and_read(db) {
            Ok(rev) => Some(rev),
            Err(e) => {
                tracing::warn!(error = %e, "the replaced datastore cannot be read; its revision is unknown");
                None
            }
        }
    } else {
        None
    };

    // Build the new datastore next to the old one, then swap it in.
    let tmp = sibling(db, ".restore-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(snapshot, &tmp).map_err(|e| io_err(&tmp, "copying snapshot to", e))?;
    let floor = previous_revision
        .map(|r| r.max(snap.revision) + 1)
        .unwrap_or(snap.revision);
    let prepared = (|| {
        let conn = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| io_err(&tmp, "opening", e))?;
        conn.execute_batch("PRAGMA journal_mode = DELETE")
            .map_err(|e| io_err(&tmp, "preparing", e))?;
        if floor > snap.revision {
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE name IN (?2, ?3)",
                params![floor, META_FLOOR, META_COMPACTED],
            )
            .map_err(|e| io_err(&tmp, "preparing", e))?;
        }
        drop(conn);
        sync_file(&tmp)
    })();
    if let Err(e) = prepared {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }

    let mut previous = None;
    if db.exists() {
        let backup = sibling(db, &format!(".before-restore-{}", crate::now_ms() / 1000));
        for (from, to) in [
            (db.to_path_buf(), backup.clone()),
            (sibling(db, "-wal"), sibling(&backup, "-wal")),
        ] {
            if from.exists() {
                std::fs::hard_link(&from, &to)
                    .map_err(|e| io_err(&to, "keeping the replaced datastore as", e))?;
            }
        }
        previous = Some(backup);
    }
    for stale in [sibling(db, "-wal"), sibling(db, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&stale, "removing", e)),
        }
    }
    std::fs::rename(&tmp, db).map_err(|e| io_err(db, "installing the snapshot as", e))?;
    sync_parent(db)?;
    Ok(RestoreInfo {
        snapshot: snap,
        previous,
        revision: floor,
    })
}

/// Folds the WAL of a datastore nobody has open into its main file and returns its revision.
fn checkpoint_and_read(db: &Path) -> Result<Revision> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| io_err(db, "opening", e))?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| io_err(db, "checkpointing", e))?;
    let (rev, _) = revisions(&conn).map_err(|e| io_err(db, "reading", e))?;
    Ok(rev)
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(path, "syncing", e))
}

fn sync_parent(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, "syncing", e))
}
