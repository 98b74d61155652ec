//! Customer tokens per user: the mapping (user -> LiveChat customer) and the token cache.
//!
//! Rules (`docs/vendors/livechat.md`, "How the widget uses it"): a cached token is served only while it has more than
//! `refresh_margin` left and keeps its real `creationDate`; a fresh request always re-issues;
//! concurrent requests for one user share one accounts call; a user's customer never changes.
//! A token is handed out only after its user's mapping is durable.
//!
//! With several replicas, a new user's first requests may reach several of them at once: they
//! take turns under a per-user lease in the store, so the user gets one LiveChat customer. The
//! token cache is per replica, or shared through the store (`livechat.token_cache = "shared"`).

use super::accounts::{AccountsClient, AccountsError, CustomerToken};
use super::unrecorded::Unrecorded;
use crate::config::TokenCache;
use crate::metrics::{Counter, Registry};
use crate::redact::Secret;
use crate::store::{CustomerRecord, Lease, Store, StoreError, Turn};
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// LiveChat answered for a different customer than the one on record.
    #[error("LiveChat answered with a different customer than the one on record")]
    CustomerMismatch,
}

/// The token flow's families (`tether_livechat_...`).
pub struct TokenCounters {
    pub issued: Counter,
    pub served_from_cache: Counter,
    /// Tokens another replica fetched, read from the shared cache.
    pub served_from_shared_cache: Counter,
    pub customers_created: Counter,
    /// Customers created by a losing replica in a first-login race (adopted the winner's instead).
    pub surplus_customers: Counter,
    pub unknown_customers: Counter,
    /// Customers whose mapping the store took only on a background retry.
    pub recorded_late: Counter,
    /// Token requests answered with an error (LiveChat or the store unavailable, refusals).
    pub failures: Counter,
}

impl TokenCounters {
    pub fn register(registry: &mut Registry) -> Self {
        let mut counter = |name, help| crate::metrics::counter(registry, name, help);
        Self {
            issued: counter("tokens_issued", "Customer tokens issued by LiveChat."),
            served_from_cache: counter("tokens_cached", "Token requests answered from the cache."),
            served_from_shared_cache: counter(
                "tokens_shared",
                "Tokens read from the shared cache (fetched by another replica).",
            ),
            customers_created: counter(
                "customers_created",
                "LiveChat customers created and recorded.",
            ),
            surplus_customers: counter(
                "surplus_customers",
                "Customers created by a losing first-login race.",
            ),
            unknown_customers: counter(
                "unknown_customers",
                "Recorded customers LiveChat did not know.",
            ),
            recorded_late: counter(
                "customers_recorded_late",
                "Customers created while the store failed, recorded once it answered again.",
            ),
            failures: counter("token_failures", "Token requests answered with an error."),
        }
    }
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
    shared_cache: bool,
    /// Bumped by every erasure: a token fetched while one happened is handed out but not cached,
    /// so an erased user's old token cannot outlive the erasure.
    erasure_epoch: AtomicU64,
    /// Customers created whose mapping the store did not take yet.
    unrecorded: Unrecorded,
    pub counters: TokenCounters,
}

