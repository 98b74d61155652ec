//! The per-user key a page may see: a keyed hash of the user id, so the page can key its caches
//! by the user (and drop them when the user changes) without learning the id itself. The key
//! (HMAC-SHA256) is a secret per installation, kept in the store so every replica computes the
//! same page keys and a dictionary of likely user ids (e-mail addresses) cannot reverse them.

use crate::store::Store;
use aws_lc_rs::hmac;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The store's name for the secret (exported with `tether store export --with-values`, so a
/// move between stores keeps the pages' keys).
const SECRET_NAME: &str = "page.user-key";

/// How often to ask again while the store does not answer.
const RETRY: Duration = Duration::from_secs(1);

pub struct UserKeys {
    key: OnceLock<hmac::Key>,
}

impl UserKeys {
    /// Reads (or creates) the installation's secret from `store`, in the background: a shared
    /// store may be unreachable at start. Until it answers, pages carry no user key and token
    /// answers no `X-Tether-User-Key` (the page script then asks Tether instead of trusting a
    /// stored token).
    pub fn from_store(store: Arc<dyn Store>) -> Arc<Self> {
        let keys = Arc::new(Self {
            key: OnceLock::new(),
        });
        let filling = keys.clone();
        tokio::spawn(async move {
            let fresh = crate::hex::lower(&crate::random::bytes::<32>());
            let mut complained = false;
            loop {
                match store.value_or_insert(SECRET_NAME, fresh.clone()).await {
                    Ok(secret) => {
                        filling.set(&secret);
                        return;
                    }
                    Err(err) if !complained => {
                        tracing::warn!(error = %err, "cannot read the page key secret yet; pages carry no user key until the store answers");
                        complained = true;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(RETRY).await;
            }
        });
        keys
    }

    /// With this secret (tests).
    #[cfg(test)]
    fn with_secret(secret: &str) -> Self {
        let keys = Self {
            key: OnceLock::new(),
        };
        keys.set(secret);
        keys
    }

    fn set(&self, secret: &str) {
        let _ = self
            .key
            .set(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()));
    }

    /// The first 128 bits of HMAC-SHA256(secret, user id), in hex; None until the secret is
    /// known.
    pub fn key_for(&self, user: &str) -> Option<String> {
        let key = self.key.get()?;
        Some(crate::hex::lower(
            &hmac::sign(key, user.as_bytes()).as_ref()[..16],
        ))
    }

    /// `key_for` as the value of the header that carries it.
    pub fn header_for(&self, user: &str) -> Option<http::HeaderValue> {
        let key = self.key_for(user)?;
        Some(http::HeaderValue::from_str(&key).expect("hex is a valid header value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_installation_secret() {
        let one = UserKeys::with_secret("one");
        let other = UserKeys::with_secret("other");
        let alice = one.key_for("alice").unwrap();
        assert_eq!(alice.len(), 32);
        assert_eq!(one.key_for("alice").unwrap(), alice);
        assert_ne!(one.key_for("bob").unwrap(), alice);
        assert_ne!(other.key_for("alice").unwrap(), alice);
        // Not the unsalted SHA-256 a dictionary could reverse.
        let plain = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"alice");
        assert_ne!(alice, crate::hex::lower(&plain.as_ref()[..16]));
        let unknown = UserKeys {
            key: OnceLock::new(),
        };
        assert_eq!(unknown.key_for("alice"), None);
    }
}
