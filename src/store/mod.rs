//! State: the user -> LiveChat customer mapping (durable: losing it loses the customer's chat
//! history), a few small values (the agent's OAuth tokens), and short-lived entries (LivePerson's
//! one-time codes, leases, shared cached tokens).
//!
//! Backends sit behind one trait with "insert if absent, return the winner" semantics: in memory,
//! an embedded file (one replica), or Redis (several replicas). Every write is durable before its
//! future resolves: a caller that got Ok may hand the result to a user.

mod erasure;
mod expiring;
pub mod file;
mod lease;
mod memory;
mod redis;
mod rows;

pub use erasure::{user_hash, ErasureCursor, Erasures, LOG_LENGTH, POLL_INTERVAL};
pub use file::FileStore;
pub use lease::{Lease, Turn};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use rows::Row;

use crate::config::{Config, StoreKind};
use crate::io::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A brand user's LiveChat customer.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// LiveChat's customer id (`entity_id`, equal to the `__lc_cid` cookie).
    pub entity_id: String,
    /// The cookie grant's `__lc_cst` secret; losing it loses the identity.
    pub cookie_secret: Option<String>,
    /// When the customer was recorded, in Unix milliseconds (unknown for records written before
    /// Tether kept it).
    pub created_at_ms: Option<u64>,
}

