//! The identity probe: `GET probe_path` on the app with the caller's Cookie and Authorization
//! only, and its answer read: 2xx names the user (in headers, or in the app's own JSON "who am
//! I" at `probe_json_*` pointers), 401, 403 or a redirect says nobody, anything else fails
//! closed. Bounded across serving threads (`ProbeLimit`).

use super::headers::HeaderReader;
use super::{Identity, IdentityError};
use crate::config::Config;
use crate::metrics::{Counter, CountersBy, Registry};
use crate::proxy::{AppFetcher, Fetched, GetRequest};
use http::header::{self, HeaderMap};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Largest probe answer Tether reads (a JSON "who am I" is small; the rest keeps the
/// connection reusable).
const PROBE_BODY_LIMIT: usize = 64 * 1024;
/// How many callers may wait per probe slot before new ones are refused without waiting.
const QUEUE_PER_SLOT: usize = 8;

crate::metrics::label_values! {
    /// Why a 2xx probe answer was not believed.
    pub enum AnswerRejected {
        NotJson = "not_json",
        NotAString = "user_not_a_string",
        TooLarge = "too_large",
    }
}

/// Bounds the probes in flight to the app across all serving threads (and so the connections
/// they open): a burst of token requests waits briefly for a free slot, then gets 503, instead
/// of opening a connection each. Also counts the answers refused.
pub struct ProbeLimit {
    slots: Semaphore,
    queue_timeout: Duration,
    /// Callers waiting now; beyond `max_waiting` they are refused at once.
    waiting: AtomicUsize,
    max_waiting: usize,
    refused: Counter,
    pub(super) rejected: CountersBy<AnswerRejected>,
}

impl ProbeLimit {
    /// Registers `tether_identity_probes_refused_total` and
    /// `tether_identity_answers_rejected_total{reason}` on `registry`.
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
            rejected: CountersBy::register(
                registry,
                "identity_answers_rejected",
                "2xx identity probe answers not believed (fail closed, 502).",
                "reason",
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

/// The JSON pointers into the app's "who am I".
struct JsonPointers {
    user: String,
    email: String,
    name: String,
}

/// One serving thread's probe client: its own keep-alive connections to the app, on the
/// engine's byte-level client (`proxy::AppFetcher`: no connection task, no channel hop), at most
/// `probe_concurrency` of them kept.
pub struct Probe {
    fetcher: AppFetcher,
    /// `probe_path`, origin-form.
    target: String,
    timeout: Duration,
    limit: Arc<ProbeLimit>,
    json: Option<JsonPointers>,
    reader: HeaderReader,
}

impl Probe {
    pub fn new(config: &Config, limit: Arc<ProbeLimit>) -> Self {
        let identity = &config.identity;
        let json = (!identity.probe_json_user.is_empty()).then(|| JsonPointers {
            user: identity.probe_json_user.clone(),
            email: identity.probe_json_email.clone(),
            name: identity.probe_json_name.clone(),
        });
        Self {
            fetcher: AppFetcher::new(&config.upstream, &config.limits, identity.probe_concurrency),
            target: identity.probe_path.clone(),
            timeout: identity.probe_timeout,
            limit,
            json,
            reader: HeaderReader::new(config),
        }
    }

    /// Asks the app who sent `caller`'s request.
    pub async fn ask(&self, caller: &HeaderMap) -> Result<Option<Identity>, IdentityError> {
        let _slot = self.limit.acquire().await?;
        let request = probe_request(&self.target, caller, self.json.is_some());
        // The (small) body is read whole: the JSON answer, and the connection back to the pool.
        let answer =
            tokio::time::timeout(self.timeout, self.fetcher.get(request, PROBE_BODY_LIMIT))
                .await
                .map_err(|_| IdentityError::Unavailable("the identity probe timed out".into()))?
                .map_err(|err| {
                    IdentityError::Unavailable(format!("the app did not answer: {err}"))
                })?;
        match answer.status {
            200..=299 => match &self.json {
                None => self.reader.read(&answer),
                Some(pointers) => match &answer.body {
                    Some(body) => self.read_json(pointers, &answer, body),
                    None => Err(self.rejected(AnswerRejected::TooLarge, "over 64 KiB")),
                },
            },
            // Not logged in; a redirect is the app sending the caller to its login page.
            300..=399 | 401 | 403 => Ok(None),
            500..=599 => Err(IdentityError::Unavailable(format!(
                "the app answered {}",
                answer.status
            ))),
            status => Err(IdentityError::Invalid(format!(
                "the app answered {status} (is identity.probe_path right?)"
            ))),
        }
    }

    fn rejected(&self, reason: AnswerRejected, why: &str) -> IdentityError {
        self.limit.rejected.inc(reason);
        IdentityError::Invalid(format!("the app's who-am-I answer: {why}"))
    }

    /// The app's own JSON: the user at its pointer (absent or null: nobody), a string or an
    /// integer id; email and name when they are strings.
    fn read_json(
        &self,
        pointers: &JsonPointers,
        headers: &Fetched,
        body: &[u8],
    ) -> Result<Option<Identity>, IdentityError> {
        let answer: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| self.rejected(AnswerRejected::NotJson, "not JSON"))?;
        let user_id = match answer.pointer(&pointers.user) {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(id)) => id.trim().to_string(),
            // An integer id is unambiguous (42 is "42"); a float, bool, object or list is not.
            Some(serde_json::Value::Number(id)) if id.is_i64() || id.is_u64() => id.to_string(),
            Some(_) => {
                return Err(self.rejected(AnswerRejected::NotAString, "the user id is not a string"))
            }
        };
        if user_id.is_empty() {
            return Ok(None);
        }
        let text = |pointer: &str| {
            (!pointer.is_empty())
                .then(|| answer.pointer(pointer)?.as_str().map(str::trim))
                .flatten()
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        Ok(Some(Identity {
            user_id,
            email: text(&pointers.email),
            name: text(&pointers.name),
            claims: self.reader.claims(headers),
        }))
    }
}

/// GET probe_path with the caller's Host, Cookie (its fields joined into one) and Authorization
/// only (and, for a JSON "who am I", `Accept: application/json`, which some apps answer by).
fn probe_request(target: &str, caller: &HeaderMap, json: bool) -> GetRequest {
    let mut request = GetRequest::new(target);
    if let Some(host) = caller.get(header::HOST) {
        request.field("host", host.as_bytes());
    }
    let cookies = caller.get_all(header::COOKIE).into_iter();
    request.joined_field("cookie", cookies.map(|value| value.as_bytes()), b"; ");
    for value in caller.get_all(header::AUTHORIZATION) {
        request.field("authorization", value.as_bytes());
    }
    if json {
        request.field("accept", b"application/json");
    }
    request
}
