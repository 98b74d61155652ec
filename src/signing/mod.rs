//! The RSA key Tether signs with, the JWKS it publishes, and JOSE (RS256 JWS, JWE): shared by
//! every vendor that asks for tokens signed with the brand's own key, and named by none of them.
//!
//! - `keys`: loading, generating and publishing RSA keys (JWK, RFC 7638 `kid`).
//! - `jose`: compact JWS (RS256) and JWE (RSA-OAEP-256).
//! - `base64url`: the JOSE encoding.

pub mod base64url;
pub mod jose;
pub mod keys;
#[cfg(test)]
mod vectors;

/// Where the JWKS is served, below the reserved prefix (and so below an issuer).
pub const JWKS_PATH: &str = "/jwks.json";

use crate::config::Config;
use bytes::Bytes;
use jose::JoseError;
use keys::SigningKey;
use serde_json::{json, Value};

/// The active signing key and the JWKS (the active key first, then retired keys that relying
/// parties may still need during a rotation).
pub struct Signer {
    key: SigningKey,
    jwks: Bytes,
}

impl Signer {
    /// Loads the keys the configuration names; an error names the key to fix.
    pub fn load(config: &Config) -> Result<Self, (&'static str, String)> {
        let lp = &config.liveperson;
        let key =
            keys::load_signing_key(&lp.signing_key).map_err(|e| ("liveperson.signing_key", e))?;
        let mut published = vec![key.jwk.clone()];
        for path in &lp.retired_keys {
            let retired =
                keys::load_retired_key(path).map_err(|e| ("liveperson.retired_keys", e))?;
            if retired.kid != key.kid {
                published.push(retired.jwk);
            }
        }
        let jwks = Bytes::from(json!({ "keys": published }).to_string());
        Ok(Self { key, jwks })
    }

    /// The `kid` of the active key.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// A compact JWS of `claims`, RS256, with the active key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, JoseError> {
        jose::sign(&self.key, claims)
    }

    /// `{"keys": [...]}`, for `{prefix}/jwks.json`.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }
}
