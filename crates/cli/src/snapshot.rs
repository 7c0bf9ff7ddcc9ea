//! `rkube snapshot save|restore|inspect`: backups of the embedded SQLite datastore.

use std::path::PathBuf;

use anyhow::{Result, bail};
use rkube_store::sqlite::snapshot;

use crate::server::{default_data_dir, sqlite_path};

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Write a consistent copy of the datastore to FILE (safe while the server runs).
    Save {
        file: PathBuf,
        /// The server's data directory.
        #[arg(long, env = "RKUBE_DATA_DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
    /// Replace the datastore with the snapshot FILE. Stop the server first; the replaced
    /// datastore is kept beside it.
    Restore {
        file: PathBuf,
        /// The server's data directory.
        #[arg(long, env = "RKUBE_DATA_DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
    /// Check a snapshot and show what it holds.
    Inspect { file: PathBuf },
}

pub fn run(cmd: SnapshotCommand) -> Result<()> {
    match cmd {
        SnapshotCommand::Save { file, data_dir } => {
            let info = snapshot::save(&sqlite_path(&data_dir), &file)?;
            println!(
                "Snapshot saved to {} (revision {}, {} keys, {} bytes)",
                file.display(),
                info.revision,
                info.keys,
                info.size
            );
        }
        SnapshotCommand::Restore { file, data_dir } => {
            if !file.is_file() {
                bail!("snapshot {} does not exist", file.display());
            }
            let db = sqlite_path(&data_dir);
            let info = snapshot::restore(&file, &db)?;
            println!(
                "Restored {} into {} ({} keys from revision {}; revisions continue at {})",
                file.display(),
                db.display(),
                info.snapshot.keys,
                info.snapshot.revision,
                info.revision
            );
            if let Some(previous) = info.previous {
                println!("The replaced datastore was kept as {}", previous.display());
            }
        }
        SnapshotCommand::Inspect { file } => {
            let info = snapshot::inspect(&file)?;
            println!(
                "{}: revision {}, {} keys, {} bytes",
                file.display(),
                info.revision,
                info.keys,
                info.size
            );
        }
    }
    Ok(())
}
