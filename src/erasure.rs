//! Erasing one person when they ask: their user -> customer mapping, and what every vendor
//! keeps about them (cached tokens on this replica and in the shared cache). The LiveChat
//! customer itself (chats, name, email) lives with LiveChat; the brand erases it there.
//!
//! With a shared store, every replica reads the store's erasure log every `POLL_INTERVAL` and
//! drops what it cached for the users erased elsewhere (see `store::erasure`).

use crate::lifecycle::stopped;
use crate::metrics::{Counter, Registry};
use crate::store::{user_hash, ErasureCursor, Store, StoreError, POLL_INTERVAL};
use crate::vendors::Vendor;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Eraser {
    store: Arc<dyn Store>,
    vendors: Vec<Arc<dyn Vendor>>,
    /// Users erased through this replica.
    erased: Counter,
}

impl Eraser {
    /// Registers `users_erased` on `registry` (the store's: `tether_store_users_erased_total`).
    pub fn new(
        store: Arc<dyn Store>,
        vendors: Vec<Arc<dyn Vendor>>,
        registry: &mut Registry,
    ) -> Self {
        Self {
            store,
            vendors,
            erased: crate::metrics::counter(
                registry,
                "users_erased",
                "Users erased (mapping and cached tokens) through this replica.",
            ),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Erases `user`; true if a mapping was recorded. Cached tokens are dropped either way.
    pub async fn erase(&self, user: &str) -> Result<bool, StoreError> {
        // The mapping first: a token request racing this one then finds no customer to cache.
        let removed = self.store.remove_customer(user).await?;
        for vendor in &self.vendors {
            vendor.forget_user(user).await;
        }
        self.erased.inc();
        // The log names the user by hash only: an erasure should not leave their id behind.
        tracing::info!(user = %user_hash(user), removed, "erased a user's mapping and cached tokens");
        Ok(removed)
    }

    /// Follows the store's erasure log until `stop`, dropping what this replica cached for users
    /// erased elsewhere.
    pub async fn follow_erasures(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut cursor = ErasureCursor::default();
        let mut failing = false;
        loop {
            match self.store.erasures(cursor.clone()).await {
                Ok(erasures) => {
                    if failing {
                        tracing::info!("reading the erasure log again");
                        failing = false;
                    }
                    if erasures.missed_some {
                        tracing::warn!("erasures were missed while the store was unreachable; dropping every cached token");
                    }
                    let erased: HashSet<&str> = erasures.users.iter().map(String::as_str).collect();
                    for vendor in &self.vendors {
                        vendor.forget_erased(&erased, erasures.missed_some).await;
                    }
                    cursor = erasures.cursor;
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "cannot read the erasure log; cached tokens are kept until it can be read");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }
}
