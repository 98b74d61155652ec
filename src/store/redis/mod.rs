//! The shared store for several replicas: Redis 6+ or Valkey, one server, a Sentinel-managed
//! primary or a Cluster (`topology`), through multiplexed connections that reconnect by
//! themselves.
//!
//! Keys, all under the configured prefix (default `tether:`):
//!
//! | key               | value                                                  | expires |
//! |-------------------|--------------------------------------------------------|---------|
//! | `customer:{user}` | the user's `CustomerRecord` (version byte first)       | never   |
//! | `customers`       | how many customers were recorded (for /metrics)        | never   |
//! | `value:{name}`    | a small named value: version byte, then UTF-8          | never   |
//! | `code:{hash}`     | a one-time code's sealed grant: `1` + bytes, `0` taken | TTL     |
//! | `lease:{name}`    | a lease's holder                                       | TTL     |
//! | `cache:{key}`     | a shared cache entry: `1` + bytes                      | TTL     |
//! | `erasures`        | a stream: one entry (`user` = `user_hash`) per erasure | last `LOG_LENGTH` |
//!
//! Steps that must be atomic across replicas (insert if absent, take a code, release a lease)
//! are Lua scripts, each touching one key, so each runs on one Cluster slot (the `customers`
//! counter and the erasure log are then written by separate commands: the counter feeds
//! /metrics only, and an erasure is logged before the mapping goes). Every write is acknowledged
//! by Redis before its future resolves; with `min_replica_acks`, the writes that must survive a
//! failover (new mappings, rotated secrets, the agent's tokens) also wait until that many
//! replicas have them (WAIT), or fail (503) and are never acknowledged. The server's
//! persistence and replicas are read and logged on first contact.

use super::{
    user_hash, CodeTake, CustomerRecord, ErasureCursor, Erasures, Row, Store, StoreError,
    LOG_LENGTH,
};
use crate::config::StoreConfig;
use crate::io::BoxFuture;
use redis::{FromRedisValue, ScriptInvocation, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use topology::Connection;

mod erasure_log;
mod scan;
mod scripts;
mod server_info;
mod topology;

use scripts::{INSERT_IF_ABSENT, RELEASE_LEASE, REMOVE, TAKE_CODE, VALUE_IF_ABSENT};

/// Version bytes in front of stored values (customer records carry their own).
const VALUE_V1: u8 = 1;
const TOMBSTONE: &[u8] = &[0];

#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    /// Keys of one script must share a slot: in a Cluster, the counter and the erasure log are
    /// written by commands of their own.
    cluster: bool,
    /// A Sentinel-managed primary (failovers happen).
    sentinel: bool,
    /// `min_replica_acks` and how long to wait for them (None: no WAIT).
    replica_acks: Option<(u32, Duration)>,
    prefix: Arc<str>,
    timeout: Duration,
    /// Whether `customers` is kept (not by one-off commands such as an import, which would only
    /// fill memory with mappings they never read again).
    caches_mappings: bool,
    /// Read-through cache of the mappings, bounded (a customer never changes; a cookie-grant
    /// secret does, so records with a secret are always read from Redis).
    customers: moka::sync::Cache<String, CustomerRecord>,
    cache_hits: Arc<AtomicU64>,
    cache_misses: Arc<AtomicU64>,
    /// The `customers` counter as last read or written.
    count: Arc<AtomicU64>,
    /// The server's version and persistence were checked and logged.
    described: Arc<AtomicBool>,
    /// Bumped whenever erasures drop entries from `customers`: a read that started before an
    /// erasure must not put the erased record back.
    erasure_epoch: Arc<AtomicU64>,
    /// Commands that failed or timed out.
    errors: Arc<AtomicU64>,
}

fn failed(what: &'static str, err: redis::RedisError) -> StoreError {
    StoreError::Redis {
        what,
        source: Arc::new(err),
    }
}

