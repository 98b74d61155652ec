//! One named value of the store (the LiveChat agent's grant), read and written by a command:
//! directly, or through the running Tether that holds the embedded store.

use super::admin_client::AdminClient;
use super::{memory_store_refused, open_redis, CommandError};
use crate::config::{Config, StoreKind};
use crate::store::file::OpenError;
use crate::store::{FileStore, Store};
use std::sync::Arc;

/// Where a command reads and writes named values.
pub enum NamedValues {
    /// The store itself (a store file nobody holds, or Redis).
    Store(Arc<dyn Store>),
    /// The running Tether holding the store file, through its admin listener.
    Running(AdminClient),
}

impl NamedValues {
    /// Opens the configured store, or finds the running Tether that holds it.
    pub async fn open(config: &Config) -> Result<Self, CommandError> {
        match config.store.kind {
            StoreKind::Memory => Err(memory_store_refused()),
            StoreKind::File => match FileStore::try_open(&config.store.path) {
                Ok(store) => Ok(Self::Store(Arc::new(store))),
                Err(OpenError::InUse(_)) => Ok(Self::Running(AdminClient::new(config)?)),
                Err(err) => Err(err.into_store_error().into()),
            },
            StoreKind::Redis => Ok(Self::Store(Arc::new(open_redis(config).await?))),
        }
    }

    pub async fn value(&self, name: &str) -> Result<Option<String>, CommandError> {
        match self {
            Self::Store(store) => Ok(store.value(name).await?),
            Self::Running(client) => client.value(name).await,
        }
    }

    pub async fn set_value(&self, name: &str, data: String) -> Result<(), CommandError> {
        match self {
            Self::Store(store) => Ok(store.set_value(name, data).await?),
            Self::Running(client) => client.set_value(name, data).await,
        }
    }
}
