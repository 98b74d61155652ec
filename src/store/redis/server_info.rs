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
    /// Reads the server's persistence settings and replicas: what a crash or a failover would
    /// lose, or refuse, if anything.
    pub fn durability(&self) -> crate::io::BoxFuture<Result<Option<String>, StoreError>> {
        let acks = self.replica_acks.map_or(0, |(wanted, _)| wanted);
        let replicated = self.cluster || self.sentinel;
        self.bounded("info", async move |mut c: super::topology::Connection| {
            let (persistence, fsync) = read_persistence(&mut c).await?;
            let replication: String = c
                .on_a_primary(redis::cmd("INFO").arg("replication").to_owned())
                .await?;
            let replicas: u32 = info_field(&replication, "connected_slaves")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Ok(replication_problem(acks, replicas, replicated).or_else(|| {
                (acks == 0)
                    .then(|| durability_problem(&persistence, fsync.as_deref()))
                    .flatten()
            }))
        })
    }
}

/// What replication gives or refuses: WAIT for more replicas than are connected refuses every
/// new mapping; a failover without WAIT can lose acknowledged ones.
pub(super) fn replication_problem(acks: u32, replicas: u32, failover: bool) -> Option<String> {
    if acks > replicas {
        return Some(format!(
            "min_replica_acks = {acks} but the primary has {replicas} replicas connected: every new mapping is refused (503) until enough are"
        ));
    }
    if failover && acks == 0 {
        return Some(
            "replication is asynchronous: a failover can lose mappings the primary acknowledged, and those users then get a second LiveChat customer (set store.min_replica_acks = 1)".into(),
        );
    }
    None
}

/// `INFO persistence` and the `appendfsync` policy (unknown where CONFIG is disabled, as on
/// managed services).
pub(super) async fn read_persistence(
    c: &mut super::topology::Connection,
) -> redis::RedisResult<(String, Option<String>)> {
    let persistence: String = c
        .on_a_primary(redis::cmd("INFO").arg("persistence").to_owned())
        .await?;
    let fsync: Option<Vec<String>> = c
        .on_a_primary(
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendfsync")
                .to_owned(),
        )
        .await
        .ok();
    Ok((persistence, fsync.and_then(|pair| pair.get(1).cloned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_judged() {
        assert!(replication_problem(2, 1, true)
            .unwrap()
            .contains("every new mapping is refused"));
        assert!(replication_problem(0, 2, true)
            .unwrap()
            .contains("failover can lose"));
        assert_eq!(replication_problem(1, 2, true), None);
        assert_eq!(replication_problem(0, 0, false), None);
    }

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
