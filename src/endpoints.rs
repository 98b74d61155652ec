//! Tether's own endpoints under the reserved prefix: routing, the shared response rules (private,
//! no-store, no CORS grant, cross-site refusal) and assembly of the vendor services from the
//! configuration. The vendors' flows live in their own modules (`livechat`).

use crate::admin::ReadinessCheck;
use crate::config::Config;
use crate::erasure::Eraser;
use crate::identity::{IdentityResolver, ProbeLimit};
use crate::lifecycle::StartError;
use crate::livechat::accounts::AccountsClient;
use crate::livechat::endpoints::LiveChat;
use crate::livechat::tokens::TokenService;
use crate::liveperson::LivePerson;
use crate::metrics::MetricsSource;
use crate::proxy::{BoxFuture, ConnInfo, ReservedEndpoints, ResponseBody};
use crate::respond::{identity_failure, is_cross_site, method_not_allowed, refusal};
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
    /// The eraser (and through it the store), when a vendor uses a store: for the admin store
    /// endpoints and the erasure log.
    pub eraser: Option<Arc<Eraser>>,
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
                ("tether_livechat_token_failures_total", "Token requests answered with an error.", c.failures.load(Relaxed)),
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
    let eraser = store.map(|store| {
        let tokens = livechat.as_ref().map(|livechat| livechat.tokens.clone());
        let eraser = Arc::new(Eraser::new(store, tokens));
        let counted = eraser.clone();
        metrics.push(Arc::new(move |out: &mut String| {
            crate::metrics::write_counter(
                out,
                "tether_store_users_erased_total",
                "Users erased (mapping and cached tokens) through this replica.",
                counted.erased.load(Relaxed),
            );
            crate::metrics::write_counter(
                out,
                "tether_store_errors_total",
                "Store operations that failed (unreachable, timed out, refused).",
                counted.store().error_count(),
            );
        }));
        eraser
    });
    let loader = page_loader(config, livechat.as_deref(), liveperson.as_deref());
    let probe_limit = ProbeLimit::new(config);
    metrics.push(probe_limit.metrics());
    let config = config.clone();
    let endpoints: EndpointsFactory = Arc::new(move || {
        Arc::new(Endpoints(Arc::new(Inner {
            identity: IdentityResolver::new(&config, probe_limit.clone()),
            livechat: livechat.clone(),
            liveperson: liveperson.clone(),
            loader: loader.clone(),
        }))) as Arc<dyn ReservedEndpoints>
    });
    Ok(Extensions {
        endpoints,
        checks,
        metrics,
        eraser,
    })
}

/// `[inject]`'s page loader, carrying the page scripts of the vendors it injects.
fn page_loader(
    config: &Config,
    livechat: Option<&LiveChat>,
    liveperson: Option<&LivePerson>,
) -> Option<bytes::Bytes> {
    let inject = &config.inject;
    if !inject.enabled || !(inject.livechat || inject.liveperson) {
        return None;
    }
    let provider = livechat
        .filter(|_| inject.livechat)
        .map(LiveChat::provider_source);
    let identity = liveperson
        .filter(|_| inject.liveperson)
        .map(LivePerson::identity_source);
    Some(crate::inject::loader::render(config, provider, identity))
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
    /// `{prefix}/inject/loader.js`, when `[inject]` puts a vendor on pages.
    loader: Option<bytes::Bytes>,
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
        if let ("/inject/loader.js", Some(loader)) = (subpath, &self.0.loader) {
            if method != Method::GET && method != Method::HEAD {
                return method_not_allowed("GET, HEAD");
            }
            return loader_script(loader.clone());
        }
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

/// The loader is the same for every visitor: browsers and caches may keep it a few minutes.
fn loader_script(loader: bytes::Bytes) -> Response<ResponseBody> {
    let mut response = crate::proxy::full(
        StatusCode::OK,
        "application/javascript; charset=utf-8",
        loader,
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
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