impl RedisStore {
    /// Prepares the connection; it is made on first use, so Tether starts (and proxies) while
    /// Redis is down, and reports not ready until it answers.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let connection = Connection::open(config).map_err(|err| failed("connection", err))?;
        Ok(Self {
            connection,
            cluster: config.redis_topology() == crate::config::RedisTopology::Cluster,
            sentinel: config.redis_topology() == crate::config::RedisTopology::Sentinel,
            replica_acks: (config.min_replica_acks > 0)
                .then_some((config.min_replica_acks, config.replica_ack_timeout)),
            prefix: config.prefix.as_str().into(),
            timeout: config.timeout,
            caches_mappings: true,
            customers: moka::sync::Cache::new(config.mapping_cache_capacity),
            cache_hits: Arc::default(),
            cache_misses: Arc::default(),
            count: Arc::default(),
            described: Arc::default(),
            erasure_epoch: Arc::default(),
            errors: Arc::default(),
        })
    }

    /// For one-off commands: mappings are not cached in this process.
    pub fn without_mapping_cache(mut self) -> Self {
        self.caches_mappings = false;
        self
    }

    /// Keeps a mapping read or written in the read-through cache (when this store caches).
    fn remember(&self) -> impl Fn(String, CustomerRecord) + Send + 'static {
        let (customers, caches) = (self.customers.clone(), self.caches_mappings);
        move |user, record| {
            if caches {
                customers.insert(user, record);
            }
        }
    }

    /// `write`, acknowledged only once `min_replica_acks` replicas have it (WAIT on the primary
    /// holding `key`); without that setting, `write` as it is. Fewer replicas in time: an
    /// error, so the caller answers 503 and nothing is acknowledged.
    fn replicated<T: Send + 'static>(
        &self,
        what: &'static str,
        key: String,
        write: BoxFuture<Result<T, StoreError>>,
    ) -> BoxFuture<Result<T, StoreError>> {
        let Some((wanted, wait)) = self.replica_acks else {
            return write;
        };
        let mut connection = self.connection.clone();
        let errors = self.errors.clone();
        Box::pin(async move {
            let value = write.await?;
            let got = match tokio::time::timeout(
                wait + Duration::from_secs(1),
                connection.wait_for_replicas(&key, wanted, wait),
            )
            .await
            {
                Ok(Ok(got)) => got,
                Ok(Err(err)) => {
                    errors.fetch_add(1, Relaxed);
                    return Err(failed(what, err));
                }
                Err(_) => 0,
            };
            if got < i64::from(wanted) {
                errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    what,
                    wanted,
                    got,
                    "a write did not reach enough replicas in time; not acknowledged"
                );
                return Err(StoreError::NotReplicated { what, wanted, got });
            }
            Ok(value)
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}{name}", self.prefix)
    }

    /// Sends one command, bounded by the store's timeout. A connection that turns out dead
    /// (Redis restarted since the last command) makes the manager reconnect, and the command is
    /// sent once more on the new connection: every command here may safely run twice.
    fn query<T>(&self, what: &'static str, cmd: redis::Cmd) -> BoxFuture<Result<T, StoreError>>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.bounded(what, async move |mut connection: Connection| {
            match cmd.query_async(&mut connection).await {
                Err(err) if worth_retrying(&err, true) => cmd.query_async(&mut connection).await,
                result => result,
            }
        })
    }

    /// Sends a pipeline of reads, like `query`.
    fn pipeline<T>(
        &self,
        what: &'static str,
        pipe: redis::Pipeline,
    ) -> BoxFuture<Result<T, StoreError>>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.bounded(what, async move |mut connection: Connection| {
            match pipe.query_async(&mut connection).await {
                Err(err) if worth_retrying(&err, true) => pipe.query_async(&mut connection).await,
                result => result,
            }
        })
    }

    /// Runs a script, like `query`; one that must not run twice (taking a code) is tried again
    /// only when the connection was refused, so it certainly did not run.
    fn script<T>(
        &self,
        what: &'static str,
        invocation: ScriptInvocation<'static>,
        runs_twice_safely: bool,
    ) -> BoxFuture<Result<T, StoreError>>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.bounded(
            what,
            async move |mut connection: Connection| match invocation
                .invoke_async(&mut connection)
                .await
            {
                Err(err) if worth_retrying(&err, runs_twice_safely) => {
                    invocation.invoke_async(&mut connection).await
                }
                result => result,
            },
        )
    }

    fn bounded<T, F, Fut>(&self, what: &'static str, op: F) -> BoxFuture<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let (connection, timeout) = (self.connection.clone(), self.timeout);
        let errors = self.errors.clone();
        Box::pin(async move {
            let result = match tokio::time::timeout(timeout, op(connection)).await {
                Ok(result) => result.map_err(|err| failed(what, err)),
                Err(_) => Err(StoreError::Timeout {
                    what,
                    after: timeout,
                }),
            };
            if result.is_err() {
                errors.fetch_add(1, Relaxed);
            }
            result
        })
    }
}