impl fmt::Debug for CustomerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerRecord")
            .field("entity_id", &self.entity_id)
            .field(
                "cookie_secret",
                &self.cookie_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// Stored forms. Version 1: `[1][entity_id length: u8][entity_id][cookie secret, if any]`.
/// Version 2 adds the creation time: `[2][length][entity_id][created_at_ms: u64 BE][secret]`.
/// The leading version byte lets every older form be read alongside the newest.
const RECORD_V1: u8 = 1;
const RECORD_V2: u8 = 2;

impl CustomerRecord {
    /// A customer recorded now.
    pub fn new(entity_id: String, cookie_secret: Option<String>) -> Self {
        Self {
            entity_id,
            cookie_secret,
            created_at_ms: Some(crate::clock::now_ms()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let secret = self.cookie_secret.as_deref().unwrap_or("");
        let mut bytes = Vec::with_capacity(10 + self.entity_id.len() + secret.len());
        let entity_len = u8::try_from(self.entity_id.len()).expect("LiveChat entity ids are short");
        match self.created_at_ms {
            Some(created_at) => {
                bytes.extend_from_slice(&[RECORD_V2, entity_len]);
                bytes.extend_from_slice(self.entity_id.as_bytes());
                bytes.extend_from_slice(&created_at.to_be_bytes());
            }
            None => {
                bytes.extend_from_slice(&[RECORD_V1, entity_len]);
                bytes.extend_from_slice(self.entity_id.as_bytes());
            }
        }
        bytes.extend_from_slice(secret.as_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = || StoreError::other("a customer record is corrupt or of an unknown version");
        let (&version, rest) = bytes.split_first().ok_or_else(corrupt)?;
        if version != RECORD_V1 && version != RECORD_V2 {
            return Err(corrupt());
        }
        let (&len, rest) = rest.split_first().ok_or_else(corrupt)?;
        let (entity, mut secret) = rest.split_at_checked(len as usize).ok_or_else(corrupt)?;
        let mut created_at_ms = None;
        if version == RECORD_V2 {
            let (created, rest) = secret.split_first_chunk::<8>().ok_or_else(corrupt)?;
            created_at_ms = Some(u64::from_be_bytes(*created));
            secret = rest;
        }
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_string)
                .map_err(|_| corrupt())
        };
        Ok(Self {
            entity_id: text(entity)?,
            cookie_secret: if secret.is_empty() {
                None
            } else {
                Some(text(secret)?)
            },
            created_at_ms,
        })
    }
}

/// Why a store operation failed. The backends' own errors are kept as sources; the message
/// carries their text too, so a log line or `/readyz` says what went wrong without walking the
/// chain.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or failed a command (or could not be reached).
    #[error("store: redis {what}: {source}")]
    Redis {
        what: &'static str,
        #[source]
        source: Arc<::redis::RedisError>,
    },
    /// The embedded database failed.
    #[error("store: {what}: {source}")]
    File {
        what: &'static str,
        #[source]
        source: Arc<redb::Error>,
    },
    /// No answer within the store's timeout.
    #[error("store: redis {what}: no answer within {after:?}")]
    Timeout { what: &'static str, after: Duration },
    /// A write reached fewer replicas than `min_replica_acks` in time: not acknowledged.
    #[error("store: redis {what}: {got} of {wanted} replicas had the write in time")]
    NotReplicated {
        what: &'static str,
        wanted: u32,
        got: i64,
    },
    /// A corrupt or foreign record, a lease held too long, an unusable server: the text says.
    #[error("store: {0}")]
    Other(std::borrow::Cow<'static, str>),
}

impl StoreError {
    pub fn other(message: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::Other(message.into())
    }
}

/// The store's families: `tether_store_customers` and `tether_store_errors_total`, read at
/// scrape time.
pub fn register_metrics(store: &Arc<dyn Store>, registry: &mut crate::metrics::Registry) {
    let counted = store.clone();
    crate::metrics::gauge_fn(
        registry,
        "customers",
        "Customers recorded in the store.",
        move || Some(counted.customer_count() as i64),
    );
    let counted = store.clone();
    crate::metrics::counter_fn(
        registry,
        "errors",
        "Store operations that failed (unreachable, timed out, refused).",
        move || counted.error_count(),
    );
    if store.mapping_cache().is_some() {
        let cache = store.clone();
        crate::metrics::gauge_fn(
            registry,
            "mapping_cache_entries",
            "Mappings this replica keeps in memory (read-through, bounded).",
            move || cache.mapping_cache().map(|stats| stats.entries as i64),
        );
        let cache = store.clone();
        crate::metrics::counter_fn(
            registry,
            "mapping_cache_hits",
            "Mapping reads answered from memory.",
            move || cache.mapping_cache().map_or(0, |stats| stats.hits),
        );
        let cache = store.clone();
        crate::metrics::counter_fn(
            registry,
            "mapping_cache_misses",
            "Mapping reads that went to the store.",
            move || cache.mapping_cache().map_or(0, |stats| stats.misses),
        );
    }
}

/// The read-through mapping cache of a shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
}

pub trait Store: Send + Sync + 'static {
    /// The customer recorded for `user`, if any.
    fn customer(&self, user: &str) -> BoxFuture<Result<Option<CustomerRecord>, StoreError>>;

    /// Records `record` for `user` unless a record exists, durably; returns the stored record (the
    /// winner, which is not `record` when someone else got there first).
    fn insert_customer_if_absent(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<CustomerRecord, StoreError>>;

    /// `insert_customer_if_absent`, also saying whether this call inserted (an import counts
    /// what it finds as present, not as imported, in one round trip).
    fn insert_customer_reporting(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(CustomerRecord, bool), StoreError>> {
        // Read first (cheap for the in-process stores): what is found was not inserted.
        let read = self.customer(user);
        let insert = self.insert_customer_if_absent(user, record.clone());
        Box::pin(async move {
            if let Some(existing) = read.await? {
                return Ok((existing, false));
            }
            let winner = insert.await?;
            let inserted = winner == record;
            Ok((winner, inserted))
        })
    }

    /// Replaces the record for `user` (the cookie grant's rotated secret), durably.
    fn replace_customer(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(), StoreError>>;

    /// A small named value (for example the agent's current refresh token).
    fn value(&self, key: &str) -> BoxFuture<Result<Option<String>, StoreError>>;

    fn set_value(&self, key: &str, value: String) -> BoxFuture<Result<(), StoreError>>;

    /// The named value, storing `value` (durably) if there is none yet: the first writer wins
    /// on every replica.
    fn value_or_insert(&self, key: &str, value: String) -> BoxFuture<Result<String, StoreError>>;

    /// How many customers are recorded.
    fn customer_count(&self) -> usize;

    /// Erases `user`'s mapping, durably; true if there was one. A shared store also logs the
    /// erasure (even when it found no mapping: other replicas may still hold tokens), so every
    /// replica hears of it through `erasures`.
    fn remove_customer(&self, user: &str) -> BoxFuture<Result<bool, StoreError>>;

    /// Erasures logged after `cursor` (a shared store; the in-process stores log none, since
    /// every erasure reaches them in this process). The default cursor starts at the log's end.
    fn erasures(&self, cursor: ErasureCursor) -> BoxFuture<Result<Erasures, StoreError>> {
        Box::pin(async move {
            Ok(Erasures {
                cursor,
                ..Erasures::default()
            })
        })
    }

    /// Sends every durable row to `sink`: the mappings, and the named values with `with_values`.
    /// The embedded store reads them in one transaction (a consistent snapshot); Redis is scanned
    /// while it serves, so a mapping recorded during the scan may or may not be included.
    fn rows(
        &self,
        with_values: bool,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> BoxFuture<Result<(), StoreError>>;

    /// Keeps a one-time code's grant for `ttl` (the key is a hash of the code, never the code).
    fn put_code(
        &self,
        key: &str,
        grant: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<Result<(), StoreError>>;

    /// Takes a code's grant: at most one caller ever gets `Taken`, on any replica.
    fn take_code(&self, key: &str) -> BoxFuture<Result<CodeTake, StoreError>>;

    /// Takes the lease `name` for `holder` if nobody holds it; true if taken. Leases make replicas
    /// take turns (one agent-token refresh, one first login per user); they expire after `ttl`, so
    /// a holder that dies blocks the others for `ttl` at most. See `Lease`.
    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> BoxFuture<Result<bool, StoreError>>;

    /// Gives the lease up, if `holder` still holds it.
    fn release_lease(&self, name: &str, holder: &str) -> BoxFuture<Result<(), StoreError>>;

    /// A short-lived shared entry (the shared token cache), while it lives.
    fn cached(&self, key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StoreError>>;

    /// Keeps `value` under `key` for `ttl`; a zero `ttl` removes the entry.
    fn cache(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<Result<(), StoreError>>;

    /// Operations that failed so far (for /metrics).
    fn error_count(&self) -> u64 {
        0
    }

    /// Shared failure counting (opt-in limits across replicas): adds one to `key`'s count in
    /// minute `window`. Only a shared store counts; the others do nothing.
    fn count_failure(&self, _key: &str, _window: u64) -> BoxFuture<Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    /// `key`'s counts in minutes `window` and `window - 1`.
    fn failure_counts(
        &self,
        _key: &str,
        _window: u64,
    ) -> BoxFuture<Result<(u64, u64), StoreError>> {
        Box::pin(async { Ok((0, 0)) })
    }

    /// The read-through mapping cache's figures, for a store that has one.
    fn mapping_cache(&self) -> Option<CacheStats> {
        None
    }

    /// Readiness: the store answers (always, for the in-process stores).
    fn ping(&self) -> BoxFuture<Result<(), StoreError>>;
}

/// The outcome of redeeming a one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTake {
    Taken(Vec<u8>),
    /// Redeemed before: a replay.
    AlreadyTaken,
    /// Never issued, or expired.
    Unknown,
}

/// Opens the store the configuration names.
pub fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config.store.kind {
        StoreKind::Memory => Ok(Arc::new(MemoryStore::default())),
        StoreKind::File => Ok(Arc::new(FileStore::open(&config.store.path)?)),
        StoreKind::Redis => Ok(Arc::new(RedisStore::open(&config.store)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        for secret in [None, Some("cst-1".to_string())] {
            for created_at_ms in [None, Some(1_763_000_000_123)] {
                let record = CustomerRecord {
                    entity_id: "c109b12f-8461-40a0-8189-604246a3b4d4".into(),
                    cookie_secret: secret.clone(),
                    created_at_ms,
                };
                assert_eq!(CustomerRecord::decode(&record.encode()).unwrap(), record);
            }
        }
        // Version 1 records (no creation time) written by earlier releases still read.
        assert_eq!(
            CustomerRecord::decode(b"\x01\x02e1cst").unwrap(),
            CustomerRecord {
                entity_id: "e1".into(),
                cookie_secret: Some("cst".into()),
                created_at_ms: None,
            }
        );
        for garbage in [
            &b""[..],
            b"\x03\x01a",
            b"\x01\x09abc",
            b"\x01\x01\xff",
            b"\x02\x01a1234567",
        ] {
            assert!(CustomerRecord::decode(garbage).is_err(), "{garbage:?}");
        }
    }
}