impl TokenService {
    pub fn new(
        accounts: Arc<AccountsClient>,
        store: Arc<dyn Store>,
        refresh_margin: Duration,
        capacity: u64,
        cache: TokenCache,
        counters: TokenCounters,
    ) -> Self {
        let store_for_unrecorded = store.clone();
        Self {
            accounts,
            store,
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilUnservable)
                .build(),
            refresh_margin,
            shared_cache: cache == TokenCache::Shared,
            erasure_epoch: AtomicU64::new(0),
            unrecorded: Unrecorded::new(store_for_unrecorded, counters.recorded_late.clone()),
            counters,
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
                    self.counters.served_from_cache.inc();
                    return Ok(cached.token);
                }
            }
        }
        // Boxed: the slow path's state (the store, the lease, the accounts call) takes kilobytes,
        // and inline it made every cached answer's future as large (allocated and copied on
        // each request).
        Box::pin(self.token_slowly(user, fresh)).await
    }

    /// A token when the cache has none servable (or `fresh`): one caller per user at a time.
    async fn token_slowly(
        &self,
        user: &str,
        fresh: bool,
    ) -> Result<Arc<CustomerToken>, TokenError> {
        // A fresh re-issue replaces a token the widget was just refused: the entry goes now, so
        // reads arriving meanwhile miss the fast path and wait for the new token below instead
        // of being handed the refused one.
        if fresh {
            self.cache.invalidate(user).await;
        }
        // Slow path, one caller per user at a time: whoever comes second finds the first's token.
        let epoch = self.erasure_epoch.load(Relaxed);
        let outcome = self
            .cache
            .entry_by_ref(user)
            .and_try_compute_with(|existing| async move {
                if let Some(entry) = existing.filter(|_| !fresh) {
                    if entry.value().servable_until > Instant::now() {
                        return Ok(Op::Nop);
                    }
                }
                let token = match self.shared_cached(user, fresh).await {
                    Some(token) => token,
                    None => {
                        let token = Arc::new(self.issue(user).await?);
                        self.share(user, &token).await;
                        token
                    }
                };
                let servable_until = if self.erasure_epoch.load(Relaxed) == epoch {
                    self.servable_until(&token)
                } else {
                    Instant::now() // erased meanwhile: served once, never again
                };
                Ok::<_, TokenError>(Op::Put(Cached {
                    token,
                    servable_until,
                }))
            })
            .await?;
        match outcome {
            CompResult::Unchanged(entry) => {
                self.counters.served_from_cache.inc();
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
        if self.shared_cache {
            if let Err(err) = self
                .store
                .cache(&shared_key(user), Vec::new(), Duration::ZERO)
                .await
            {
                tracing::warn!(error = %err, "could not forget a shared cached token");
            }
        }
    }

    /// Erasure: forgets the user's cached tokens, here and in the shared cache.
    pub async fn erase(&self, user: &str) {
        self.erasure_epoch.fetch_add(1, Relaxed);
        self.forget(user).await;
    }

    /// Drops this replica's cached tokens of users erased elsewhere (named by `user_hash`), or
    /// every cached token when some erasures are unknown.
    pub async fn drop_erased(&self, erased: &std::collections::HashSet<&str>, everything: bool) {
        if erased.is_empty() && !everything {
            return;
        }
        self.erasure_epoch.fetch_add(1, Relaxed);
        if everything {
            self.cache.invalidate_all();
            return;
        }
        let users: Vec<Arc<String>> = self
            .cache
            .iter()
            .map(|(user, _)| user)
            .filter(|user| erased.contains(crate::store::user_hash(user).as_str()))
            .collect();
        for user in users {
            self.cache.invalidate(user.as_str()).await;
        }
    }

    /// A servable token from the shared cache, if it is on and has one (never for `fresh`).
    async fn shared_cached(&self, user: &str, fresh: bool) -> Option<Arc<CustomerToken>> {
        if !self.shared_cache || fresh {
            return None;
        }
        let bytes = match self.store.cached(&shared_key(user)).await {
            Ok(bytes) => bytes?,
            Err(err) => {
                tracing::warn!(error = %err, "shared token cache unreadable");
                return None;
            }
        };
        let token = SharedToken::decode(&bytes)?;
        (self.servable_until(&token) > Instant::now()).then(|| {
            self.counters.served_from_shared_cache.inc();
            Arc::new(token)
        })
    }

    /// Puts a new token in the shared cache for as long as it is servable.
    async fn share(&self, user: &str, token: &CustomerToken) {
        if !self.shared_cache {
            return;
        }
        let ttl = self
            .servable_until(token)
            .saturating_duration_since(Instant::now());
        if let Err(err) = self
            .store
            .cache(&shared_key(user), SharedToken::encode(token), ttl)
            .await
        {
            tracing::warn!(error = %err, "could not share a token");
        }
    }

    fn servable_until(&self, token: &CustomerToken) -> Instant {
        let lifetime = Duration::from_secs(token.expires_in);
        let received_ago =
            Duration::from_millis(crate::clock::now_ms().saturating_sub(token.issued_at_ms));
        (Instant::now() + lifetime)
            .checked_sub(self.refresh_margin + received_ago)
            .unwrap_or_else(Instant::now)
    }

    /// Issues a token for the user's customer, creating (and durably recording) the customer on
    /// first login.
    async fn issue(&self, user: &str) -> Result<CustomerToken, TokenError> {
        let record = match self.store.customer(user).await.map_err(TokenError::Store)? {
            Some(record) => record,
            None => match self.first_login(user).await? {
                FirstLogin::Created(token) => return Ok(token),
                FirstLogin::Recorded(record) => record,
            },
        };
        let token = self.call_accounts(user, Some(&record)).await?;
        self.keep_record_current(user, record, token).await
    }

    /// A new user: one replica at a time creates the customer; a replica that waited finds the
    /// mapping its peer recorded.
    async fn first_login(&self, user: &str) -> Result<FirstLogin, TokenError> {
        let ttl = self.accounts.longest_call();
        let turn = Lease::turn(
            &self.store,
            &format!("livechat.first-login:{user}"),
            ttl,
            ttl + Duration::from_secs(1),
            || self.store.customer(user),
        )
        .await
        .map_err(TokenError::Store)?;
        match turn {
            Turn::Done(record) => Ok(FirstLogin::Recorded(record)),
            Turn::Mine(lease) => {
                // A customer this replica created earlier and could not record: adopt it.
                let created = match self.unrecorded.take(user) {
                    Some(token) => Ok(token),
                    None => self.call_accounts(user, None).await,
                };
                let recorded = match created {
                    Ok(token) => match self.record_new_customer(user, token.clone()).await {
                        Err(TokenError::Store(err)) => {
                            self.unrecorded.keep(user, token);
                            Err(TokenError::Store(err))
                        }
                        recorded => recorded,
                    },
                    Err(err) => Err(err),
                };
                lease.release().await;
                recorded.map(FirstLogin::Created)
            }
        }
    }

    /// One customer token call; a recorded customer LiveChat does not know is reported loudly.
    async fn call_accounts(
        &self,
        user: &str,
        existing: Option<&CustomerRecord>,
    ) -> Result<CustomerToken, TokenError> {
        let token = self.accounts.customer_token(existing).await.map_err(|err| {
            if matches!(err, AccountsError::UnknownCustomer(_)) {
                // Creating a new customer here would split the user's history: fail loudly.
                self.counters.unknown_customers.inc();
                tracing::error!(user, error = %err, "LiveChat does not know this user's recorded customer");
            }
            TokenError::Accounts(err)
        })?;
        self.counters.issued.inc();
        Ok(token)
    }

    async fn record_new_customer(
        &self,
        user: &str,
        token: CustomerToken,
    ) -> Result<CustomerToken, TokenError> {
        let record = CustomerRecord::new(token.entity_id.clone(), token.cookie_secret.clone());
        let winner = self
            .store
            .insert_customer_if_absent(user, record)
            .await
            .map_err(TokenError::Store)?;
        if winner.entity_id == token.entity_id {
            self.counters.customers_created.inc();
            return Ok(token);
        }
        // Someone recorded a customer first (a lease that expired mid-call): adopt theirs; ours
        // stays unused in LiveChat.
        self.counters.surplus_customers.inc();
        tracing::warn!(user, surplus = %token.entity_id, kept = %winner.entity_id, "first-login race: adopted the recorded customer");
        let adopted = self.call_accounts(user, Some(&winner)).await?;
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
                cookie_secret: token.cookie_secret.clone(),
                ..record
            };
            self.store
                .replace_customer(user, updated)
                .await
                .map_err(TokenError::Store)?;
        }
        Ok(token)
    }
}

