//! A sandbox LiveChat accounts server (`docs/vendors/livechat.md`, "The accounts server").
//!
//! - `POST /v2/token`: agent refresh grant (form or JSON), optionally rotating the refresh token
//! - `GET /v2/info`: the agent token's scope
//! - `POST /v2/customer/token`: `agent_token` grant (Bearer checked, `entity_id` to refresh, none to
//!   create; an unknown `entity_id` is 401 `identity_exception`) and `cookie` grant (`__lc_cid` /
//!   `__lc_cst` in, both set again out, `organization_id` required)
//! - `POST /v3.6/agent/action/update_customer`, `POST /v3.6/customer/action/update_customer`:
//!   recorded
//! - inspection for tests and the demo: `GET /sandbox/state`, `GET /sandbox/token-owner?token=`,
//!   and fault injection: `POST /sandbox/faults` with `{"latency_ms": N, "fail": [F, ...]}` where
//!   each F is `{"status": 503}` (a LiveChat error body), `{"drop": true}` or `{"hang": true}`.
//! - the stand-ins for the vendors' page scripts (`widgets`): `GET /sandbox/widget/livechat.js`
//!   and `GET /sandbox/widget/lptag.js`.

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
    pub agent_scope: String,
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
        }
    }
}

#[derive(Default)]
struct Books {
    refresh_token: String,
    agent_tokens: HashMap<String, Instant>,
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
                refresh_token: config.refresh_token.clone(),
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

    /// Forgets every agent access token (as a revocation would).
    pub fn revoke_agent_tokens(&self) {
        self.books().agent_tokens.clear();
    }

    /// The refresh token now valid.
    pub fn current_refresh_token(&self) -> String {
        self.books().refresh_token.clone()
    }

    /// Metadata updates received, in order.
    pub fn metadata(&self) -> Vec<serde_json::Value> {
        self.books().metadata.clone()
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.state.books.lock().unwrap_or_else(|e| e.into_inner())
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

fn oauth_error(status: StatusCode, exception: &str, description: &str) -> Reply {
    json(
        status,
        serde_json::json!({ "oauth_exception": exception, "exception_description": description }),
    )
}

fn identity_error() -> Reply {
    json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "identity_exception": "unauthorized", "exception_description": "unknown customer" }),
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

async fn route(state: &State, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unreadable body",
            )
        }
    };
    match (method, path.as_str()) {
        (Method::POST, "/v2/token") => agent_refresh(state, &headers, &body),
        (Method::GET, "/v2/info") => info(state, &headers),
        (Method::POST, "/v2/customer/token") => customer_token(state, &headers, &body),
        (Method::POST, "/v3.6/agent/action/update_customer") => {
            if !valid_agent(state, &headers) {
                return chat_error(
                    StatusCode::UNAUTHORIZED,
                    "authentication",
                    "invalid agent token",
                );
            }
            record_metadata(state, &body)
        }
        (Method::POST, "/v3.6/customer/action/update_customer") => {
            let known = bearer(&headers)
                .is_some_and(|token| state.books().customer_tokens.contains_key(token));
            if !known {
                return chat_error(
                    StatusCode::UNAUTHORIZED,
                    "authentication",
                    "invalid customer token",
                );
            }
            if query != format!("organization_id={}", state.config.organization_id) {
                return chat_error(
                    StatusCode::BAD_REQUEST,
                    "validation",
                    "organization_id is required",
                );
            }
            record_metadata(state, &body)
        }
        (Method::GET, "/sandbox/state") => {
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
        (Method::GET, "/sandbox/token-owner") => {
            let token = query.strip_prefix("token=").unwrap_or("");
            let token = percent_encoding::percent_decode_str(token).decode_utf8_lossy();
            // The stand-in widget asks from the page, on another origin.
            let mut answer = match state.books().customer_tokens.get(token.as_ref()) {
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
        (Method::GET, path) if path.starts_with("/sandbox/widget/") => super::widgets::script(path)
            .unwrap_or_else(|| {
                json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({ "error": "not_found" }),
                )
            }),
        (Method::POST, "/sandbox/faults") => match serde_json::from_slice::<FaultPlan>(&body) {
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
        },
        _ => oauth_error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "no such endpoint",
        ),
    }
}

/// Form or JSON body fields.
fn fields(headers: &http::HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        form_urlencoded_pairs(body)
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    let decode = |text: &str| -> String {
        let text = text.replace('+', " ");
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The Chat API's error shape (not the accounts server's).
fn chat_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    json(
        status,
        serde_json::json!({ "error": { "type": kind, "message": message } }),
    )
}

