//! `tether store backup OUT`: a consistent copy of the embedded store (mappings and named
//! values, read in one transaction) as a new store file. Restoring is putting that file at
//! `store.path` while Tether is stopped.

use super::{finish_reading, start_reading, CommandError};
use crate::config::{Config, StoreKind};
use crate::store::file::{open_database, write_rows};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Writes the backup to `out` (never over an existing file); the number of rows.
pub async fn backup(config: &Config, out: &Path) -> Result<u64, CommandError> {
    if config.store.kind != StoreKind::File {
        return Err(CommandError::Invalid(
            "backup copies the embedded store (store.kind = \"file\"); back Redis up with its own persistence (RDB/AOF), or move its mappings with `tether store export`".into(),
        ));
    }
    if out.exists() {
        return Err(CommandError::Invalid(format!(
            "{}: exists already; choose a new file",
            out.display()
        )));
    }
    // Written beside the target and renamed when complete: OUT is whole or absent.
    let partial = partial_path(out);
    let _ = std::fs::remove_file(&partial);
    let written = copy_into(config, &partial).await;
    let finished = written.and_then(|rows| {
        std::fs::rename(&partial, out)?;
        if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(rows)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

async fn copy_into(config: &Config, target: &Path) -> Result<u64, CommandError> {
    let db = open_database(target, true, Some(super::COMMAND_CACHE_BYTES))
        .map_err(|err| err.into_store_error())?;
    let (sink, mut rows) = mpsc::channel(1024);
    let reader = start_reading(config, true, sink)?;
    let writer = tokio::task::spawn_blocking(move || {
        write_rows(&db, std::iter::from_fn(|| rows.blocking_recv()))
    });
    // The reader first: if it failed, the writer saw a short stream that must not be kept.
    finish_reading(reader).await?;
    let written = writer
        .await
        .map_err(|err| CommandError::Failed(format!("writing the backup: {err}")))??;
    Ok(written)
}