/// How a first login ended.
enum FirstLogin {
    /// This replica created and recorded the customer.
    Created(CustomerToken),
    /// Another replica did: its record.
    Recorded(CustomerRecord),
}

/// The user's entry in the shared token cache.
pub fn shared_key(user: &str) -> String {
    format!("livechat.token:{user}")
}

/// A customer token as kept in the shared cache (JSON, versioned). The cookie secret stays in
/// the mapping only.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedToken {
    v: u8,
    access_token: String,
    entity_id: String,
    expires_in: u64,
    token_type: String,
    organization_id: Option<String>,
    issued_at_ms: u64,
}

impl SharedToken {
    fn encode(token: &CustomerToken) -> Vec<u8> {
        serde_json::to_vec(&SharedToken {
            v: 1,
            access_token: token.access_token.expose().to_string(),
            entity_id: token.entity_id.clone(),
            expires_in: token.expires_in,
            token_type: token.token_type.clone(),
            organization_id: token.organization_id.clone(),
            issued_at_ms: token.issued_at_ms,
        })
        .expect("a token serialises")
    }

    fn decode(bytes: &[u8]) -> Option<CustomerToken> {
        let shared: SharedToken = serde_json::from_slice(bytes).ok()?;
        (shared.v == 1).then(|| CustomerToken {
            access_token: Secret::new(shared.access_token),
            entity_id: shared.entity_id,
            expires_in: shared.expires_in,
            token_type: shared.token_type,
            organization_id: shared.organization_id,
            issued_at_ms: shared.issued_at_ms,
            cookie_secret: None,
            rendered: std::sync::OnceLock::new(),
            page_key: std::sync::OnceLock::new(),
        })
    }
}
