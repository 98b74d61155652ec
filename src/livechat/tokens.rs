//! Customer tokens per user: the mapping (user -> LiveChat customer) and the token cache.
//!
//! Rules (livechat.md section 1): a cached token is served only while it has more than
//! `refresh_margin` left and keeps its real `creationDate`; a fresh request always re-issues;
//! concurrent requests for one user share one accounts call; a user's customer never changes.
//! A token is handed out only after its user's mapping is durable.

use super::accounts::{AccountsClient, AccountsError, CustomerToken};
use crate::store::{CustomerRecord, Store, StoreError};
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Accounts(AccountsError),
    Store(StoreError),
    /// LiveChat answered for a different customer than the one on record.
    CustomerMismatch,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Accounts(err) => err.fmt(f),
            Self::Store(err) => err.fmt(f),
            Self::CustomerMismatch => {
                f.write_str("LiveChat answered with a different customer than the one on record")
            }
        }
    }
}

/// Counters for /metrics.
#[derive(Default, Debug)]
pub struct TokenCounters {
    pub issued: AtomicU64,
    pub served_from_cache: AtomicU64,
    pub customers_created: AtomicU64,
    /// Customers created by a losing replica in a first-login race (adopted the winner's instead).
    pub surplus_customers: AtomicU64,
    pub unknown_customers: AtomicU64,
}

/// A cached token, with the instant until which it may be served.
#[derive(Clone)]
struct Cached {
    token: Arc<CustomerToken>,
    servable_until: Instant,
}

/// Entries leave the cache when they stop being servable.
struct UntilUnservable;

impl moka::Expiry<String, Cached> for UntilUnservable {
    fn expire_after_create(&self, _: &String, value: &Cached, now: Instant) -> Option<Duration> {
        Some(value.servable_until.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        key: &String,
        value: &Cached,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, now)
    }
}

pub struct TokenService {
    accounts: Arc<AccountsClient>,
    store: Arc<dyn Store>,
    cache: Cache<String, Cached>,
    refresh_margin: Duration,
    pub counters: TokenCounters,
}

impl TokenService {
    pub fn new(
        accounts: Arc<AccountsClient>,
        store: Arc<dyn Store>,
        refresh_margin: Duration,
        capacity: u64,
    ) -> Self {
        Self {
            accounts,
            store,
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilUnservable)
                .build(),
            refresh_margin,
            counters: TokenCounters::default(),
        }
    }

    pub fn accounts(&self) -> &Arc<AccountsClient> {
        &self.accounts
    }

    /// The user's token: cached while servable, re-issued when `fresh` or when it is not.
    pub async fn token(&self, user: &str, fresh: bool) -> Result<Arc<CustomerToken>, TokenError> {
        // Fast path: a servable cached token, read without taking the per-user lock.
        if !fresh {
            if let Some(cached) = self.cache.get(user).await {
                if cached.servable_until > Instant::now() {
                    self.counters.served_from_cache.fetch_add(1, Relaxed);
                    return Ok(cached.token);
                }
            }
        }
        // Slow path, one caller per user at a time: whoever comes second finds the first's token.
        let outcome = self
            .cache
            .entry_by_ref(user)
            .and_try_compute_with(|existing| async move {
                if let Some(entry) = existing.filter(|_| !fresh) {
                    if entry.value().servable_until > Instant::now() {
                        return Ok(Op::Nop);
                    }
                }
                let token = Arc::new(self.issue(user).await?);
                let servable_until = self.servable_until(&token);
                Ok::<_, TokenError>(Op::Put(Cached {
                    token,
                    servable_until,
                }))
            })
            .await?;
        match outcome {
            CompResult::Unchanged(entry) => {
                self.counters.served_from_cache.fetch_add(1, Relaxed);
                Ok(entry.into_value().token)
            }
            CompResult::Inserted(entry) | CompResult::ReplacedWith(entry) => {
                Ok(entry.into_value().token)
            }
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                unreachable!("the compute function only keeps or puts an entry")
            }
        }
    }

    /// Forgets the user's cached token (logout).
    pub async fn forget(&self, user: &str) {
        self.cache.invalidate(user).await;
    }

    /// The entity id on record for a user, if any.
    pub async fn entity_of(&self, user: &str) -> Result<Option<String>, TokenError> {
        let record = self.store.customer(user).await.map_err(TokenError::Store)?;
        Ok(record.map(|record| record.entity_id))
    }

    fn servable_until(&self, token: &CustomerToken) -> Instant {
        let lifetime = Duration::from_secs(token.expires_in);
        let received_ago =
            Duration::from_millis(super::accounts::now_ms().saturating_sub(token.issued_at_ms));
        (Instant::now() + lifetime)
            .checked_sub(self.refresh_margin + received_ago)
            .unwrap_or_else(Instant::now)
    }

    /// Issues a token for the user's customer, creating (and durably recording) the customer on
    /// first login.
    async fn issue(&self, user: &str) -> Result<CustomerToken, TokenError> {
        let existing = self.store.customer(user).await.map_err(TokenError::Store)?;
        let token = self.accounts.customer_token(existing.as_ref()).await.map_err(|err| {
            if matches!(err, AccountsError::UnknownCustomer(_)) {
                // Creating a new customer here would split the user's history: fail loudly.
                self.counters.unknown_customers.fetch_add(1, Relaxed);
                tracing::error!(user, error = %err, "LiveChat does not know this user's recorded customer");
            }
            TokenError::Accounts(err)
        })?;
        self.counters.issued.fetch_add(1, Relaxed);
        let token = match existing {
            Some(record) => self.keep_record_current(user, record, token).await?,
            None => self.record_new_customer(user, token).await?,
        };
        Ok(token)
    }

    async fn record_new_customer(
        &self,
        user: &str,
        token: CustomerToken,
    ) -> Result<CustomerToken, TokenError> {
        let record = CustomerRecord {
            entity_id: token.entity_id.clone(),
            cookie_secret: token.cookie_secret.clone(),
        };
        let winner = self
            .store
            .insert_customer_if_absent(user, record)
            .await
            .map_err(TokenError::Store)?;
        if winner.entity_id == token.entity_id {
            self.counters.customers_created.fetch_add(1, Relaxed);
            return Ok(token);
        }
        // Another replica recorded a customer first: adopt it; ours stays unused.
        self.counters.surplus_customers.fetch_add(1, Relaxed);
        tracing::warn!(user, surplus = %token.entity_id, kept = %winner.entity_id, "first-login race: adopted the recorded customer");
        let adopted = self
            .accounts
            .customer_token(Some(&winner))
            .await
            .map_err(TokenError::Accounts)?;
        self.keep_record_current(user, winner, adopted).await
    }

    /// Checks the answer is for the recorded customer and stores a rotated cookie secret.
    async fn keep_record_current(
        &self,
        user: &str,
        record: CustomerRecord,
        token: CustomerToken,
    ) -> Result<CustomerToken, TokenError> {
        if token.entity_id != record.entity_id {
            tracing::error!(user, recorded = %record.entity_id, answered = %token.entity_id, "LiveChat answered for another customer");
            return Err(TokenError::CustomerMismatch);
        }
        if token.cookie_secret.is_some() && token.cookie_secret != record.cookie_secret {
            let updated = CustomerRecord {
                entity_id: record.entity_id,
                cookie_secret: token.cookie_secret.clone(),
            };
            self.store
                .replace_customer(user, updated)
                .await
                .map_err(TokenError::Store)?;
        }
        Ok(token)
    }
}
