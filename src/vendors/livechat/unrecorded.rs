//! Customers LiveChat created whose mapping could not be stored (the store failed right after
//! LiveChat answered). Forgetting them would leave an orphan at LiveChat and give the user a
//! second customer on their retry. Instead this replica keeps the customer, records it in the
//! background as soon as the store answers again, and a retry that reaches this replica first
//! adopts it rather than asking LiveChat for another.
//!
//! What is left: a replica killed between LiveChat's answer and the store's (its memory goes
//! with it), and a retry that reaches another replica after the first-login lease expired but
//! before this replica recorded the customer. LiveChat offers no way to find a customer again
//! by anything Tether could have sent, so those stay orphans.

use super::accounts::CustomerToken;
use crate::metrics::Counter;
use crate::store::{CustomerRecord, Store};
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often, and how long, the background recording tries.
const RETRY_EVERY: Duration = Duration::from_millis(200);
const GIVE_UP_AFTER: u32 = 3000; // ten minutes

pub struct Unrecorded {
    pending: Arc<DashMap<String, CustomerToken>>,
    store: Arc<dyn Store>,
    /// Customers recorded by the background retry.
    recorded_late: Counter,
}

impl Unrecorded {
    pub fn new(store: Arc<dyn Store>, recorded_late: Counter) -> Self {
        Self {
            pending: Arc::default(),
            store,
            recorded_late,
        }
    }

    /// The customer this replica created for `user` and could not record, to adopt.
    pub fn take(&self, user: &str) -> Option<CustomerToken> {
        self.pending.remove(user).map(|(_, token)| token)
    }

    /// Keeps `token`'s customer for `user` and records it once the store answers again.
    pub fn keep(&self, user: &str, token: CustomerToken) {
        let record = CustomerRecord::new(token.entity_id.clone(), token.cookie_secret.clone());
        self.pending.insert(user.to_string(), token);
        let (pending, store, counter) = (
            self.pending.clone(),
            self.store.clone(),
            self.recorded_late.clone(),
        );
        let user = user.to_string();
        tokio::spawn(async move {
            for _ in 0..GIVE_UP_AFTER {
                tokio::time::sleep(RETRY_EVERY).await;
                if !pending.contains_key(&user) {
                    return; // adopted by a retry, which records it itself
                }
                if store
                    .insert_customer_if_absent(&user, record.clone())
                    .await
                    .is_ok()
                {
                    pending.remove(&user);
                    counter.inc();
                    return;
                }
            }
            pending.remove(&user);
            tracing::error!(
                entity = %record.entity_id,
                "gave up recording a LiveChat customer after ten minutes; it stays unused"
            );
        });
    }
}
