//! Erasures other replicas must hear about. Erasing a user removes the mapping from the shared
//! store at once, but each replica also holds the mapping and the user's tokens in memory; a
//! shared store therefore logs every erasure, and each replica reads the log every
//! `POLL_INTERVAL` and drops what it holds for the users named there.
//!
//! The log names users by a SHA-256 hash, never by their id, so it holds no personal data a
//! reader could use without already knowing the user; it keeps the last `LOG_LENGTH` erasures.

use std::time::Duration;

/// How often each replica reads the erasure log: the bound on how long another replica may
/// still serve an erased user's cached token while the shared store is reachable.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Erasures the log keeps. A replica that missed more than this (cut off from the store
/// meanwhile) cannot tell which users were erased and drops everything it cached instead.
pub const LOG_LENGTH: u64 = 10_000;

/// A user as the erasure log names them: hex SHA-256 of the user id.
pub fn user_hash(user: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.as_bytes());
    crate::hex::lower(digest.as_ref())
}

/// Where a replica is in the erasure log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureCursor(pub(super) Option<String>);

/// What a read of the erasure log found.
#[derive(Debug, Default)]
pub struct Erasures {
    /// `user_hash` of every user erased since the cursor.
    pub users: Vec<String>,
    /// The log was trimmed past the cursor: some erasures are unknown, drop every cached entry.
    pub missed_some: bool,
    pub cursor: ErasureCursor,
}

#[cfg(test)]
mod tests {
    #[test]
    fn users_are_named_by_hash() {
        assert_eq!(
            super::user_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
