//! The issuer's public keys, fetched and kept: a JWKS document (fetched at start, kept as long
//! as its HTTP caching headers say, fetched again when a token names a `kid` it lacks, at most
//! once a minute, and served stale while the issuer is down), or, for AWS ALB, one PEM key per
//! `kid` at a regional URL (keys never change for a `kid`, so each is fetched once; unknown ones
//! at most one a second, and a miss is remembered for a minute).

use super::verify::KeyEntry;
use crate::config::JwtKeys;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least and most a JWKS is kept before it is fetched again, whatever its headers say.
const MIN_KEEP: Duration = Duration::from_secs(60);
const MAX_KEEP: Duration = Duration::from_secs(86_400);
/// Without caching headers.
const DEFAULT_KEEP: Duration = Duration::from_secs(3600);
/// A token naming an unknown `kid` fetches the JWKS again at most this often.
const REFRESH_FLOOR: Duration = Duration::from_secs(60);
/// While no key was ever fetched (the issuer down at start), tries are this far apart.
const NO_KEYS_FLOOR: Duration = Duration::from_secs(1);
/// AWS ALB: unknown `kid`s fetched at most this often, and a miss remembered this long.
const PER_KID_FLOOR: Duration = Duration::from_secs(1);
const MISS_MEMORY: Duration = Duration::from_secs(60);

/// Why no key could be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMiss {
    /// The issuer does not have it (after a fresh look): the token is refused.
    Unknown,
    /// The keys could not be fetched and none are kept: try again later.
    Unavailable(String),
}

pub struct KeyStore {
    source: JwtKeys,
    http: reqwest::Client,
    state: Mutex<State>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, KeyEntry>,
    /// Keys without a `kid` (a JWKS of one key may leave it out).
    unnamed: Vec<KeyEntry>,
    /// The last fetch that worked, the last one tried, and the last one a token naming an
    /// unknown `kid` caused (those are limited to one a minute).
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    unknown_kid_fetch_at: Option<Instant>,
    keep_until: Option<Instant>,
    /// The last fetch's failure, while it is the latest news (for readiness).
    failure: Option<String>,
    misses: HashMap<String, Instant>,
    last_per_kid_fetch: Option<Instant>,
}

impl KeyStore {
    pub fn new(source: JwtKeys, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with a timeout builds");
        Self {
            source,
            http,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key for `kid` (None: the token names none).
    pub async fn key(&self, kid: Option<&str>) -> Result<KeyEntry, KeyMiss> {
        if let Some(found) = self.kept(kid) {
            return Ok(found);
        }
        // Boxed: a lookup (an HTTP fetch) is large state that every resolver's future carried
        // inline, although nearly every verification finds its key kept (and with the probe as
        // the source, none ever looks one up).
        match &self.source {
            JwtKeys::Jwks(url) => Box::pin(self.look_up_jwks(url, kid)).await,
            JwtKeys::PerKid(template) => {
                let kid = kid.ok_or(KeyMiss::Unknown)?;
                Box::pin(self.look_up_per_kid(template, kid)).await
            }
        }
    }

    /// A key from what is kept, while it may be kept.
    fn kept(&self, kid: Option<&str>) -> Option<KeyEntry> {
        let state = self.state();
        let fresh = state.keep_until.is_some_and(|until| until > Instant::now())
            || matches!(self.source, JwtKeys::PerKid(_));
        if !fresh {
            return None;
        }
        lookup(&state, kid)
    }

    async fn look_up_jwks(&self, url: &str, kid: Option<&str>) -> Result<KeyEntry, KeyMiss> {
        let _turn = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(found) = self.kept(kid) {
            return Ok(found);
        }
        // Expired keys: fetch again (while the issuer is down, once a minute; while no key was
        // ever fetched, once a second). Fresh keys lacking the kid: fetch again at most once a
        // minute for such tokens (a rotation), so random kids cannot hammer the issuer.
        let due = {
            let mut state = self.state();
            let expired = state.keep_until.is_none_or(|until| until <= Instant::now());
            let floor = match state.fetched_at {
                Some(_) => REFRESH_FLOOR,
                None => NO_KEYS_FLOOR,
            };
            let attempt_due = state.attempted_at.is_none_or(|at| at.elapsed() >= floor);
            let rotation_due = state
                .unknown_kid_fetch_at
                .is_none_or(|at| at.elapsed() >= REFRESH_FLOOR);
            if expired {
                attempt_due
            } else if rotation_due {
                state.unknown_kid_fetch_at = Some(Instant::now());
                true
            } else {
                false
            }
        };
        if due {
            self.fetch_jwks(url).await;
        }
        // Kept keys serve (stale) while the issuer is down.
        let state = self.state();
        if let Some(found) = lookup(&state, kid) {
            return Ok(found);
        }
        match (&state.failure, state.fetched_at) {
            (Some(why), None) => Err(KeyMiss::Unavailable(why.clone())),
            _ => Err(KeyMiss::Unknown),
        }
    }

    /// Fetches the JWKS, keeping the old keys when it fails.
    async fn fetch_jwks(&self, url: &str) {
        self.state().attempted_at = Some(Instant::now());
        match self.get(url).await {
            Ok((body, keep)) => match parse_jwks(&body) {
                Some((keys, unnamed)) => {
                    let mut state = self.state();
                    state.keys = keys;
                    state.unnamed = unnamed;
                    state.fetched_at = Some(Instant::now());
                    state.keep_until = Some(Instant::now() + keep);
                    state.failure = None;
                }
                None => self.failed(format!("{url} is not a JWKS")),
            },
            Err(why) => self.failed(why),
        }
    }

    fn failed(&self, why: String) {
        tracing::warn!(%why, "the identity token issuer's keys could not be fetched; kept keys stay in use");
        self.state().failure = Some(why);
    }

    async fn look_up_per_kid(&self, template: &str, kid: &str) -> Result<KeyEntry, KeyMiss> {
        let safe = !kid.is_empty()
            && kid.len() <= 128
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !safe {
            return Err(KeyMiss::Unknown);
        }
        let _turn = self.fetching.lock().await;
        {
            let mut state = self.state();
            if let Some(found) = state.keys.get(kid) {
                return Ok(found.clone());
            }
            if state
                .misses
                .get(kid)
                .is_some_and(|at| at.elapsed() < MISS_MEMORY)
            {
                return Err(KeyMiss::Unknown);
            }
            if state
                .last_per_kid_fetch
                .is_some_and(|at| at.elapsed() < PER_KID_FLOOR)
            {
                return Err(KeyMiss::Unavailable("too many unknown key ids".into()));
            }
            state.last_per_kid_fetch = Some(Instant::now());
        }
        let url = template.replace("{kid}", kid);
        match self.get(&url).await {
            Ok((pem, _)) => match KeyEntry::from_pem(&pem) {
                Some(entry) => {
                    let mut state = self.state();
                    state.keys.insert(kid.to_string(), entry.clone());
                    state.fetched_at = Some(Instant::now());
                    state.failure = None;
                    Ok(entry)
                }
                None => {
                    self.state().misses.insert(kid.to_string(), Instant::now());
                    Err(KeyMiss::Unknown)
                }
            },
            Err(why) if why.contains("HTTP 4") => {
                self.state().misses.insert(kid.to_string(), Instant::now());
                Err(KeyMiss::Unknown)
            }
            Err(why) => {
                self.state().failure = Some(why.clone());
                Err(KeyMiss::Unavailable(why))
            }
        }
    }

    /// A body, and how long its headers say it may be kept.
    async fn get(&self, url: &str) -> Result<(String, Duration), String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| format!("{url}: {}", crate::io::ErrorChain(&err)))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status().as_u16()));
        }
        let keep = keep_for(response.headers());
        let body = response
            .text()
            .await
            .map_err(|err| format!("{url}: {err}"))?;
        Ok((body, keep))
    }

    /// Fetches at start, so the first token does not wait and readiness knows at once.
    pub async fn prefetch(&self) {
        if let JwtKeys::Jwks(url) = &self.source {
            let _turn = self.fetching.lock().await;
            self.fetch_jwks(url).await;
        }
    }

    /// Readiness: Ok when keys are at hand. While none ever were, it tries again (at most once
    /// a second), so readiness comes back when the issuer does, without waiting for a token.
    pub async fn health(&self) -> Result<(), String> {
        let never = self.state().fetched_at.is_none();
        if let (true, JwtKeys::Jwks(url)) = (never, &self.source) {
            let _turn = self.fetching.lock().await;
            let due = self
                .state()
                .attempted_at
                .is_none_or(|at| at.elapsed() >= NO_KEYS_FLOOR);
            if due {
                self.fetch_jwks(url).await;
            }
        }
        let state = self.state();
        match (&state.failure, state.fetched_at) {
            (Some(why), None) => Err(format!(
                "the token issuer's keys could not be fetched: {why}"
            )),
            _ => Ok(()),
        }
    }

    /// The last fetch failed but earlier keys are still used.
    pub fn stale(&self) -> Option<String> {
        let state = self.state();
        match (&state.failure, state.fetched_at) {
            (Some(why), Some(_)) => {
                Some(format!("serving kept keys; the last fetch failed: {why}"))
            }
            _ => None,
        }
    }
}

