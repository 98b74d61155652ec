//! Who is logged in. Every identity endpoint (LiveChat, LivePerson) asks this resolver; nothing
//! else decides. The answer comes from the app (a probe request carrying only the caller's Cookie
//! and Authorization) or, in header mode, from a trusted gateway's header; never from the client.

use crate::config::{Config, IdentitySource};
use crate::metrics::{Counter, Registry};
use crate::proxy::ConnInfo;
use crate::refusal::Refusal;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

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

/// Bounds the probes in flight to the app across all serving threads (and so the connections
/// they open): a burst of token requests waits briefly for a free slot, then gets 503, instead
/// of opening a connection each.
pub struct ProbeLimit {
    slots: Semaphore,
    queue_timeout: Duration,
    /// Callers waiting now; beyond `max_waiting` they are refused at once.
    waiting: AtomicUsize,
    max_waiting: usize,
    refused: Counter,
}

impl ProbeLimit {
    /// Registers `tether_identity_probes_refused_total` on `registry`.
    pub fn new(config: &Config, registry: &mut Registry) -> Arc<Self> {
        let concurrency = config.identity.probe_concurrency.max(1);
        Arc::new(Self {
            slots: Semaphore::new(concurrency),
            queue_timeout: config.identity.probe_queue_timeout,
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency.saturating_mul(QUEUE_PER_SLOT),
            refused: crate::metrics::counter(
                registry,
                "identity_probes_refused",
                "Identity probes not sent: all in flight and the queue did not move in time (503).",
            ),
        })
    }

    async fn acquire(&self) -> Result<SemaphorePermit<'_>, IdentityError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Relaxed);
            self.refused.inc();
            return Err(IdentityError::Busy);
        }
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Relaxed);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.refused.inc();
                Err(IdentityError::Busy)
            }
        }
    }
}

/// How many callers may wait per probe slot before new ones are refused without waiting.
const QUEUE_PER_SLOT: usize = 8;

enum Source {
    Probe {
        client: Box<Client<HttpConnector, Empty<Bytes>>>,
        uri: Uri,
        timeout: Duration,
        limit: Arc<ProbeLimit>,
    },
    Header,
}

pub struct IdentityResolver {
    source: Source,
    user_header: HeaderName,
    email_header: Option<HeaderName>,
    name_header: Option<HeaderName>,
    claims: Vec<(HeaderName, String)>,
}

/// Largest probe response body Tether reads (and discards) to keep the connection reusable.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

impl IdentityResolver {
    /// `limit` is shared by the resolvers of every serving thread.
    pub fn new(config: &Config, limit: Arc<ProbeLimit>) -> Self {
        let identity = &config.identity;
        let source = match identity.source {
            IdentitySource::Header => Source::Header,
            IdentitySource::Probe => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(config.upstream.connect_timeout));
                let client = Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(config.upstream.pool_idle_timeout)
                    .pool_max_idle_per_host(identity.probe_concurrency)
                    .http1_writev(false)
                    .build(connector);
                let uri = Uri::builder()
                    .scheme("http")
                    .authority(config.upstream.url.clone())
                    .path_and_query(identity.probe_path.as_str())
                    .build()
                    .expect("probe_path is validated as a path");
                Source::Probe {
                    client: Box::new(client),
                    uri,
                    timeout: identity.probe_timeout,
                    limit,
                }
            }
        };
        Self {
            source,
            user_header: identity.user_header.clone(),
            email_header: identity.email_header.clone(),
            name_header: identity.name_header.clone(),
            claims: identity.claims.clone(),
        }
    }

    /// The logged-in user for a request (Ok(None): nobody is logged in).
    pub async fn resolve(
        &self,
        request_headers: &HeaderMap,
        conn: &ConnInfo,
    ) -> Result<Option<Identity>, IdentityError> {
        match &self.source {
            Source::Header => {
                // Identity headers from untrusted peers were already stripped by the proxy.
                if !conn.trusted_peer {
                    return Ok(None);
                }
                self.read(request_headers)
            }
            Source::Probe {
                client,
                uri,
                timeout,
                limit,
            } => {
                let _slot = limit.acquire().await?;
                let probe = probe_request(uri, request_headers);
                let answer = tokio::time::timeout(*timeout, async {
                    let response = client.request(probe).await.map_err(|err| {
                        IdentityError::Unavailable(format!("the app did not answer: {err}"))
                    })?;
                    let (parts, body) = response.into_parts();
                    // Read the (small) body so the connection goes back to the pool.
                    let _ = http_body_util::Limited::new(body, PROBE_BODY_LIMIT)
                        .collect()
                        .await;
                    Ok::<_, IdentityError>(parts)
                })
                .await
                .map_err(|_| IdentityError::Unavailable("the identity probe timed out".into()))??;
                self.interpret(answer.status, &answer.headers)
            }
        }
    }

    fn interpret(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, IdentityError> {
        match status.as_u16() {
            200..=299 => self.read(headers),
            // Not logged in; a redirect is the app sending the caller to its login page.
            300..=399 | 401 | 403 => Ok(None),
            500..=599 => Err(IdentityError::Unavailable(format!(
                "the app answered {status}"
            ))),
            _ => Err(IdentityError::Invalid(format!(
                "the app answered {status} (is identity.probe_path right?)"
            ))),
        }
    }

    /// Reads the identity headers: exactly one non-empty user value, or nobody.
    fn read(&self, headers: &HeaderMap) -> Result<Option<Identity>, IdentityError> {
        let mut users = headers.get_all(&self.user_header).iter();
        let Some(user) = users.next() else {
            return Ok(None);
        };
        if users.next().is_some() {
            return Err(IdentityError::Invalid(format!(
                "several {} values",
                self.user_header
            )));
        }
        let user_id = header_text(user).ok_or_else(|| {
            IdentityError::Invalid(format!("{} is not valid text", self.user_header))
        })?;
        if user_id.is_empty() {
            return Ok(None);
        }
        let single = |name: &HeaderName| -> Option<String> {
            let mut values = headers.get_all(name).iter();
            let value = values.next()?;
            // Ambiguous profile values are dropped rather than guessed.
            if values.next().is_some() {
                return None;
            }
            header_text(value).filter(|text| !text.is_empty())
        };
        Ok(Some(Identity {
            user_id,
            email: self.email_header.as_ref().and_then(&single),
            name: self.name_header.as_ref().and_then(&single),
            claims: self
                .claims
                .iter()
                .filter_map(|(header, claim)| Some((claim.clone(), single(header)?)))
                .collect(),
        }))
    }
}

/// Header values are bytes; identity values must be UTF-8 text, trimmed.
fn header_text(value: &HeaderValue) -> Option<String> {
    std::str::from_utf8(value.as_bytes())
        .ok()
        .map(|text| text.trim().to_string())
}

/// GET probe_path with the caller's Host, Cookie and Authorization only.
fn probe_request(uri: &Uri, caller: &HeaderMap) -> Request<Empty<Bytes>> {
    let mut request = Request::get(uri.clone())
        .body(Empty::new())
        .expect("a GET with a valid URI is a valid request");
    let headers = request.headers_mut();
    if let Some(host) = caller.get(header::HOST) {
        headers.insert(header::HOST, host.clone());
    }
    for name in [header::COOKIE, header::AUTHORIZATION] {
        for value in caller.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    crate::proxy::headers::join_cookies(headers);
    request
}
