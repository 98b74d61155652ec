//! Limits how often a key (a client address, a client id) may fail, as a token bucket of
//! failures: a key may fail `burst` times at once and then once per `1/rate`; while its bucket is
//! empty it is refused before its credentials are even looked at, and told when to come back.
//! Success costs nothing, so a well-behaved caller is never slowed down.

use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys not seen for this long are forgotten (their bucket would be full again anyway).
const IDLE: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct FailureLimiter<K> {
    /// Failures allowed per second once the burst is spent.
    rate: f64,
    burst: f64,
    buckets: moka::sync::Cache<K, Arc<Mutex<Bucket>>>,
}

impl<K: Hash + Eq + Send + Sync + Clone + 'static> FailureLimiter<K> {
    /// `per_minute` failures a minute, in a burst of as many; at most `keys` keys remembered
    /// (the least recently seen are forgotten first).
    pub fn new(per_minute: u32, keys: u64) -> Self {
        Self {
            rate: f64::from(per_minute) / 60.0,
            burst: f64::from(per_minute.max(1)),
            buckets: moka::sync::Cache::builder()
                .max_capacity(keys)
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// `Err(wait)` while `key` has no failure left: it may try again after `wait`.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.buckets.get(key) else {
            return Ok(());
        };
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut bucket, now);
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Records a failure by `key`.
    pub fn failed(&self, key: &K, now: Instant) {
        let bucket = self.buckets.get_with(key.clone(), || {
            Arc::new(Mutex::new(Bucket {
                tokens: self.burst,
                updated: now,
            }))
        });
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::retry_after_secs;

    #[test]
    fn a_key_may_fail_its_burst_then_waits_for_a_refill() {
        let limiter = FailureLimiter::new(6, 100); // one failure every 10 s after 6
        let start = Instant::now();
        for _ in 0..6 {
            assert!(limiter.check(&"a", start).is_ok());
            limiter.failed(&"a", start);
        }
        let wait = limiter.check(&"a", start).unwrap_err();
        assert_eq!(retry_after_secs(wait), 10);
        assert!(
            limiter.check(&"b", start).is_ok(),
            "other keys are not affected"
        );
        let later = start + Duration::from_secs(4);
        assert_eq!(retry_after_secs(limiter.check(&"a", later).unwrap_err()), 6);
        assert!(limiter.check(&"a", start + Duration::from_secs(10)).is_ok());
        assert!(limiter
            .check(&"a", start + Duration::from_secs(600))
            .is_ok());
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(3001)), 4);
    }
}
