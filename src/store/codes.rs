//! One-time codes (LivePerson's Code Flow) held in memory with their expiry, for the stores that
//! run inside one process. A code lives seconds to minutes; losing it to a restart costs one
//! retry of a login, so it is not written to disk. A redeemed code leaves a tombstone until its
//! expiry, so a replay is told apart from a code that never existed (and counted).

use super::CodeTake;
use dashmap::DashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often expired codes are swept out (on the next insert after this long).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct CodeTable {
    /// code key -> (expiry, the grant; None once redeemed).
    codes: DashMap<String, (Instant, Option<Vec<u8>>)>,
    last_sweep: Mutex<Option<Instant>>,
}

impl CodeTable {
    pub fn put(&self, key: &str, grant: Vec<u8>, ttl: Duration) {
        let now = Instant::now();
        self.sweep(now);
        self.codes.insert(key.to_string(), (now + ttl, Some(grant)));
    }

    /// Takes the grant once: atomically, under the map's shard lock.
    pub fn take(&self, key: &str) -> CodeTake {
        let now = Instant::now();
        match self.codes.get_mut(key) {
            Some(mut entry) if entry.0 > now => match entry.1.take() {
                Some(grant) => CodeTake::Taken(grant),
                None => CodeTake::AlreadyTaken,
            },
            _ => CodeTake::Unknown,
        }
    }

    fn sweep(&self, now: Instant) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < SWEEP_EVERY) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.codes.retain(|_, (expires, _)| *expires > now);
    }
}