fn record_metadata(state: &State, body: &[u8]) -> Reply {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) if value.is_object() => {
            state.books().metadata.push(value);
            json(StatusCode::OK, serde_json::json!({}))
        }
        _ => chat_error(
            StatusCode::BAD_REQUEST,
            "validation",
            "a JSON object is required",
        ),
    }
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn agent_refresh(state: &State, headers: &http::HeaderMap, body: &[u8]) -> Reply {
    let form = fields(headers, body);
    let config = &state.config;
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only refresh_token here",
        );
    }
    if form.get("client_id") != Some(&config.client_id)
        || form.get("client_secret") != Some(&config.client_secret)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client credentials",
        );
    }
    let mut books = state.books();
    if form.get("refresh_token") != Some(&books.refresh_token) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "refresh token not valid",
        );
    }
    state.counters.agent_refreshes.fetch_add(1, Relaxed);
    let access = state.token("agent-");
    books.agent_tokens.insert(
        access.clone(),
        Instant::now() + Duration::from_secs(config.agent_token_ttl),
    );
    if config.rotate_refresh_token {
        books.refresh_token = state.token("sandbox-refresh-");
    }
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access,
            "refresh_token": books.refresh_token,
            "expires_in": config.agent_token_ttl,
            "token_type": "Bearer",
            "scope": config.agent_scope,
            "account_id": "sandbox-agent",
            "organization_id": config.organization_id,
        }),
    )
}

fn valid_agent(state: &State, headers: &http::HeaderMap) -> bool {
    let books = state.books();
    bearer(headers)
        .and_then(|token| books.agent_tokens.get(token))
        .is_some_and(|expires| *expires > Instant::now())
}

fn info(state: &State, headers: &http::HeaderMap) -> Reply {
    state.counters.info_calls.fetch_add(1, Relaxed);
    if !valid_agent(state, headers) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "token expired or unknown",
        );
    }
    json(
        StatusCode::OK,
        serde_json::json!({ "scope": state.config.agent_scope, "expires_in": state.config.agent_token_ttl }),
    )
}

fn customer_token(state: &State, headers: &http::HeaderMap, body: &[u8]) -> Reply {
    state.counters.customer_token_calls.fetch_add(1, Relaxed);
    let request = fields(headers, body);
    let config = &state.config;
    if request.get("client_id") != Some(&config.client_id) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    if request.get("response_type").map(String::as_str) != Some("token") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type must be token",
        );
    }
    match request.get("grant_type").map(String::as_str) {
        Some("agent_token") => {
            if !valid_agent(state, headers) {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "agent token expired or unknown",
                );
            }
            let mut books = state.books();
            let entity = match request.get("entity_id") {
                Some(entity) if books.customers.contains_key(entity) => entity.clone(),
                Some(_) => return identity_error(),
                None => {
                    let entity = state.uuid();
                    books.customers.insert(entity.clone(), state.token("cst-"));
                    state.counters.customers_created.fetch_add(1, Relaxed);
                    entity
                }
            };
            issue(state, &mut books, entity, None)
        }
        Some("cookie") => {
            if request.get("organization_id") != Some(&config.organization_id) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "organization_id is required",
                );
            }
            let cookies = request_cookies(headers);
            let mut books = state.books();
            let entity = match (cookies.get("__lc_cid"), cookies.get("__lc_cst")) {
                (Some(cid), Some(cst)) => match books.customers.get(cid) {
                    Some(secret) if secret == cst => cid.clone(),
                    _ => return identity_error(),
                },
                _ => {
                    let entity = state.uuid();
                    books.customers.insert(entity.clone(), state.token("cst-"));
                    state.counters.customers_created.fetch_add(1, Relaxed);
                    entity
                }
            };
            if config.rotate_cookie_secret {
                books.customers.insert(entity.clone(), state.token("cst-"));
            }
            let secret = books.customers[&entity].clone();
            issue(state, &mut books, entity, Some(secret))
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "agent_token or cookie",
        ),
    }
}

fn request_cookies(headers: &http::HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn issue(state: &State, books: &mut Books, entity: String, cookie_secret: Option<String>) -> Reply {
    let token = format!("dal:{}", state.token("ct-"));
    books.customer_tokens.insert(token.clone(), entity.clone());
    let mut response = json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": token,
            "client_id": state.config.client_id,
            "entity_id": entity,
            "expires_in": state.config.customer_token_ttl,
            "token_type": "Bearer",
            "organization_id": state.config.organization_id,
        }),
    );
    if let Some(secret) = cookie_secret {
        for (name, value) in [("__lc_cid", entity.as_str()), ("__lc_cst", secret.as_str())] {
            let cookie = format!("{name}={value}; Path=/v2/customer; Max-Age=63072000; HttpOnly; Secure; SameSite=None");
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.parse().expect("valid cookie"));
        }
    }
    response
}
