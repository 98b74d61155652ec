//! `tether store forget USER`: erase one user's mapping and cached tokens.

use super::admin_client::AdminClient;
use super::{memory_store_refused, open_redis, CommandError};
use crate::config::{Config, StoreKind};
use crate::store::file::OpenError;
use crate::store::{FileStore, Store};

/// What `forget` did.
#[derive(Debug, PartialEq, Eq)]
pub struct Forgotten {
    /// A mapping was recorded and is now gone.
    pub removed: bool,
    /// It went through the running Tether that holds the embedded store.
    pub through_running_tether: bool,
}

pub async fn forget(config: &Config, user: &str) -> Result<Forgotten, CommandError> {
    if user.is_empty() {
        return Err(CommandError::Invalid("expected a user id".into()));
    }
    match config.store.kind {
        StoreKind::Memory => Err(memory_store_refused()),
        // No store file yet: nobody was ever recorded (and none is created here).
        StoreKind::File if !config.store.path.exists() => Ok(Forgotten {
            removed: false,
            through_running_tether: false,
        }),
        StoreKind::File => match FileStore::try_open(&config.store.path) {
            // Nobody serves from the file: no tokens are cached anywhere.
            Ok(store) => Ok(Forgotten {
                removed: store.remove_customer(user).await?,
                through_running_tether: false,
            }),
            Err(OpenError::InUse(_)) => Ok(Forgotten {
                removed: AdminClient::new(config)?.erase(user).await?,
                through_running_tether: true,
            }),
            Err(err) => Err(err.into_store_error().into()),
        },
        StoreKind::Redis => {
            // Checks Redis answers before the vendors are built on it.
            let store = open_redis(config).await?;
            // Erased as a replica erases (every vendor drops its shared cache entries), and
            // logged in Redis, so every running replica drops what it cached in memory.
            let extensions = crate::router::build(config)
                .await
                .map_err(|err| CommandError::Invalid(err.to_string()))?;
            let removed = match extensions.eraser {
                Some(eraser) => eraser.erase(user).await?,
                None => store.remove_customer(user).await?,
            };
            Ok(Forgotten {
                removed,
                through_running_tether: false,
            })
        }
    }
}