impl RedisStore {
    /// An erasure in a Cluster, where the log, the mapping and the counter are on different
    /// slots: logged first (every replica then drops what it cached), then deleted, then
    /// counted off. A failure between steps leaves a logged erasure whose mapping is still
    /// there: the command fails and is run again.
    fn remove_across_slots(
        &self,
        user: &str,
        keys: [String; 3],
    ) -> BoxFuture<Result<bool, StoreError>> {
        let [customer, counter, log] = keys;
        let append = redis::cmd("XADD")
            .arg(&log)
            .arg("MAXLEN")
            .arg(LOG_LENGTH)
            .arg("*")
            .arg("user")
            .arg(user_hash(user))
            .to_owned();
        let this = self.clone();
        Box::pin(async move {
            this.query::<String>("erase", append).await?;
            let removed: i64 = this
                .query("erase", redis::cmd("DEL").arg(&customer).to_owned())
                .await?;
            if removed == 1 {
                let _ = this
                    .query::<i64>("count", redis::cmd("DECR").arg(&counter).to_owned())
                    .await;
            }
            Ok(removed == 1)
        })
    }
}

/// Whether to send again on the reconnected connection: always when the connection was refused
/// or reached a former primary (READONLY: the command did not run); after any other connection
/// failure only if running twice is safe.
fn worth_retrying(err: &redis::RedisError, runs_twice_safely: bool) -> bool {
    err.is_connection_refusal()
        || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        || (runs_twice_safely && (err.is_io_error() || err.is_connection_dropped()))
}

/// A stored value without its version byte.
fn unversioned(bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    match bytes.split_first() {
        Some((&VALUE_V1, rest)) => Ok(rest.to_vec()),
        _ => Err(StoreError::other(
            "a stored value is corrupt or of an unknown version",
        )),
    }
}

fn versioned(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + bytes.len());
    out.push(VALUE_V1);
    out.extend_from_slice(bytes);
    out
}

impl Store for RedisStore {
    fn customer(&self, user: &str) -> BoxFuture<Result<Option<CustomerRecord>, StoreError>> {
        if let Some(record) = self.customers.get(user) {
            if record.cookie_secret.is_none() {
                self.cache_hits.fetch_add(1, Relaxed);
                return Box::pin(async move { Ok(Some(record)) });
            }
        }
        self.cache_misses.fetch_add(1, Relaxed);
        let (key, user, remember) = (
            self.key("customer:", user),
            user.to_string(),
            self.remember(),
        );
        let (epoch, started) = (self.erasure_epoch.clone(), self.erasure_epoch.load(Relaxed));
        let read = self.query::<Option<Vec<u8>>>("read", redis::cmd("GET").arg(key).to_owned());
        Box::pin(async move {
            let Some(bytes) = read.await? else {
                return Ok(None);
            };
            let record = CustomerRecord::decode(&bytes)?;
            if epoch.load(Relaxed) == started {
                remember(user, record.clone());
            }
            Ok(Some(record))
        })
    }

