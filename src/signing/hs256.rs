//! HS256 (HMAC-SHA256) JWTs with a vendor's shared secret (Zendesk, Intercom), and the hex
//! HMAC of Intercom's older `user_hash`. The secret is the vendor's; Tether only signs.

use super::base64url::b64;
use aws_lc_rs::hmac;
use serde_json::{json, Value};

/// A vendor's shared secret, ready to sign with.
pub struct SharedKey(hmac::Key);

impl SharedKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A compact JWS of `claims`: `{"alg": "HS256", "typ": "JWT"}`, with `kid` when given.
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": "HS256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = kid.into();
        }
        self.compact(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// `BASE64URL(header) . BASE64URL(payload) . BASE64URL(HMAC-SHA256)` (RFC 7515 7.1).
    pub fn compact(&self, header: &[u8], payload: &[u8]) -> String {
        let mut token = format!("{}.{}", b64(header), b64(payload));
        let tag = hmac::sign(&self.0, token.as_bytes());
        token.push('.');
        token.push_str(&b64(tag.as_ref()));
        token
    }

    /// Lowercase hex HMAC-SHA256 of `message` (Intercom's `user_hash`).
    pub fn hex(&self, message: &str) -> String {
        crate::hex::lower(hmac::sign(&self.0, message.as_bytes()).as_ref())
    }
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(<redacted>)")
    }
}
