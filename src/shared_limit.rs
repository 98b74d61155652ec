//! Failure limits shared by every replica through the store (opt-in, Redis only): with N
//! replicas, a per-replica limit lets a guesser try N times as often; counted in Redis, the
//! limit is the fleet's. A sliding estimate over two one-minute windows (this minute's count
//! plus the previous minute's, weighted by how much of it still falls within the last 60 s).
//! A store that does not answer leaves each replica's own limit in force (fail open on this
//! layer only: refusing every client while Redis is down would stop LivePerson's exchanges).

use crate::clock::now_ms;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

pub struct SharedFailures {
    store: Arc<dyn Store>,
    per_minute: u32,
    /// Names the limited thing in the store's keys ("lp-auth").
    scope: &'static str,
}

impl SharedFailures {
    pub fn new(store: Arc<dyn Store>, per_minute: u32, scope: &'static str) -> Self {
        Self {
            store,
            per_minute,
            scope,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.scope)
    }

    /// `Err(wait)` while `key` failed `per_minute` times in the last minute, fleet-wide.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        let now = now_ms();
        let (window, into) = (now / 60_000, now % 60_000);
        let counts = self.store.failure_counts(&self.key(key), window).await;
        let Ok((current, previous)) = counts else {
            return Ok(());
        };
        let weight = 1.0 - into as f64 / 60_000.0;
        let estimate = current as f64 + previous as f64 * weight;
        if estimate < f64::from(self.per_minute) {
            return Ok(());
        }
        // Until the previous window's share has decayed enough, or this window ends.
        Err(Duration::from_millis(60_000 - into).max(Duration::from_secs(1)))
    }

    /// Counts a failure by `key` (best effort: the local limit still holds without it).
    pub async fn failed(&self, key: &str) {
        let window = now_ms() / 60_000;
        if let Err(err) = self.store.count_failure(&self.key(key), window).await {
            tracing::warn!(error = %err, "could not count a failure in the shared store");
        }
    }
}
