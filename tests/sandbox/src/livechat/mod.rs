//! A sandbox LiveChat (`docs/vendors/livechat.md`, "The accounts server" and "What agents see"):
//! the accounts server and the Chat API's `update_customer`, as LiveChat's servers and its own
//! clients describe them, including what makes an integration fail.
//!
//! - `oauth`: the agent's OAuth token: the authorization-code grant of a server-side app (the
//!   Owner's consent page at `/`, then `POST /v2/token`), the refresh grant (rotating the
//!   refresh token), `GET /v2/info`. Tokens carry exactly the scopes the sandbox is told to
//!   grant, and a dead agent token is answered `401 identity_exception` (as LiveChat's own
//!   accounts-sdk reads it: the agent's identity, not the customer's).
//! - `customers`: `POST /v2/customer/token`, the `agent_token` grant (needs `customers:own`;
//!   `entity_id` refreshes, none creates; an unknown `entity_id` is also `401
//!   identity_exception`) and the `cookie` grant (`__lc_cid`/`__lc_cst` in, both set out).
//! - `chat_api`: `update_customer` for agents (needs `customers:rw`) and customers, recorded;
//!   with a region set, calls on the global host are `misdirected_request` and the regional
//!   host (`/region/{region}/...`) answers.
//! - here: the server, fault injection (`POST /sandbox/faults`: latency, statuses, dropped or
//!   hung connections), inspection for tests and the demo (`GET /sandbox/state`,
//!   `GET /sandbox/token-owner?token=`), and the vendors' page scripts (`widgets`).

mod chat_api;
mod customers;
mod oauth;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A failure to inject into the next accounts call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Fault {
    /// Answer with this status and a LiveChat error body.
    Status { status: u16 },
    /// Close the connection without answering.
    Drop { drop: bool },
    /// Never answer (the client's timeout fires).
    Hang { hang: bool },
}

#[derive(Debug, Default, Deserialize)]
struct FaultPlan {
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    fail: Vec<Fault>,
}

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub organization_id: String,
    /// Customer token lifetime in seconds (LiveChat's default is 28800).
    pub customer_token_ttl: u64,
    pub agent_token_ttl: u64,
    /// Issue a new refresh token on every refresh (the old one stops working).
    pub rotate_refresh_token: bool,
    /// Issue a new `__lc_cst` on every cookie-grant call.
    pub rotate_cookie_secret: bool,
    /// The scopes every agent token is granted (the Developer Console app's scopes).
    pub agent_scope: String,
    /// Where the authorization-code grant may send its code (the app's whitelist).
    pub redirect_uris: Vec<String>,
    /// The license's region: Chat API calls on the global host are then misdirected.
    pub region: Option<String>,
    /// The other vendors' accounts, for the widget stand-ins this server serves.
    pub widgets: crate::widgets::WidgetAccounts,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            refresh_token: "sandbox-refresh-0".into(),
            organization_id: "00000000-0000-4000-8000-00000000c0de".into(),
            customer_token_ttl: 28800,
            agent_token_ttl: 28800,
            rotate_refresh_token: true,
            rotate_cookie_secret: true,
            agent_scope: "customers:own,customers:rw,chats--all:rw".into(),
            redirect_uris: vec!["http://127.0.0.1:8788/callback".into()],
            region: None,
            widgets: Default::default(),
        }
    }
}

/// An agent access token the sandbox issued.
struct AgentToken {
    expires: Instant,
    scope: String,
}

#[derive(Default)]
struct Books {
    /// The refresh tokens that work now (the configured one, then rotations and grants).
    refresh_tokens: Vec<String>,
    agent_tokens: HashMap<String, AgentToken>,
    /// Authorization codes not yet exchanged: code -> redirect_uri.
    codes: HashMap<String, String>,
    /// entity_id -> current cookie secret
    customers: HashMap<String, String>,
    /// customer access token -> entity_id
    customer_tokens: HashMap<String, String>,
    metadata: Vec<serde_json::Value>,
    faults: VecDeque<Fault>,
    latency: Duration,
}

