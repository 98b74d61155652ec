//! The RSA key Tether signs with, the JWKS it publishes, and JOSE (RS256 JWS, JWE): shared by
//! every vendor that asks for tokens signed with the brand's own key, and named by none of them.
//!
//! - `keys`: loading, generating and publishing RSA keys (JWK, RFC 7638 `kid`).
//! - `jose`: compact JWS (RS256) and JWE (RSA-OAEP-256); `hs256`: JWS with a vendor's secret.
//! - `cache`: signed tokens kept per user (RS256 is worth caching, HS256 is not).
//! - `x5c`: the certificate over each key that the JWKS carries.
//! - `base64url`: the JOSE encoding.

pub mod base64url;
pub mod cache;
pub mod hs256;
pub mod jose;
pub mod keys;
#[cfg(test)]
mod vectors;
mod x5c;

/// Where the JWKS is served, below the reserved prefix (and so below an issuer).
pub const JWKS_PATH: &str = "/jwks.json";

use crate::config::Config;
use bytes::Bytes;
use jose::JoseError;
use keys::SigningKey;
use serde_json::{json, Value};
use std::sync::Mutex;
use x5c::Certifier;

/// A key published in the JWKS, and what certifies it (when Tether holds its private half).
struct Published {
    jwk: Value,
    certifier: Option<Certifier>,
}

/// The active signing key and the JWKS (the active key first, then retired keys that relying
/// parties may still need during a rotation), every key Tether holds privately with `x5c`.
pub struct Signer {
    key: SigningKey,
    published: Vec<Published>,
    /// The JWKS of the current certificate period.
    jwks: Mutex<Option<(u64, Bytes)>>,
}

impl Signer {
    /// Loads the keys the configuration names; an error names the key to fix.
    pub fn load(config: &Config) -> Result<Self, (&'static str, String)> {
        let (name, path) = config.signing_key();
        let pem = std::fs::read_to_string(path)
            .map_err(|err| (name, format!("cannot read {}: {err}", path.display())))?;
        let key = keys::load_signing_key(path).map_err(|e| (name, e))?;
        let mut published = vec![Published {
            jwk: key.jwk.clone(),
            certifier: Some(Certifier::new(pem, key.kid.clone())),
        }];
        for path in &config.liveperson.retired_keys {
            let retired =
                keys::load_retired_key(path).map_err(|e| ("liveperson.retired_keys", e))?;
            if retired.kid == key.kid {
                continue;
            }
            // An old private key still gets a certificate; a public key alone cannot.
            let certifier = keys::load_signing_key(path)
                .ok()
                .and_then(|_| std::fs::read_to_string(path).ok())
                .map(|pem| Certifier::new(pem, retired.kid.clone()));
            published.push(Published {
                jwk: retired.jwk,
                certifier,
            });
        }
        let signer = Self {
            key,
            published,
            jwks: Mutex::new(None),
        };
        // A key rcgen cannot certify is a configuration error now, not a JWKS without x5c later.
        signer.active_jwk().map_err(|why| (name, why))?;
        Ok(signer)
    }

    /// The `kid` of the active key.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// A compact JWS of `claims`, RS256, with the active key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, JoseError> {
        jose::sign(&self.key, claims)
    }

    /// `{"keys": [...]}`, for `{prefix}/jwks.json`: the same bytes for a whole certificate
    /// period.
    pub fn jwks(&self) -> Bytes {
        let period = Certifier::period(crate::clock::now_secs());
        let mut cached = self.jwks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, jwks)) = cached.as_ref() {
            if *at == period {
                return jwks.clone();
            }
        }
        let keys: Vec<Value> = self
            .published
            .iter()
            .map(|published| with_x5c(published, period))
            .collect();
        let jwks = Bytes::from(json!({ "keys": keys }).to_string());
        *cached = Some((period, jwks.clone()));
        jwks
    }

    /// The active key's JWK with `x5c`, as one object (Salesforce's "uploaded keys").
    pub fn active_jwk(&self) -> Result<Value, String> {
        let period = Certifier::period(crate::clock::now_secs());
        let published = &self.published[0];
        let certifier = published
            .certifier
            .as_ref()
            .expect("the active key is held");
        let mut jwk = published.jwk.clone();
        jwk["x5c"] = json!([certifier.x5c(period)?]);
        Ok(jwk)
    }
}

fn with_x5c(published: &Published, period: u64) -> Value {
    let mut jwk = published.jwk.clone();
    if let Some(certifier) = &published.certifier {
        match certifier.x5c(period) {
            Ok(x5c) => jwk["x5c"] = json!([x5c]),
            Err(why) => tracing::error!(kid = %jwk["kid"], %why, "no x5c for a published key"),
        }
    }
    jwk
}
