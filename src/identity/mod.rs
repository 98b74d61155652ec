//! Who is logged in. Every vendor's endpoint asks this resolver; nothing else decides. The answer
//! comes from the app (`probe`: a request carrying only the caller's Cookie and Authorization,
//! answered in headers or in the app's own JSON), from a trusted gateway's headers (`headers`), or
//! from a signed token the request carries, verified against its issuer's keys (`token`); never
//! from what a client merely claims.

mod headers;
mod probe;
mod token;

use crate::config::{Config, IdentitySource};
use crate::health::ReadinessCheck;
use crate::metrics::Registry;
use crate::proxy::ConnInfo;
use crate::refusal::Refusal;
use headers::HeaderReader;
use http::header::HeaderMap;
use probe::Probe;
pub use probe::ProbeLimit;
use std::collections::BTreeMap;
use std::sync::Arc;
use token::TokenSource;

/// The logged-in user as the app describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The app's user id: stable, the key of every mapping.
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `[identity.claims]`: claim name -> value.
    pub claims: BTreeMap<String, String>,
}

/// The identity could not be established; callers fail closed (no token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The app did not answer in time, or answered 5xx: 503, try again.
    #[error("identity probe unavailable: {0}")]
    Unavailable(String),
    /// The app's answer cannot be trusted (several user values, unexpected status): 502.
    #[error("identity probe answer rejected: {0}")]
    Invalid(String),
    /// Too many probes in flight and the queue did not move in time: 503, try again.
    #[error("identity probes are all in flight and the queue did not move in time")]
    Busy,
}

/// A failed lookup fails closed: never as someone else.
impl From<IdentityError> for Refusal {
    fn from(err: IdentityError) -> Self {
        tracing::warn!(error = %err, "identity lookup failed");
        match err {
            IdentityError::Unavailable(_) => Refusal::IdentityUnavailable,
            IdentityError::Busy => Refusal::IdentityBusy,
            IdentityError::Invalid(_) => Refusal::IdentityInvalid,
        }
    }
}

/// What the resolvers of every serving thread share: the probe bound, and the token source
/// with its keys.
pub struct IdentityShared {
    limit: Arc<ProbeLimit>,
    token: Option<Arc<TokenSource>>,
}

impl IdentityShared {
    /// Registers the identity families on `registry`; with `source = "jwt"`, starts fetching
    /// the issuer's keys.
    pub fn new(config: &Config, registry: &mut Registry) -> Arc<Self> {
        Arc::new(Self {
            limit: ProbeLimit::new(config, registry),
            token: (config.identity.source == IdentitySource::Jwt)
                .then(|| TokenSource::new(config, registry)),
        })
    }

    /// `/readyz`: the token issuer's keys, when tokens are the source.
    pub fn checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        match &self.token {
            Some(token) => vec![
                Arc::new(token::KeysReady(token.clone())) as Arc<dyn ReadinessCheck>,
                Arc::new(token::KeysStale(token.clone())),
            ],
            None => Vec::new(),
        }
    }
}

enum Source {
    /// A trusted gateway's headers.
    Header(HeaderReader),
    /// The app's answer to the probe.
    Probe(Box<Probe>),
    /// A signed token the request carries.
    Token(Arc<TokenSource>),
}

/// One serving thread's view of who is signed in.
pub struct IdentityResolver {
    source: Source,
}

impl IdentityResolver {
    pub fn new(config: &Config, shared: &IdentityShared) -> Self {
        let source = match (&config.identity.source, &shared.token) {
            (IdentitySource::Header, _) => Source::Header(HeaderReader::new(config)),
            (IdentitySource::Jwt, Some(token)) => Source::Token(token.clone()),
            _ => Source::Probe(Box::new(Probe::new(config, shared.limit.clone()))),
        };
        Self { source }
    }

    /// The logged-in user for a request (Ok(None): nobody is logged in).
    pub async fn resolve(
        &self,
        request_headers: &HeaderMap,
        conn: &ConnInfo,
    ) -> Result<Option<Identity>, IdentityError> {
        match &self.source {
            // Identity headers from untrusted peers were already stripped by the proxy.
            Source::Header(_) if !conn.trusted_peer => Ok(None),
            Source::Header(reader) => reader.read(request_headers),
            Source::Probe(probe) => probe.ask(request_headers).await,
            Source::Token(token) => token.resolve(request_headers).await,
        }
    }
}