/// Call counters, readable by tests.
#[derive(Default, Debug)]
pub struct Counters {
    pub customers_created: AtomicU64,
    pub customer_token_calls: AtomicU64,
    pub agent_refreshes: AtomicU64,
    pub info_calls: AtomicU64,
    pub codes_exchanged: AtomicU64,
    /// Chat API calls refused (scope, authentication, region).
    pub chat_api_refusals: AtomicU64,
}

struct State {
    config: SandboxConfig,
    books: Mutex<Books>,
    counters: Counters,
    next_id: AtomicU64,
}

/// A running sandbox accounts server.
#[derive(Clone)]
pub struct SandboxAccounts {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl SandboxAccounts {
    pub async fn start(config: SandboxConfig) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("a valid address"), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: SandboxConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = Arc::new(State {
            books: Mutex::new(Books {
                refresh_tokens: vec![config.refresh_token.clone()],
                ..Default::default()
            }),
            config,
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
        });
        let sandbox = Self {
            addr: listener.local_addr()?,
            state: state.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { handle(&state, request).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(sandbox)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The regional Chat API host's base URL, as `livechat.api_region_url` writes it.
    pub fn region_url_template(&self) -> String {
        format!("{}/region/{{region}}", self.url())
    }

    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    pub fn customers_created(&self) -> u64 {
        self.state.counters.customers_created.load(Relaxed)
    }

    pub fn customer_token_calls(&self) -> u64 {
        self.state.counters.customer_token_calls.load(Relaxed)
    }

    /// Which customer a token was issued to.
    pub fn owner_of(&self, access_token: &str) -> Option<String> {
        self.books().customer_tokens.get(access_token).cloned()
    }

    /// Queues failures for the next calls, and sets a latency for every call.
    pub fn inject(&self, latency: Duration, faults: impl IntoIterator<Item = Fault>) {
        let mut books = self.books();
        books.latency = latency;
        books.faults.extend(faults);
    }

    /// Drops the failures still queued (the outage is over).
    pub fn clear_faults(&self) {
        self.books().faults.clear();
    }

    /// Forgets every agent access token (as a revocation would, or LiveChat revoking the
    /// oldest of 25).
    pub fn revoke_agent_tokens(&self) {
        self.books().agent_tokens.clear();
    }

    /// The newest refresh token that works.
    pub fn current_refresh_token(&self) -> String {
        self.books()
            .refresh_tokens
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// Metadata updates received, in order.
    pub fn metadata(&self) -> Vec<serde_json::Value> {
        self.books().metadata.clone()
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.state.books()
    }
}

type Reply = Response<Full<Bytes>>;

fn json(status: StatusCode, value: serde_json::Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    response
}

/// The accounts server's error shape (not RFC 6749's).
fn oauth_error(status: StatusCode, exception: &str, description: &str) -> Reply {
    json(
        status,
        serde_json::json!({ "oauth_exception": exception, "exception_description": description }),
    )
}

/// `401 identity_exception`: the resource owner (the agent, or the customer named) is not
/// known. LiveChat answers a dead agent token and an unknown `entity_id` alike.
fn identity_error(description: &str) -> Reply {
    json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "identity_exception": "unauthorized", "exception_description": description }),
    )
}

impl State {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn token(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Relaxed);
        let random = u64::from_be_bytes(crate::random());
        format!("{prefix}{n}-{random:016x}")
    }

