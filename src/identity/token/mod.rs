//! `source = "jwt"`: who is signed in, from a signed token the request already carries (an
//! identity-aware gateway's assertion header, or the app's own session JWT in a cookie),
//! verified against the issuer's public keys: signature (`verify`), keys (`keys`), then `exp` and
//! `nbf` with a minute's leeway, `iss` and `aud` exactly, and AWS ALB's `signer`. A token that
//! fails any check names nobody (401) and is counted by reason; keys that cannot be fetched
//! make the answer 503. No header is trusted by where it came from, so there is nothing to spoof
//! (docs/identity.md, "A signed token the request carries").

mod keys;
mod verify;

use super::{Identity, IdentityError};
use crate::clock::now_secs;
use crate::config::{Config, JwtSettings};
use crate::health::ReadinessCheck;
use crate::io::BoxFuture;
use crate::metrics::{CountersBy, Registry};
use http::header::{HeaderMap, COOKIE};
use keys::{KeyMiss, KeyStore};
use std::sync::Arc;
use std::time::Duration;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// How long one key fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

crate::metrics::label_values! {
    /// Why a token named nobody.
    pub enum TokenRefused {
        Malformed = "malformed",
        Algorithm = "algorithm",
        UnknownKey = "unknown_key",
        Signature = "signature",
        Expired = "expired",
        NotYetValid = "not_yet_valid",
        Issuer = "issuer",
        Audience = "audience",
        Signer = "signer",
        NoUser = "no_user",
    }
}

enum Failure {
    Refused(TokenRefused),
    Unavailable(String),
}

/// The token source, shared by every serving thread.
pub struct TokenSource {
    settings: JwtSettings,
    keys: KeyStore,
    refused: CountersBy<TokenRefused>,
}

impl TokenSource {
    /// Registers `tether_identity_tokens_refused_total{reason}`, and fetches the keys at once.
    pub fn new(config: &Config, registry: &mut Registry) -> Arc<Self> {
        let settings = config.identity.jwt_settings();
        let source = Arc::new(Self {
            keys: KeyStore::new(settings.keys.clone(), FETCH_TIMEOUT),
            settings,
            refused: CountersBy::register(
                registry,
                "identity_tokens_refused",
                "Identity tokens that named nobody (401), by the check they failed.",
                "reason",
            ),
        });
        let prefetch = source.clone();
        tokio::spawn(async move { prefetch.keys.prefetch().await });
        source
    }

    /// The user the request's token names; None when it carries none or one that fails.
    pub async fn resolve(&self, headers: &HeaderMap) -> Result<Option<Identity>, IdentityError> {
        let token = match self.token(headers) {
            Ok(Some(token)) => token,
            Ok(None) => return Ok(None),
            Err(reason) => return self.refuse(reason),
        };
        match self.verify(token).await {
            Ok(identity) => Ok(Some(identity)),
            Err(Failure::Refused(reason)) => self.refuse(reason),
            Err(Failure::Unavailable(why)) => Err(IdentityError::Unavailable(why)),
        }
    }

    fn refuse(&self, reason: TokenRefused) -> Result<Option<Identity>, IdentityError> {
        self.refused.inc(reason);
        tracing::debug!(reason = reason.text(), "an identity token names nobody");
        Ok(None)
    }

