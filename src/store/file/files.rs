//! The database file itself: opening it (and telling "a running Tether holds it" apart), reading
//! every row in one transaction, and writing rows into a new file (backups, imports).

use super::{failed, CUSTOMERS, VALUES};
use crate::store::{CustomerRecord, Row, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};

/// Why the database file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process has it open: a running Tether (redb allows one process per file).
    InUse(PathBuf),
    /// `create` was false and there is no file.
    Missing(PathBuf),
    Failed(StoreError),
}

impl OpenError {
    pub fn into_store_error(self) -> StoreError {
        match self {
            Self::InUse(path) => StoreError::other(format!(
                "{} is open in another process (a running Tether?)",
                path.display()
            )),
            Self::Missing(path) => {
                StoreError::other(format!("{}: no such store file", path.display()))
            }
            Self::Failed(err) => err,
        }
    }
}

/// Opens the database file, creating it (and its directory) when `create` is set, with a page
/// cache of `cache_bytes` (redb's default, which grows to a gigabyte, when None).
pub fn open_database(
    path: &Path,
    create: bool,
    cache_bytes: Option<usize>,
) -> Result<Database, OpenError> {
    if !create && !path.exists() {
        return Err(OpenError::Missing(path.to_path_buf()));
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| {
            OpenError::Failed(StoreError::other(format!("{}: {err}", dir.display())))
        })?;
    }
    let mut builder = Database::builder();
    if let Some(bytes) = cache_bytes {
        builder.set_cache_size(bytes);
    }
    match builder.create(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(OpenError::InUse(path.to_path_buf())),
        Err(err) => Err(OpenError::Failed(StoreError::other(format!(
            "{}: {err}",
            path.display()
        )))),
    }
}

/// Sends every row to `sink`, read in one transaction: a consistent snapshot that does not hold
/// up writers. Runs on the caller's thread (blocking); stops early if the receiver is gone.
pub fn read_rows(
    db: &Database,
    with_values: bool,
    sink: &tokio::sync::mpsc::Sender<Row>,
) -> Result<(), StoreError> {
    let read = db.begin_read().map_err(|err| failed("reading", err))?;
    let send = |row| sink.blocking_send(row).is_ok();
    match read.open_table(CUSTOMERS) {
        Ok(table) => {
            for entry in table
                .iter()
                .map_err(|err| failed("reading customers", err))?
            {
                let (user, record) = entry.map_err(|err| failed("reading customers", err))?;
                let row = Row::Customer {
                    user: user.value().to_string(),
                    record: CustomerRecord::decode(record.value())?,
                };
                if !send(row) {
                    return Ok(());
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(err) => return Err(failed("reading customers", err)),
    }
    if !with_values {
        return Ok(());
    }
    match read.open_table(VALUES) {
        Ok(table) => {
            for entry in table.iter().map_err(|err| failed("reading values", err))? {
                let (name, data) = entry.map_err(|err| failed("reading values", err))?;
                let row = Row::Value {
                    name: name.value().to_string(),
                    data: data.value().to_string(),
                };
                if !send(row) {
                    return Ok(());
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(err) => return Err(failed("reading values", err)),
    }
    Ok(())
}

/// Writes rows into a database, committing every `BATCH_ROWS` so memory stays bounded.
pub fn write_rows(db: &Database, mut rows: impl Iterator<Item = Row>) -> Result<u64, StoreError> {
    const BATCH_ROWS: usize = 10_000;
    let mut written = 0;
    loop {
        let txn = db.begin_write().map_err(|err| failed("writing", err))?;
        let mut in_batch = 0;
        {
            let mut customers = txn
                .open_table(CUSTOMERS)
                .map_err(|err| failed("writing", err))?;
            let mut values = txn
                .open_table(VALUES)
                .map_err(|err| failed("writing", err))?;
            for row in rows.by_ref().take(BATCH_ROWS) {
                match row {
                    Row::Customer { user, record } => customers
                        .insert(user.as_str(), record.encode().as_slice())
                        .map(drop),
                    Row::Value { name, data } => {
                        values.insert(name.as_str(), data.as_str()).map(drop)
                    }
                }
                .map_err(|err| failed("writing", err))?;
                in_batch += 1;
            }
        }
        txn.commit().map_err(|err| failed("committing", err))?;
        written += in_batch as u64;
        if in_batch < BATCH_ROWS {
            return Ok(written);
        }
    }
}