/// `max-age` from Cache-Control (no-store/no-cache: the floor), else Expires is not read: the
/// default. Bounded either way.
fn keep_for(headers: &reqwest::header::HeaderMap) -> Duration {
    let Some(control) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
    else {
        return DEFAULT_KEEP;
    };
    let mut keep = None;
    for directive in control.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return MIN_KEEP;
        }
        if let Some(age) = directive.strip_prefix("max-age=") {
            keep = age.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    keep.unwrap_or(DEFAULT_KEEP).clamp(MIN_KEEP, MAX_KEEP)
}

/// The key `kid` names; without a `kid`, the only key there is.
fn lookup(state: &State, kid: Option<&str>) -> Option<KeyEntry> {
    match kid {
        Some(kid) => state.keys.get(kid).cloned(),
        None if state.unnamed.len() + state.keys.len() == 1 => state
            .unnamed
            .first()
            .or_else(|| state.keys.values().next())
            .cloned(),
        None => None,
    }
}

type Parsed = (HashMap<String, KeyEntry>, Vec<KeyEntry>);

fn parse_jwks(body: &str) -> Option<Parsed> {
    let document: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut keys = HashMap::new();
    let mut unnamed = Vec::new();
    for jwk in document["keys"].as_array()? {
        let Some(entry) = KeyEntry::from_jwk(jwk) else {
            continue;
        };
        match jwk["kid"].as_str() {
            Some(kid) => {
                keys.insert(kid.to_string(), entry);
            }
            None => unnamed.push(entry),
        }
    }
    Some((keys, unnamed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caching_headers_are_bounded() {
        let headers = |value: &str| {
            let mut map = reqwest::header::HeaderMap::new();
            map.insert(reqwest::header::CACHE_CONTROL, value.parse().unwrap());
            map
        };
        assert_eq!(keep_for(&reqwest::header::HeaderMap::new()), DEFAULT_KEEP);
        assert_eq!(
            keep_for(&headers("public, max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(keep_for(&headers("max-age=5")), MIN_KEEP);
        assert_eq!(keep_for(&headers("max-age=99999999")), MAX_KEEP);
        assert_eq!(keep_for(&headers("no-store")), MIN_KEEP);
    }
}
