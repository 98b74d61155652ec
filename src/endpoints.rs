//! Tether's own endpoints under the reserved prefix: routing, the shared response rules (private,
//! no-store, no CORS grant, cross-site refusal) and assembly of the vendor services from the
//! configuration. The vendors' flows live in their own modules (`livechat`).

use crate::admin::ReadinessCheck;
use crate::config::Config;
use crate::identity::{IdentityError, IdentityResolver};
use crate::livechat::accounts::AccountsClient;
use crate::livechat::endpoints::LiveChat;
use crate::livechat::tokens::TokenService;
use crate::liveperson::LivePerson;
use crate::metrics::MetricsSource;
use crate::proxy::{BoxFuture, ConnInfo, ReservedEndpoints, ResponseBody};
use crate::server::StartError;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Builds one core's endpoints (each core gets its own HTTP clients; state is shared).
pub type EndpointsFactory = Arc<dyn Fn() -> Arc<dyn ReservedEndpoints> + Send + Sync>;

/// What the configured vendors add to the proxy.
pub struct Extensions {
    pub endpoints: EndpointsFactory,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    pub metrics: Vec<MetricsSource>,
}

/// Assembles the vendor services the configuration enables.
pub async fn build(config: &Config) -> Result<Extensions, StartError> {
    let mut checks: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
    let mut metrics: Vec<MetricsSource> = Vec::new();
    // One store for every vendor: it owns the database file.
    let store = if config.livechat.enabled || config.liveperson.enabled {
        Some(open_store(config)?)
    } else {
        None
    };
    if let Some(store) = &store {
        checks.push(Arc::new(StoreReady(store.clone())));
        // Say at once whether the store answers (a shared store is connected on first use).
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.ping().await {
                tracing::error!(error = %err, "the store does not answer; identity endpoints answer 503 and /readyz fails until it does");
            }
        });
    }
    let livechat = if config.livechat.enabled {
        let store = store.clone().expect("opened above");
        let accounts = AccountsClient::new(&config.livechat, store.clone())
            .map_err(|err| StartError::Fatal(err.to_string()))?;
        let tokens = TokenService::new(
            Arc::new(accounts),
            store.clone(),
            config.livechat.refresh_margin,
            config.livechat.token_cache_capacity,
            config.livechat.token_cache,
        );
        let livechat = Arc::new(LiveChat::new(config, tokens));
        // Check the agent token and its scope at start-up, so a misconfiguration shows in the
        // log at once (and in /readyz until it is fixed).
        let startup = livechat.clone();
        tokio::spawn(async move {
            match startup.tokens.accounts().check_agent().await {
                Ok(()) => {
                    tracing::info!("LiveChat agent token works and has the customers:own scope")
                }
                Err(err) => {
                    tracing::error!(error = %err, "LiveChat is not usable yet; token requests will fail")
                }
            }
        });
        checks.push(Arc::new(LiveChatReady {
            livechat: livechat.clone(),
            last: Arc::default(),
        }));
        let source = livechat.clone();
        let store_for_metrics = store.clone();
        metrics.push(Arc::new(move |out: &mut String| {
            let c = &source.tokens.counters;
            for (name, help, value) in [
                ("tether_livechat_tokens_issued_total", "Customer tokens issued by LiveChat.", c.issued.load(Relaxed)),
                ("tether_livechat_tokens_cached_total", "Token requests answered from the cache.", c.served_from_cache.load(Relaxed)),
                ("tether_livechat_tokens_shared_total", "Tokens read from the shared cache (fetched by another replica).", c.served_from_shared_cache.load(Relaxed)),
                ("tether_livechat_customers_created_total", "LiveChat customers created and recorded.", c.customers_created.load(Relaxed)),
                ("tether_livechat_surplus_customers_total", "Customers created by a losing first-login race.", c.surplus_customers.load(Relaxed)),
                ("tether_livechat_unknown_customers_total", "Recorded customers LiveChat did not know.", c.unknown_customers.load(Relaxed)),
            ] {
                crate::metrics::write_counter(out, name, help, value);
            }
            out.push_str(&format!(
                "# HELP tether_store_customers Customers recorded in the store.\n# TYPE tether_store_customers gauge\ntether_store_customers {}\n",
                store_for_metrics.customer_count()
            ));
        }));
        Some(livechat)
    } else {
        None
    };
    let liveperson = if config.liveperson.enabled {
        let store = store.clone().expect("opened above");
        let liveperson = Arc::new(
            LivePerson::new(config, store)
                .map_err(|(key, why)| StartError::Config(config.origin.error_at(key, why)))?,
        );
        tracing::info!(kid = liveperson.kid(), "LivePerson: signing id_tokens");
        metrics.push(liveperson.metrics());
        Some(liveperson)
    } else {
        None
    };
    let config = config.clone();
    let endpoints: EndpointsFactory = Arc::new(move || {
        Arc::new(Endpoints(Arc::new(Inner {
            identity: IdentityResolver::new(&config),
            livechat: livechat.clone(),
            liveperson: liveperson.clone(),
        }))) as Arc<dyn ReservedEndpoints>
    });
    Ok(Extensions {
        endpoints,
        checks,
        metrics,
    })
}

