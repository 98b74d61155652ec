//! Client authentication at the token endpoint (RFC 6749 section 2.3.1), with a limit on how
//! often it may fail: per client address, and per client id for guesses spread over many
//! addresses. Addresses that authenticated recently are exempt from the per-client limit, so an
//! attacker guessing the real client's secret cannot lock LivePerson's servers out.

use super::params::Params;
use crate::redact::Secret;
use crate::throttle::FailureLimiter;
use base64::Engine;
use http::HeaderValue;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses remembered for their failures, and as recently authenticated.
const ADDRESSES: u64 = 100_000;
/// How long an address that authenticated stays exempt from the per-client limit.
const TRUSTED_FOR: Duration = Duration::from_secs(24 * 3600);
/// The per-client limit is this many times the per-address one.
const CLIENT_FACTOR: u32 = 10;

#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// 401 `invalid_client` (counted against the address and the client).
    Refused(&'static str),
    /// 429: too many failures; try again after this long.
    Throttled(Duration),
}

pub struct ClientAuth {
    client_id: String,
    client_secret: Secret,
    limits: Option<Limits>,
}

struct Limits {
    by_address: FailureLimiter<IpAddr>,
    by_client: FailureLimiter<()>,
    authenticated: moka::sync::Cache<IpAddr, ()>,
}

impl ClientAuth {
    /// `failures_per_minute` per address (0: no limit).
    pub fn new(client_id: String, client_secret: Secret, failures_per_minute: u32) -> Self {
        let limits = (failures_per_minute > 0).then(|| Limits {
            by_address: FailureLimiter::new(failures_per_minute, ADDRESSES),
            by_client: FailureLimiter::new(failures_per_minute * CLIENT_FACTOR, 1),
            authenticated: moka::sync::Cache::builder()
                .max_capacity(ADDRESSES)
                .time_to_live(TRUSTED_FOR)
                .build(),
        });
        Self {
            client_id,
            client_secret,
            limits,
        }
    }

    /// The client id LivePerson's servers authenticate as ("" when none is configured).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `client_secret_basic` or `client_secret_post` (not both); the secret is compared in
    /// constant time. Returns the authenticated client id.
    pub fn authenticate(
        &self,
        basic: Option<&HeaderValue>,
        params: &Params,
        from: IpAddr,
    ) -> Result<String, AuthFailure> {
        let now = Instant::now();
        self.check_limits(from, now)?;
        let result = self.verify(basic, params);
        if let Some(limits) = &self.limits {
            match &result {
                Ok(_) => limits.authenticated.insert(from, ()),
                Err(AuthFailure::Refused(_)) => {
                    limits.by_address.failed(&from, now);
                    limits.by_client.failed(&(), now);
                }
                Err(_) => {}
            }
        }
        result
    }

    fn check_limits(&self, from: IpAddr, now: Instant) -> Result<(), AuthFailure> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        limits
            .by_address
            .check(&from, now)
            .map_err(AuthFailure::Throttled)?;
        if !limits.authenticated.contains_key(&from) {
            limits
                .by_client
                .check(&(), now)
                .map_err(AuthFailure::Throttled)?;
        }
        Ok(())
    }

    fn verify(&self, basic: Option<&HeaderValue>, params: &Params) -> Result<String, AuthFailure> {
        let from_body = params.get("client_id").zip(params.get("client_secret"));
        let from_header = match basic {
            Some(value) => Some(
                parse_basic(value).ok_or(AuthFailure::Refused("malformed Basic credentials"))?,
            ),
            None => None,
        };
        let (id, secret) = match (from_header, from_body) {
            // Both ways at once, as some clients send: accepted when they say the same.
            (Some((id, secret)), Some((body_id, body_secret))) => {
                if id != body_id || secret != body_secret {
                    return Err(AuthFailure::Refused(
                        "the Basic and body client credentials differ",
                    ));
                }
                (id, secret)
            }
            (Some((id, secret)), None) => (id, secret),
            (None, Some((id, secret))) => (id.to_string(), secret.to_string()),
            (None, None) => return Err(AuthFailure::Refused("client authentication is required")),
        };
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(AuthFailure::Refused(
                "client_id differs from the authenticated client",
            ));
        }
        let digest =
            |text: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
        let secret_ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            digest(&secret).as_ref(),
            digest(self.client_secret.expose()).as_ref(),
        )
        .is_ok();
        if self.client_id.is_empty() || id != self.client_id || !secret_ok {
            return Err(AuthFailure::Refused("unknown client or wrong secret"));
        }
        Ok(id)
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 section 2.3.1).
pub fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Percent-escapes are decoded; a '+' stays a '+' (clients that skip the encoding send
    // base64 secrets raw, and a space in a client secret is rarer than a plus).
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}
