//! Code Flow codes: 256 random bits, stored with what they were issued for: the client, the
//! redirect_uri, the PKCE challenge and the id_token, signed when the code was issued (the
//! snapshot of the user's claims). Redeeming takes the grant out of the store, so a code works
//! once on any replica.
//!
//! The store never sees a code: the record's key is a hash of it, and the record is sealed
//! (AES-256-GCM) under another hash of it, so a store dump (or a shared Redis) holds neither a
//! redeemable code nor a readable id_token.

use crate::signing::base64url::b64;
use crate::store::{CodeTake, Store, StoreError};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkceMethod {
    S256,
    #[serde(rename = "plain")]
    Plain,
}

impl PkceMethod {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// What a code was issued for. Stored as JSON with a version, so replicas of different versions
/// read each other's codes or refuse them clearly.
#[derive(Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub v: u8,
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the redirect_uri was asked for (then the exchange must repeat it, RFC 6749 4.1.3;
    /// a code issued without one binds none).
    pub redirect_uri_given: bool,
    /// Issued to LivePerson's window by a registered prefix: a legacy connector redeems it with
    /// `https://liveperson.net` instead.
    #[serde(default)]
    pub legacy_window: bool,
    pub challenge: Option<(PkceMethod, String)>,
    /// Signed (and, when configured, encrypted) at issue time.
    pub id_token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

pub const GRANT_VERSION: u8 = 1;

/// The id_token is a credential: Debug never shows it.
impl std::fmt::Debug for CodeGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeGrant")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field(
                "challenge",
                &self.challenge.as_ref().map(|(method, _)| method),
            )
            .field("id_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a code exchange is refused (`invalid_grant`, with a reason for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Replayed,
    Expired,
    OtherClient,
    RedirectUriMismatch,
    VerifierMissing,
    VerifierWrong,
    VerifierUnexpected,
    Corrupt,
}

impl Refused {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unknown => "the code is unknown or expired",
            Self::Replayed => "the code was already used",
            Self::Expired => "the code expired",
            Self::OtherClient => "the code was issued to another client",
            Self::RedirectUriMismatch => {
                "redirect_uri does not match the one the code was issued for"
            }
            Self::VerifierMissing => "code_verifier is required for this code",
            Self::VerifierWrong => "code_verifier does not match the code_challenge",
            Self::VerifierUnexpected => "code_verifier sent for a code issued without PKCE",
            Self::Corrupt => "the code's record is unreadable",
        }
    }
}

/// A hash of the code for one purpose (the code has 256 bits of entropy: a hash is a fine KDF).
fn derive(purpose: &str, code: &str) -> aws_lc_rs::digest::Digest {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(purpose.as_bytes());
    context.update(code.as_bytes());
    context.finish()
}

/// The store key of a code.
fn key(code: &str) -> String {
    format!(
        "lp-code:{}",
        b64(derive("tether/lp-code/id/v1:", code).as_ref())
    )
}

fn sealing_key(code: &str) -> LessSafeKey {
    let key = UnboundKey::new(
        &AES_256_GCM,
        derive("tether/lp-code/seal/v1:", code).as_ref(),
    )
    .expect("a SHA-256 digest is an AES-256 key");
    LessSafeKey::new(key)
}

/// `nonce || AES-256-GCM(record)`.
fn seal(code: &str, mut record: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    let nonce: [u8; NONCE_LEN] = crate::random::bytes();
    sealing_key(code)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut record,
        )
        .map_err(|_| StoreError::other("cannot seal a code grant"))?;
    Ok([&nonce[..], &record].concat())
}

fn open<'a>(code: &str, sealed: &'a mut [u8]) -> Option<&'a [u8]> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, data) = sealed.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    sealing_key(code)
        .open_in_place(nonce, Aad::empty(), data)
        .ok()
        .map(|plain| &*plain)
}

/// Issues a code for `grant`, valid for `ttl`.
pub async fn issue(
    store: &dyn Store,
    grant: &CodeGrant,
    ttl: Duration,
) -> Result<String, StoreError> {
    let code = b64(&crate::random::bytes::<32>());
    let record = serde_json::to_vec(grant).expect("a code grant serialises");
    store
        .put_code(&key(&code), seal(&code, record)?, ttl)
        .await?;
    Ok(code)
}

/// What the token endpoint was sent along with a code.
pub struct Exchange<'a> {
    pub code: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub verifier: Option<&'a str>,
    pub now: u64,
}

/// Redeems a code once. The code is spent even when a check fails afterwards, so a wrong
/// verifier cannot be retried against the same code.
pub async fn redeem(
    store: &dyn Store,
    exchange: &Exchange<'_>,
) -> Result<Result<CodeGrant, Refused>, StoreError> {
    let mut sealed = match store.take_code(&key(exchange.code)).await? {
        CodeTake::Taken(sealed) => sealed,
        CodeTake::AlreadyTaken => return Ok(Err(Refused::Replayed)),
        CodeTake::Unknown => return Ok(Err(Refused::Unknown)),
    };
    let grant = open(exchange.code, &mut sealed)
        .and_then(|record| serde_json::from_slice::<CodeGrant>(record).ok());
    let Some(grant) = grant else {
        return Ok(Err(Refused::Corrupt));
    };
    Ok(check(grant, exchange))
}

fn check(grant: CodeGrant, exchange: &Exchange<'_>) -> Result<CodeGrant, Refused> {
    if grant.v != GRANT_VERSION {
        return Err(Refused::Corrupt);
    }
    if exchange.now >= grant.expires_at {
        return Err(Refused::Expired);
    }
    if grant.client_id != exchange.client_id {
        return Err(Refused::OtherClient);
    }
    if grant.redirect_uri_given {
        let legacy = grant.legacy_window
            && exchange.redirect_uri == Some(super::redirects::legacy_exchange_uri());
        if exchange.redirect_uri != Some(grant.redirect_uri.as_str()) && !legacy {
            return Err(Refused::RedirectUriMismatch);
        }
    }
    match (&grant.challenge, exchange.verifier) {
        (None, None) => {}
        (None, Some(_)) => return Err(Refused::VerifierUnexpected),
        (Some(_), None) => return Err(Refused::VerifierMissing),
        (Some((method, challenge)), Some(verifier)) => {
            if !verifier_matches(*method, challenge, verifier) {
                return Err(Refused::VerifierWrong);
            }
        }
    }
    Ok(grant)
}

/// RFC 7636 section 4.6, with the verifier's syntax (43-128 unreserved characters) enforced.
fn verifier_matches(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    if !is_pkce_value(verifier) {
        return false;
    }
    let computed = match method {
        PkceMethod::S256 => {
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
        }
        PkceMethod::Plain => verifier.to_string(),
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes())
        .is_ok()
}

/// A code_verifier or code_challenge: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(PkceMethod::S256, challenge, verifier));
        assert!(!verifier_matches(
            PkceMethod::S256,
            challenge,
            &verifier.replace('d', "e")
        ));
        assert!(verifier_matches(PkceMethod::Plain, verifier, verifier));
        assert!(!verifier_matches(PkceMethod::Plain, "short", "short"));
    }
}