fn open_store(config: &Config) -> Result<Arc<dyn crate::store::Store>, StartError> {
    let key = match config.store.kind {
        crate::config::StoreKind::Redis => "store.url",
        _ => "store.path",
    };
    crate::store::open(config)
        .map_err(|err| StartError::Config(config.origin.error_at(key, err.to_string())))
}

struct Inner {
    identity: IdentityResolver,
    livechat: Option<Arc<LiveChat>>,
    liveperson: Option<Arc<LivePerson>>,
}

/// One core's router for the reserved prefix.
#[derive(Clone)]
pub struct Endpoints(Arc<Inner>);

impl ReservedEndpoints for Endpoints {
    fn handle(
        &self,
        request: Request<Incoming>,
        subpath: String,
        conn: Arc<ConnInfo>,
    ) -> BoxFuture<Response<ResponseBody>> {
        let this = self.clone();
        Box::pin(async move { this.route(request, &subpath, &conn).await })
    }
}

impl Endpoints {
    async fn route(
        &self,
        request: Request<Incoming>,
        subpath: &str,
        conn: &ConnInfo,
    ) -> Response<ResponseBody> {
        let method = request.method().clone();
        match (subpath, &self.0.livechat) {
            ("/livechat/identity-provider.js", Some(livechat)) => {
                if method != Method::GET && method != Method::HEAD {
                    return method_not_allowed("GET, HEAD");
                }
                livechat.provider_script()
            }
            ("/livechat/token", Some(livechat)) => {
                if ![Method::GET, Method::POST, Method::DELETE].contains(&method) {
                    return method_not_allowed("GET, POST, DELETE");
                }
                if is_cross_site(request.headers()) {
                    return refusal(StatusCode::FORBIDDEN, "cross_site_request");
                }
                match self.0.identity.resolve(request.headers(), conn).await {
                    Ok(Some(identity)) => livechat.token(&method, &identity).await,
                    Ok(None) => refusal(StatusCode::UNAUTHORIZED, "not_authenticated"),
                    Err(err) => identity_failure(err),
                }
            }
            _ => match &self.0.liveperson {
                Some(liveperson) => liveperson
                    .route(request, subpath, conn, &self.0.identity)
                    .await
                    .unwrap_or_else(|| refusal(StatusCode::NOT_FOUND, "not_found")),
                None => refusal(StatusCode::NOT_FOUND, "not_found"),
            },
        }
    }
}

/// The identity lookup failed: fail closed, never as someone else.
pub fn identity_failure(err: IdentityError) -> Response<ResponseBody> {
    tracing::warn!(error = %err, "identity lookup failed");
    match err {
        IdentityError::Unavailable(_) => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, "identity_unavailable")
        }
        IdentityError::Invalid(_) => refusal(StatusCode::BAD_GATEWAY, "identity_invalid"),
    }
}

/// Refuses requests a third-party page made with the user's cookies (`Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host is not this site's).
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host);
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true, // "null" or unparseable origins
    }
}

/// A JSON answer private to the caller: never stored, varies by credentials, no CORS grant.
pub fn private_json(status: StatusCode, body: Option<serde_json::Value>) -> Response<ResponseBody> {
    let body = body.map_or_else(bytes::Bytes::new, |body| {
        bytes::Bytes::from(body.to_string())
    });
    private_json_bytes(status, body)
}

/// `private_json` for a body already serialised.
pub fn private_json_bytes(status: StatusCode, body: bytes::Bytes) -> Response<ResponseBody> {
    let mut response = crate::proxy::full(status, "application/json", body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Authorization"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `{"error": code}`; a 503 says when to come back.
pub fn refusal(status: StatusCode, code: &str) -> Response<ResponseBody> {
    let mut response = private_json(status, Some(serde_json::json!({ "error": code })));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

pub fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = refusal(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The last readiness answer and when it was given.
type LastCheck = Arc<Mutex<Option<(Instant, Result<(), String>)>>>;

/// /readyz: the store answers (a shared store can be unreachable; the in-process ones always do).
struct StoreReady(Arc<dyn crate::store::Store>);

impl ReadinessCheck for StoreReady {
    fn name(&self) -> &'static str {
        "store"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let ping = self.0.ping();
        Box::pin(async move { ping.await.map_err(|err| err.to_string()) })
    }
}

/// /readyz: the agent token works and has `customers:own`.
struct LiveChatReady {
    livechat: Arc<LiveChat>,
    last: LastCheck,
}

/// A working agent token is re-checked every 30 s; a failing one every second, so readiness
/// comes back as soon as what it waited for (LiveChat, the store) does.
const READY_RECHECK: Duration = Duration::from_secs(30);
const NOT_READY_RECHECK: Duration = Duration::from_secs(1);

impl ReadinessCheck for LiveChatReady {
    fn name(&self) -> &'static str {
        "livechat"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let livechat = self.livechat.clone();
        let last = self.last.clone();
        Box::pin(async move {
            let cached = last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .filter(|(at, result)| {
                    let recheck = if result.is_ok() {
                        READY_RECHECK
                    } else {
                        NOT_READY_RECHECK
                    };
                    at.elapsed() < recheck
                })
                .map(|(_, result)| result.clone());
            if let Some(result) = cached {
                return result;
            }
            let result = livechat
                .tokens
                .accounts()
                .check_agent()
                .await
                .map_err(|err| err.to_string());
            *last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((Instant::now(), result.clone()));
            result
        })
    }
}