    fn insert_customer_if_absent(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<CustomerRecord, StoreError>> {
        let insert = self.insert_customer_reporting(user, record);
        Box::pin(async move { Ok(insert.await?.0) })
    }

    /// One round trip: the script says whether it inserted.
    fn insert_customer_reporting(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(CustomerRecord, bool), StoreError>> {
        let key = self.key("customer:", user);
        let counter = self.key("customers", "");
        let (user, remember, count) = (user.to_string(), self.remember(), self.count.clone());
        let encoded = record.encode();
        // Running twice is safe: the second run finds the first one's record.
        let mut invocation = INSERT_IF_ABSENT.prepare_invoke();
        invocation.key(&key);
        if !self.cluster {
            invocation.key(&counter);
        }
        invocation.arg(encoded).arg(if self.replica_acks.is_some() {
            "1"
        } else {
            "0"
        });
        let insert = self.script::<(i64, Vec<u8>)>("insert", invocation, true);
        let count_separately = self
            .cluster
            .then(|| self.query::<i64>("count", redis::cmd("INCR").arg(&counter).to_owned()));
        let write: BoxFuture<Result<(i64, Vec<u8>), StoreError>> = Box::pin(async move {
            let (inserted, stored) = insert.await?;
            if let (1, Some(increment)) = (inserted, count_separately) {
                // The counter only feeds /metrics: a failure here loses nothing.
                let _ = increment.await;
            }
            Ok((inserted, stored))
        });
        let write = self.replicated("insert", key, write);
        Box::pin(async move {
            let (inserted, stored) = write.await?;
            let winner = CustomerRecord::decode(&stored)?;
            if inserted == 1 {
                count.fetch_add(1, Relaxed);
            }
            remember(user, winner.clone());
            Ok((winner, inserted == 1))
        })
    }

    fn replace_customer(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("customer:", user);
        let (user, remember) = (user.to_string(), self.remember());
        let encoded = record.encode();
        let set = redis::cmd("SET").arg(&key).arg(encoded).to_owned();
        let write = self.replicated("write", key, self.query::<()>("write", set));
        Box::pin(async move {
            write.await?;
            remember(user, record);
            Ok(())
        })
    }

    fn value(&self, name: &str) -> BoxFuture<Result<Option<String>, StoreError>> {
        let key = self.key("value:", name);
        let read = self.query::<Option<Vec<u8>>>("read", redis::cmd("GET").arg(key).to_owned());
        Box::pin(async move {
            let Some(bytes) = read.await? else {
                return Ok(None);
            };
            String::from_utf8(unversioned(bytes)?)
                .map(Some)
                .map_err(|_| StoreError::other("a stored value is not UTF-8"))
        })
    }

    fn set_value(&self, name: &str, value: String) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("value:", name);
        let cmd = redis::cmd("SET")
            .arg(&key)
            .arg(versioned(value.as_bytes()))
            .to_owned();
        self.replicated("write", key, self.query("write", cmd))
    }

    fn value_or_insert(&self, name: &str, value: String) -> BoxFuture<Result<String, StoreError>> {
        let key = self.key("value:", name);
        let mut invocation = VALUE_IF_ABSENT.prepare_invoke();
        invocation.key(&key).arg(versioned(value.as_bytes()));
        // Running twice is safe: the second run finds the first one's value.
        let write = self.replicated(
            "write",
            key,
            self.script::<Vec<u8>>("write", invocation, true),
        );
        Box::pin(async move {
            String::from_utf8(unversioned(write.await?)?)
                .map_err(|_| StoreError::other("a stored value is not UTF-8"))
        })
    }

    fn customer_count(&self) -> usize {
        usize::try_from(self.count.load(Relaxed)).unwrap_or(usize::MAX)
    }

    fn error_count(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    fn count_failure(&self, key: &str, window: u64) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("limit:", &format!("{key}:{window}"));
        // Kept two windows, for the sliding estimate.
        let pipe = redis::pipe()
            .cmd("INCR")
            .arg(&key)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(120_000)
            .ignore()
            .to_owned();
        self.pipeline("limit", pipe)
    }

    fn failure_counts(&self, key: &str, window: u64) -> BoxFuture<Result<(u64, u64), StoreError>> {
        let keys = [
            self.key("limit:", &format!("{key}:{window}")),
            self.key("limit:", &format!("{key}:{}", window.saturating_sub(1))),
        ];
        // One key per command: in a Cluster they may live on different slots.
        let pipe = redis::pipe()
            .cmd("GET")
            .arg(&keys[0])
            .cmd("GET")
            .arg(&keys[1])
            .to_owned();
        let read = self.pipeline::<(Option<u64>, Option<u64>)>("limit", pipe);
        Box::pin(async move {
            let (now, before) = read.await?;
            Ok((now.unwrap_or(0), before.unwrap_or(0)))
        })
    }

    fn mapping_cache(&self) -> Option<crate::store::CacheStats> {
        Some(crate::store::CacheStats {
            entries: self.customers.entry_count(),
            hits: self.cache_hits.load(Relaxed),
            misses: self.cache_misses.load(Relaxed),
        })
    }

    fn remove_customer(&self, user: &str) -> BoxFuture<Result<bool, StoreError>> {
        let keys = [
            self.key("customer:", user),
            self.key("customers", ""),
            self.key("erasures", ""),
        ];
        let remove: BoxFuture<Result<bool, StoreError>> = if self.cluster {
            self.remove_across_slots(user, keys)
        } else {
            let mut invocation = REMOVE.prepare_invoke();
            invocation
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .arg(user_hash(user))
                .arg(LOG_LENGTH);
            // Not run twice on a doubtful connection: a second run would log the erasure twice
            // (harmless) but answer "nothing was there".
            let remove = self.script::<i64>("erase", invocation, false);
            Box::pin(async move { Ok(remove.await? == 1) })
        };
        let (user, customers, count, epoch) = (
            user.to_string(),
            self.customers.clone(),
            self.count.clone(),
            self.erasure_epoch.clone(),
        );
        Box::pin(async move {
            let removed = remove.await?;
            epoch.fetch_add(1, Relaxed);
            customers.invalidate(&user);
            if removed {
                let _ = count.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            }
            Ok(removed)
        })
    }

    fn erasures(&self, cursor: ErasureCursor) -> BoxFuture<Result<Erasures, StoreError>> {
        self.read_erasures(cursor)
    }

    fn rows(
        &self,
        with_values: bool,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.scan_rows(with_values, sink)
    }

    fn put_code(
        &self,
        key: &str,
        grant: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("code:", key);
        let ms = ttl_ms(ttl);
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(versioned(&grant))
            .arg("PX")
            .arg(ms)
            .to_owned();
        self.query("write", cmd)
    }

    fn take_code(&self, key: &str) -> BoxFuture<Result<CodeTake, StoreError>> {
        let key = self.key("code:", key);
        let mut invocation = TAKE_CODE.prepare_invoke();
        invocation.key(key).arg(TOMBSTONE);
        let take = self.script::<Value>("take", invocation, false);
        Box::pin(async move {
            match take.await? {
                Value::Int(0) => Ok(CodeTake::Unknown),
                Value::Int(1) => Ok(CodeTake::AlreadyTaken),
                Value::BulkString(bytes) => Ok(CodeTake::Taken(unversioned(bytes)?)),
                other => Err(StoreError::other(format!(
                    "redis take: unexpected answer {other:?}"
                ))),
            }
        })
    }

    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> BoxFuture<Result<bool, StoreError>> {
        let key = self.key("lease:", name);
        let (holder, ms) = (holder.to_string(), ttl_ms(ttl));
        // Sent twice, the second finds the first's lease and answers nil: the lease then
        // expires unused, a delay at worst.
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .to_owned();
        let set = self.query::<Option<String>>("lease", cmd);
        Box::pin(async move { Ok(set.await?.is_some()) })
    }

    fn release_lease(&self, name: &str, holder: &str) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("lease:", name);
        let holder = holder.to_string();
        let mut invocation = RELEASE_LEASE.prepare_invoke();
        invocation.key(key).arg(holder);
        self.script("release", invocation, true)
    }

