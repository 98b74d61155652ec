//! The shared store for several replicas: Redis 6+ or Valkey, through one multiplexed connection
//! that reconnects by itself.
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
//! are Lua scripts. Every write is acknowledged by Redis before its future resolves; how durable
//! that is depends on the server's persistence, which is read and logged on first contact.

use super::{
    user_hash, CodeTake, CustomerRecord, ErasureCursor, Erasures, Row, Store, StoreError,
    LOG_LENGTH,
};
use crate::config::StoreConfig;
use crate::io::BoxFuture;
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, ScriptInvocation, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

mod erasure_log;
mod scan;
mod scripts;
mod server_info;

use scripts::{INSERT_IF_ABSENT, RELEASE_LEASE, REMOVE, TAKE_CODE, VALUE_IF_ABSENT};

/// Version bytes in front of stored values (customer records carry their own).
const VALUE_V1: u8 = 1;
const TOMBSTONE: &[u8] = &[0];

#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    /// Whether `customers` is kept (not by one-off commands such as an import, which would only
    /// fill memory with mappings they never read again).
    caches_mappings: bool,
    /// Read-through cache of the mappings (a customer never changes; a cookie-grant secret does,
    /// so records with a secret are always read from Redis).
    customers: Arc<DashMap<String, CustomerRecord>>,
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
        let url = config.url.as_ref().map(|url| url.expose()).unwrap_or("");
        let client = redis::Client::open(url).map_err(|err| failed("URL", err))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Few, quick reconnection attempts per command: a request fails fast while Redis is
            // down, and the next one tries again.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|err| failed("connection", err))?;
        Ok(Self {
            connection,
            prefix: config.prefix.as_str().into(),
            timeout: config.timeout,
            caches_mappings: true,
            customers: Arc::default(),
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
        self.bounded(
            what,
            async move |mut connection: ConnectionManager| match cmd
                .query_async(&mut connection)
                .await
            {
                Err(err) if worth_retrying(&err, true) => cmd.query_async(&mut connection).await,
                result => result,
            },
        )
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
        self.bounded(
            what,
            async move |mut connection: ConnectionManager| match pipe
                .query_async(&mut connection)
                .await
            {
                Err(err) if worth_retrying(&err, true) => pipe.query_async(&mut connection).await,
                result => result,
            },
        )
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
            async move |mut connection: ConnectionManager| match invocation
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
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
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

/// Whether to send again on the reconnected connection: always when the connection was refused
/// (the command did not run); after any other connection failure only if running twice is safe.
fn worth_retrying(err: &redis::RedisError, runs_twice_safely: bool) -> bool {
    err.is_connection_refusal()
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
                let record = record.clone();
                return Box::pin(async move { Ok(Some(record)) });
            }
        }
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
        let keys = [self.key("customer:", user), self.key("customers", "")];
        let (user, remember, count) = (user.to_string(), self.remember(), self.count.clone());
        let encoded = record.encode();
        // Running twice is safe: the second run finds the first one's record.
        let mut invocation = INSERT_IF_ABSENT.prepare_invoke();
        invocation.key(&keys[0]).key(&keys[1]).arg(encoded);
        let write = self.script::<Vec<u8>>("insert", invocation, true);
        Box::pin(async move {
            let winner = CustomerRecord::decode(&write.await?)?;
            if winner == record {
                count.fetch_add(1, Relaxed);
            }
            remember(user, winner.clone());
            Ok(winner)
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
        let write = self.query::<()>("write", redis::cmd("SET").arg(key).arg(encoded).to_owned());
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
            .arg(key)
            .arg(versioned(value.as_bytes()))
            .to_owned();
        self.query("write", cmd)
    }

    fn value_or_insert(&self, name: &str, value: String) -> BoxFuture<Result<String, StoreError>> {
        let key = self.key("value:", name);
        let mut invocation = VALUE_IF_ABSENT.prepare_invoke();
        invocation.key(key).arg(versioned(value.as_bytes()));
        // Running twice is safe: the second run finds the first one's value.
        let write = self.script::<Vec<u8>>("write", invocation, true);
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

    fn remove_customer(&self, user: &str) -> BoxFuture<Result<bool, StoreError>> {
        let keys = [
            self.key("customer:", user),
            self.key("customers", ""),
            self.key("erasures", ""),
        ];
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
        let (user, customers, count, epoch) = (
            user.to_string(),
            self.customers.clone(),
            self.count.clone(),
            self.erasure_epoch.clone(),
        );
        Box::pin(async move {
            let removed = remove.await? == 1;
            epoch.fetch_add(1, Relaxed);
            customers.remove(&user);
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
        let check = self.bounded("ping", async move |mut c: ConnectionManager| {
            let (_, customers): ((), Option<u64>) = redis::pipe()
                .cmd("PING")
                .get(count_key)
                .query_async(&mut c)
                .await?;
            if already_described {
                return Ok((customers, None));
            }
            let server: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
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
