//! The steps that must be atomic across replicas, as Lua scripts run by Redis.

use redis::Script;
use std::sync::LazyLock;

/// Records `ARGV[1]` under `KEYS[1]` unless a record is there; counts new records in `KEYS[2]`
/// when given (not in a Cluster, where it lives on another slot). With `ARGV[2]` = "1" an
/// existing record is written again, so a WAIT that follows covers it too. Returns {1, record}
/// when it inserted, {0, the record found} otherwise.
pub(super) static INSERT_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local existing = redis.call('GET', KEYS[1])
if existing then
  if ARGV[2] == '1' then redis.call('SET', KEYS[1], existing) end
  return {0, existing}
end
redis.call('SET', KEYS[1], ARGV[1])
if KEYS[2] then redis.call('INCR', KEYS[2]) end
return {1, ARGV[1]}",
    )
});

/// Sets `KEYS[1]` to `ARGV[1]` unless it has a value; returns the value now stored.
pub(super) static VALUE_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]",
    )
});

/// Takes a code once: the grant the first time, 1 after (a replay, until expiry), 0 if unknown.
/// The tombstone keeps the code's expiry (KEEPTTL: Redis 6.0).
pub(super) static TAKE_CODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local grant = redis.call('GET', KEYS[1])
if not grant then return 0 end
if grant == ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return grant",
    )
});

/// Erases a mapping: deletes `KEYS[1]`, counts it off `KEYS[2]`, and logs the erasure (user hash
/// `ARGV[1]`) in the stream `KEYS[3]`, kept to `ARGV[2]` entries. Returns 1 if a record was there.
pub(super) static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local removed = redis.call('DEL', KEYS[1])
if removed == 1 then redis.call('DECR', KEYS[2]) end
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[2], '*', 'user', ARGV[1])
return removed",
    )
});

/// Deletes a lease only while `ARGV[1]` holds it.
pub(super) static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});
