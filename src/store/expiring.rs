//! Short-lived entries held in memory with their expiry, for the stores that run inside one
//! process: LivePerson's one-time codes, leases and cached tokens. A code lives seconds to
//! minutes; losing it to a restart costs one retry of a login, so it is not written to disk. A
//! redeemed code leaves a tombstone until its expiry, so a replay is told apart from a code that
//! never existed (and counted).

use super::CodeTake;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often expired entries are swept out (on the next insert after this long).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct ExpiringTable {
    /// key -> (expiry, the value; None once taken).
    entries: DashMap<String, (Instant, Option<Vec<u8>>)>,
    last_sweep: Mutex<Option<Instant>>,
}

impl ExpiringTable {
    pub fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let now = Instant::now();
        self.sweep(now);
        self.entries
            .insert(key.to_string(), (now + ttl, Some(value)));
    }

    /// Puts `value` unless a live entry exists; true if it was put. Atomic under the shard lock.
    pub fn put_if_absent(&self, key: &str, value: Vec<u8>, ttl: Duration) -> bool {
        let now = Instant::now();
        self.sweep(now);
        match self.entries.entry(key.to_string()) {
            Entry::Occupied(entry) if entry.get().0 > now => false,
            Entry::Occupied(mut entry) => {
                entry.insert((now + ttl, Some(value)));
                true
            }
            Entry::Vacant(entry) => {
                entry.insert((now + ttl, Some(value)));
                true
            }
        }
    }

    /// The live value, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        let entry = self.entries.get(key)?;
        (entry.0 > now).then(|| entry.1.clone()).flatten()
    }

    pub fn remove(&self, key: &str) {
        self.entries.remove(key);
    }

    /// Removes the entry only while it still holds `value` (a lease's holder).
    pub fn remove_if(&self, key: &str, value: &[u8]) {
        self.entries
            .remove_if(key, |_, (_, held)| held.as_deref() == Some(value));
    }

    /// Takes the value once: atomically, under the map's shard lock.
    pub fn take(&self, key: &str) -> CodeTake {
        let now = Instant::now();
        match self.entries.get_mut(key) {
            Some(mut entry) if entry.0 > now => match entry.1.take() {
                Some(value) => CodeTake::Taken(value),
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
        self.entries.retain(|_, (expires, _)| *expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_exclusive_until_released_or_expired() {
        let table = ExpiringTable::default();
        let long = Duration::from_secs(60);
        assert!(table.put_if_absent("lease", b"a".to_vec(), long));
        assert!(!table.put_if_absent("lease", b"b".to_vec(), long));
        table.remove_if("lease", b"b");
        assert_eq!(
            table.get("lease").as_deref(),
            Some(&b"a"[..]),
            "not b's to release"
        );
        table.remove_if("lease", b"a");
        assert!(table.put_if_absent("lease", b"b".to_vec(), Duration::ZERO));
        assert!(
            table.put_if_absent("lease", b"c".to_vec(), long),
            "b's lease expired"
        );
    }

    #[test]
    fn a_taken_value_is_a_tombstone_until_expiry() {
        let table = ExpiringTable::default();
        table.put("code", b"grant".to_vec(), Duration::from_secs(60));
        assert_eq!(table.take("code"), CodeTake::Taken(b"grant".to_vec()));
        assert_eq!(table.take("code"), CodeTake::AlreadyTaken);
        assert_eq!(table.get("code"), None);
        assert_eq!(table.take("other"), CodeTake::Unknown);
    }
}
