//! What the server is: its version (6.0 or newer) and how durable its writes are, read on first
//! contact and logged.

use crate::store::StoreError;

/// One field of an INFO answer.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Refuses servers older than 6.0 (the scripts need KEEPTTL) and says how durable writes are.
pub(super) fn describe_server(
    server: &str,
    persistence: &str,
    fsync: Option<&str>,
) -> Result<(), StoreError> {
    let version = info_field(server, "valkey_version")
        .map(|v| format!("Valkey {v}"))
        .or_else(|| info_field(server, "redis_version").map(|v| format!("Redis {v}")))
        .unwrap_or_else(|| "an unknown server".into());
    let major: u32 = info_field(server, "redis_version")
        .and_then(|v| v.split('.').next()?.parse().ok())
        .unwrap_or(0);
    if major < 6 {
        return Err(StoreError::other(format!(
            "the store needs Redis 6.0 or newer (or Valkey); the server is {version}"
        )));
    }
    match durability_problem(persistence, fsync) {
        None => {
            tracing::info!(server = %version, "redis store: every write is fsynced before it is acknowledged")
        }
        Some(problem) => tracing::warn!(server = %version, "redis store: {problem}"),
    }
    Ok(())
}

/// What the server's persistence settings would lose, if anything.
pub(super) fn durability_problem(persistence: &str, fsync: Option<&str>) -> Option<String> {
    let aof = info_field(persistence, "aof_enabled") == Some("1");
    match (aof, fsync) {
        (true, Some("always")) => None,
        (true, fsync) => Some(format!(
            "with appendfsync {} (not always), a crash of the Redis host can lose the last second of new mappings",
            fsync.unwrap_or("unknown")
        )),
        (false, _) => Some(
            "the server runs without appendonly; a Redis restart loses every user's LiveChat customer mapping (set appendonly yes, appendfsync always)".into(),
        ),
    }
}

impl super::RedisStore {
    /// Reads the server's persistence settings: what they would lose, if anything.
    pub fn durability(&self) -> crate::io::BoxFuture<Result<Option<String>, StoreError>> {
        self.bounded("info", async move |mut c: redis::aio::ConnectionManager| {
            let (persistence, fsync) = read_persistence(&mut c).await?;
            Ok(durability_problem(&persistence, fsync.as_deref()))
        })
    }
}

/// `INFO persistence` and the `appendfsync` policy (unknown where CONFIG is disabled, as on
/// managed services).
pub(super) async fn read_persistence(
    c: &mut redis::aio::ConnectionManager,
) -> redis::RedisResult<(String, Option<String>)> {
    let persistence: String = redis::cmd("INFO").arg("persistence").query_async(c).await?;
    let fsync: Option<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query_async(c)
        .await
        .ok();
    Ok((persistence, fsync.and_then(|pair| pair.get(1).cloned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_older_than_six_are_refused() {
        let persistence = "aof_enabled:1\r\n";
        assert!(describe_server("redis_version:5.0.14\r\n", persistence, None).is_err());
        assert!(describe_server("redis_version:7.0.15\r\n", persistence, Some("always")).is_ok());
        assert!(describe_server(
            "redis_version:7.2.4\r\nvalkey_version:8.0.1\r\n",
            "aof_enabled:0\r\n",
            None
        )
        .is_ok());
        assert!(describe_server("", persistence, None).is_err());
    }
}