    fn uuid(&self) -> String {
        let bytes: [u8; 16] = crate::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-4{}-8{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// The scope of a live agent token in `Authorization: Bearer`, if it is one.
    fn agent_scope(&self, headers: &http::HeaderMap) -> Option<String> {
        let books = self.books();
        bearer(headers)
            .and_then(|token| books.agent_tokens.get(token))
            .filter(|token| token.expires > Instant::now())
            .map(|token| token.scope.clone())
    }
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(',').any(|s| s.trim() == wanted)
}

/// A service error makes hyper close the connection without answering: the "drop" fault.
#[derive(Debug)]
struct DroppedOnPurpose;

impl std::fmt::Display for DroppedOnPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedOnPurpose {}

async fn handle(state: &State, request: Request<Incoming>) -> Result<Reply, DroppedOnPurpose> {
    if let Some(fault) = next_fault(state, request.uri().path()).await {
        return match fault {
            Fault::Status { status } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let exception = if status == StatusCode::TOO_MANY_REQUESTS {
                    "too_many_requests"
                } else {
                    "server_error"
                };
                Ok(oauth_error(status, exception, "injected fault"))
            }
            Fault::Hang { .. } => std::future::pending().await,
            Fault::Drop { .. } => Err(DroppedOnPurpose),
        };
    }
    Ok(route(state, request).await)
}

/// Applies the injected latency and takes the next injected failure (vendor paths only).
async fn next_fault(state: &State, path: &str) -> Option<Fault> {
    if path.starts_with("/sandbox/") {
        return None;
    }
    let (latency, fault) = {
        let mut books = state.books();
        (books.latency, books.faults.pop_front())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    fault
}

/// One request as the handlers see it: read whole (the sandbox's bodies are small).
struct Call {
    method: Method,
    path: String,
    query: String,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Call {
    /// Form or JSON body fields.
    fn fields(&self) -> HashMap<String, String> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return form_pairs(&self.body);
        }
        let value: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .map(|(k, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        (k.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn query_pairs(&self) -> HashMap<String, String> {
        form_pairs(self.query.as_bytes())
    }
}

async fn route(state: &State, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: body.to_bytes(),
    };
    match (&call.method, call.path.as_str()) {
        (&Method::GET, "/") => oauth::consent(state, &call),
        (&Method::POST, "/v2/token") => oauth::token(state, &call),
        (&Method::GET, "/v2/info") => oauth::info(state, &call),
        (&Method::POST, "/v2/customer/token") => customers::token(state, &call),
        (&Method::POST, path) if path.ends_with("/action/update_customer") => {
            chat_api::update_customer(state, &call)
        }
        (&Method::GET, "/sandbox/state") => inspect(state),
        (&Method::GET, "/sandbox/token-owner") => token_owner(state, &call),
        (&Method::GET, path) if path.starts_with("/sandbox/widget/") => {
            crate::widgets::script(path, &state.config.widgets).unwrap_or_else(|| {
                json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({ "error": "not_found" }),
                )
            })
        }
        (&Method::POST, "/sandbox/faults") => faults(state, &call),
        _ => oauth_error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "no such endpoint",
        ),
    }
}

fn inspect(state: &State) -> Reply {
    let books = state.books();
    let c = &state.counters;
    json(
        StatusCode::OK,
        serde_json::json!({
            "customers_created": c.customers_created.load(Relaxed),
            "customer_token_calls": c.customer_token_calls.load(Relaxed),
            "agent_refreshes": c.agent_refreshes.load(Relaxed),
            "customers": books.customers.keys().collect::<Vec<_>>(),
            "metadata": books.metadata,
        }),
    )
}

/// Whose token this is (the stand-in widget asks from the page, on another origin).
fn token_owner(state: &State, call: &Call) -> Reply {
    let token = call.query_pairs().remove("token").unwrap_or_default();
    let mut answer = match state.books().customer_tokens.get(&token) {
        Some(entity) => json(StatusCode::OK, serde_json::json!({ "entity_id": entity })),
        None => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "entity_id": null }),
        ),
    };
    answer.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    answer
}

fn faults(state: &State, call: &Call) -> Reply {
    match serde_json::from_slice::<FaultPlan>(&call.body) {
        Ok(plan) => {
            let mut books = state.books();
            books.latency = Duration::from_millis(plan.latency_ms);
            books.faults.extend(plan.fail);
            json(StatusCode::OK, serde_json::json!({}))
        }
        Err(err) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": err.to_string() }),
        ),
    }
}

/// `application/x-www-form-urlencoded` pairs (also a query string).
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let decode = |text: &str| -> String {
        let text = text.replace('+', " ");
        percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
