//! Signed tokens kept per user until shortly before they expire: an RS256 signature costs about
//! 0.7 ms of CPU (2048-bit key, aws-lc-rs, this project's benchmark machine), so a page load
//! should not pay one each time. A token is reused only for the same issuer and the same
//! identity (a changed name or e-mail is signed again). HS256 costs about 0.35 µs and is not
//! cached.

use crate::identity::Identity;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most users whose signed tokens are kept in memory.
const CAPACITY: u64 = 1_000_000;

struct Cached {
    issuer: String,
    identity: Identity,
    /// The answer's body (`{"jwt": "..."}`), rendered once.
    body: Bytes,
    renew_at: Instant,
}

pub struct SignedCache {
    entries: moka::sync::Cache<String, Arc<Cached>>,
    ttl: Duration,
}

impl SignedCache {
    /// For tokens that live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
            ttl,
        }
    }

    /// The kept answer for this user, issuer and identity, unless it is due for renewal.
    pub fn get(&self, issuer: &str, identity: &Identity) -> Option<Bytes> {
        let cached = self.entries.get(&identity.user_id)?;
        (cached.renew_at > Instant::now()
            && cached.issuer == issuer
            && cached.identity == *identity)
            .then(|| cached.body.clone())
    }

    /// Keeps `body`, signed just now, until a tenth of its lifetime is left (between 30 s and
    /// 5 minutes before expiry).
    pub fn insert(&self, issuer: &str, identity: &Identity, body: Bytes) {
        let margin = (self.ttl / 10).clamp(Duration::from_secs(30), Duration::from_secs(300));
        self.entries.insert(
            identity.user_id.clone(),
            Arc::new(Cached {
                issuer: issuer.to_string(),
                identity: identity.clone(),
                body,
                renew_at: Instant::now() + self.ttl.saturating_sub(margin),
            }),
        );
    }

    /// Erasure of one user on this replica.
    pub fn forget(&self, user: &str) {
        self.entries.invalidate(user);
    }

    /// Users erased through other replicas (named by `store::user_hash`), or everyone.
    pub fn forget_erased(&self, erased: &HashSet<&str>, everything: bool) {
        if everything {
            self.entries.invalidate_all();
            return;
        }
        if erased.is_empty() {
            return;
        }
        for (user, _) in self.entries.iter() {
            if erased.contains(crate::store::user_hash(&user).as_str()) {
                self.entries.invalidate(user.as_str());
            }
        }
    }
}
