//! The bodies of `tether store export | import | forget | backup`: moving, erasing and backing
//! up the user -> customer mappings, on any store kind.
//!
//! The embedded store belongs to one process at a time. When a running Tether holds it, these
//! commands ask that Tether through its admin listener (`admin_client`, which needs
//! `server.admin_token`); otherwise they open the file themselves. Redis is always used directly.

mod admin_client;
mod backup;
mod export;
mod forget;
mod import;
mod values;

pub use backup::backup;
pub use export::export;
pub use forget::forget;
pub use import::{import, ImportReport, Progress};
pub use values::NamedValues;

use crate::config::{Config, StoreKind};
use crate::store::file::{open_database, OpenError};
use crate::store::{RedisStore, Row, Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The page cache of a store file a command reads or writes once: enough for redb's tree
/// pages, so an export's memory stays flat whatever the number of mappings.
const COMMAND_CACHE_BYTES: usize = 16 << 20;

/// Why a store command failed, and its exit code.
#[derive(Debug)]
pub enum CommandError {
    /// Bad configuration, arguments or input (exit 2).
    Invalid(String),
    /// The store or the running Tether could not do it (exit 1).
    Failed(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) | Self::Failed(why) => f.write_str(why),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
        Self::Failed(err.to_string())
    }
}

impl From<std::io::Error> for CommandError {
    fn from(err: std::io::Error) -> Self {
        Self::Failed(err.to_string())
    }
}

fn memory_store_refused() -> CommandError {
    CommandError::Invalid(
        "store.kind = \"memory\" keeps nothing outside a running Tether: nothing to move or erase"
            .into(),
    )
}

/// Connects to Redis and checks it answers (and is recent enough) before any work starts.
async fn open_redis(config: &Config) -> Result<RedisStore, CommandError> {
    let store = RedisStore::open(&config.store)?.without_mapping_cache();
    store.ping().await?;
    Ok(store)
}

/// Starts reading every row (the named values too with `with_values`) into `sink`: from the
/// file, from the running Tether that holds it, or from Redis.
fn start_reading(
    config: &Config,
    with_values: bool,
    sink: mpsc::Sender<Row>,
) -> Result<JoinHandle<Result<(), CommandError>>, CommandError> {
    match config.store.kind {
        StoreKind::Memory => Err(memory_store_refused()),
        StoreKind::File => {
            match open_database(&config.store.path, false, Some(COMMAND_CACHE_BYTES)) {
                Ok(db) => Ok(tokio::task::spawn_blocking(move || {
                    crate::store::file::read_rows(&db, with_values, &sink)
                        .map_err(CommandError::from)
                })),
                Err(OpenError::InUse(_)) => {
                    let client = admin_client::AdminClient::new(config)?;
                    Ok(tokio::spawn(
                        async move { client.rows(with_values, sink).await },
                    ))
                }
                Err(OpenError::Missing(path)) => Err(CommandError::Invalid(format!(
                    "{}: no store file there (store.path)",
                    path.display()
                ))),
                Err(OpenError::Failed(err)) => Err(err.into()),
            }
        }
        StoreKind::Redis => {
            let config = config.clone();
            Ok(tokio::spawn(async move {
                let store = open_redis(&config).await?;
                store
                    .rows(with_values, sink)
                    .await
                    .map_err(CommandError::from)
            }))
        }
    }
}

/// Waits for a reader started by `start_reading`.
async fn finish_reading(reader: JoinHandle<Result<(), CommandError>>) -> Result<(), CommandError> {
    reader
        .await
        .map_err(|err| CommandError::Failed(format!("reading the store: {err}")))?
}