    /// The token: from the configured cookie only, or else from the header only (a token in
    /// the other place is ignored). Given twice: ambiguous, refused.
    fn token<'a>(&self, headers: &'a HeaderMap) -> Result<Option<&'a str>, TokenRefused> {
        let mut found = Vec::new();
        if let Some(name) = &self.settings.cookie {
            for value in headers.get_all(COOKIE) {
                let Ok(text) = value.to_str() else { continue };
                found.extend(
                    text.split(';')
                        .filter_map(|pair| pair.trim().split_once('='))
                        .filter(|(key, _)| key == name)
                        .map(|(_, value)| value.trim().trim_matches('"')),
                );
            }
        } else if let Some(name) = &self.settings.header {
            for value in headers.get_all(name) {
                found.push(value.to_str().map_err(|_| TokenRefused::Malformed)?.trim());
            }
        }
        match found.as_slice() {
            [] => Ok(None),
            [token] if !token.is_empty() => Ok(Some(token)),
            [_] => Ok(None),
            _ => Err(TokenRefused::Malformed),
        }
    }

    async fn verify(&self, token: &str) -> Result<Identity, Failure> {
        use Failure::Refused;
        let parsed = verify::parse(token).ok_or(Refused(TokenRefused::Malformed))?;
        let alg = parsed.header["alg"].as_str().unwrap_or("");
        if !verify::is_accepted(alg) {
            return Err(Refused(TokenRefused::Algorithm));
        }
        let key = match self.keys.key(parsed.header["kid"].as_str()).await {
            Ok(key) => key,
            Err(KeyMiss::Unknown) => return Err(Refused(TokenRefused::UnknownKey)),
            Err(KeyMiss::Unavailable(why)) => return Err(Failure::Unavailable(why)),
        };
        if !key.verifies(alg, parsed.message, &parsed.signature) {
            return Err(Refused(TokenRefused::Signature));
        }
        if let Some(signer) = &self.settings.signer {
            if parsed.header["signer"].as_str() != Some(signer.as_str()) {
                return Err(Refused(TokenRefused::Signer));
            }
        }
        self.check_claims(&parsed.claims).map_err(Refused)?;
        self.identity(&parsed.claims)
            .ok_or(Refused(TokenRefused::NoUser))
    }

    fn check_claims(&self, claims: &serde_json::Value) -> Result<(), TokenRefused> {
        let now = now_secs();
        let exp = claims["exp"].as_u64().ok_or(TokenRefused::Expired)?;
        if now > exp + LEEWAY_SECS {
            return Err(TokenRefused::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_u64().ok_or(TokenRefused::NotYetValid)?;
            if now + LEEWAY_SECS < nbf {
                return Err(TokenRefused::NotYetValid);
            }
        }
        if let Some(issuer) = &self.settings.issuer {
            if claims["iss"].as_str() != Some(issuer.as_str()) {
                return Err(TokenRefused::Issuer);
            }
        }
        if let Some(audience) = &self.settings.audience {
            let matches = match &claims["aud"] {
                serde_json::Value::String(aud) => aud == audience,
                serde_json::Value::Array(auds) => auds.iter().any(|aud| aud == audience.as_str()),
                _ => false,
            };
            if !matches {
                return Err(TokenRefused::Audience);
            }
        }
        Ok(())
    }

    fn identity(&self, claims: &serde_json::Value) -> Option<Identity> {
        let user_id = match &claims[&self.settings.user_claim] {
            serde_json::Value::String(id) => id.trim().to_string(),
            serde_json::Value::Number(id) if id.is_i64() || id.is_u64() => id.to_string(),
            _ => return None,
        };
        let text = |name: &str| {
            claims[name]
                .as_str()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        (!user_id.is_empty()).then(|| Identity {
            user_id,
            email: text(&self.settings.email_claim),
            name: text(&self.settings.name_claim),
            claims: Default::default(),
        })
    }
}

/// `/readyz`: the issuer's keys are at hand (not ready while none could ever be fetched).
pub struct KeysReady(pub Arc<TokenSource>);

impl ReadinessCheck for KeysReady {
    fn name(&self) -> &'static str {
        "identity_keys"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let source = self.0.clone();
        Box::pin(async move { source.keys.health().await })
    }
}

/// `/readyz` warning: the last fetch failed and kept keys are served.
pub struct KeysStale(pub Arc<TokenSource>);

impl ReadinessCheck for KeysStale {
    fn name(&self) -> &'static str {
        "identity_keys_stale"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let source = self.0.clone();
        Box::pin(async move { source.keys.stale().map_or(Ok(()), Err) })
    }

    fn advisory(&self) -> bool {
        true
    }
}