    fn cached(&self, key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StoreError>> {
        let key = self.key("cache:", key);
        let read = self.query::<Option<Vec<u8>>>("read", redis::cmd("GET").arg(key).to_owned());
        Box::pin(async move { read.await?.map(unversioned).transpose() })
    }

    fn cache(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<Result<(), StoreError>> {
        let key = self.key("cache:", key);
        let ms = ttl_ms(ttl);
        let cmd = if ttl.is_zero() {
            redis::cmd("DEL").arg(key).to_owned()
        } else {
            redis::cmd("SET")
                .arg(key)
                .arg(versioned(&value))
                .arg("PX")
                .arg(ms)
                .to_owned()
        };
        self.query("write", cmd)
    }

    /// PING, and the customer count for /metrics. On first contact the server's version and
    /// persistence are checked too (and logged).
    fn ping(&self) -> BoxFuture<Result<(), StoreError>> {
        let count_key = self.key("customers", "");
        let (count, described) = (self.count.clone(), self.described.clone());
        let already_described = described.load(Relaxed);
        let check = self.bounded("ping", async move |mut c: Connection| {
            let (_, customers): ((), Option<u64>) = redis::pipe()
                .cmd("PING")
                .get(count_key)
                .query_async(&mut c)
                .await?;
            if already_described {
                return Ok((customers, None));
            }
            let server: String = c
                .on_a_primary(redis::cmd("INFO").arg("server").to_owned())
                .await?;
            let (persistence, fsync) = server_info::read_persistence(&mut c).await?;
            Ok((customers, Some((server, persistence, fsync))))
        });
        Box::pin(async move {
            let (customers, info) = check.await?;
            count.store(customers.unwrap_or(0), Relaxed);
            if let Some((server, persistence, fsync)) = info {
                server_info::describe_server(&server, &persistence, fsync.as_deref())?;
                described.store(true, Relaxed);
            }
            Ok(())
        })
    }
}

/// Milliseconds for PX, at least 1 (Redis refuses 0).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_a_version() {
        assert_eq!(unversioned(versioned(b"abc")).unwrap(), b"abc".to_vec());
        assert!(unversioned(vec![2, b'a']).is_err());
        assert!(unversioned(Vec::new()).is_err());
    }
}
