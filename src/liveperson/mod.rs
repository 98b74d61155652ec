//! LivePerson authenticated consumers: Tether as the brand's OpenID Connect provider.
//!
//! The whole flow lives here: `keys` (signing keys, JWKS), `claims` and `sdes` (what a token says),
//! `jose` (signing and encryption), `codes` (Code Flow codes), `oauth` (the token and authorize
//! endpoints LivePerson's servers and windows call) and this module: the page's endpoints
//! (`/liveperson/token`, `/liveperson/code`, `/liveperson/identity`, `identity.js`), discovery and
//! the JWKS, and the per-user JWT cache.

pub mod base64url;
pub mod claims;
pub mod client_auth;
pub mod codes;
pub mod jose;
pub mod keys;

mod oauth;
pub mod params;
pub mod sdes;

use crate::clock::now_secs;
use crate::config::{Config, PageFlow};
use crate::identity::{Identity, IdentityResolver};
use crate::metrics::MetricsSource;
use crate::proxy::{ConnInfo, ResponseBody};
use crate::respond::{private_json, private_json_bytes, refusal};
use crate::store::Store;
use bytes::Bytes;
use claims::ClaimsBuilder;
use client_auth::ClientAuth;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use jose::Encrypter;
use keys::SigningKey;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters for /metrics.
#[derive(Default)]
pub struct Counters {
    pub tokens_signed: AtomicU64,
    pub tokens_cached: AtomicU64,
    pub codes_issued: AtomicU64,
    pub codes_redeemed: AtomicU64,
    pub code_replays: AtomicU64,
    pub exchanges_refused: AtomicU64,
    pub client_auth_failures: AtomicU64,
    pub client_auth_throttled: AtomicU64,
}

/// A signed JWT kept for its user until shortly before it expires.
struct CachedJwt {
    issuer: String,
    identity: Identity,
    /// `{"jwt": "..."}`, rendered once.
    body: Bytes,
    renew_at: Instant,
}

pub struct LivePerson {
    key: SigningKey,
    jwks: Bytes,
    encrypter: Option<Encrypter>,
    claims: ClaimsBuilder,
    /// Configured issuer; None: derived from each request's Host.
    issuer: Option<String>,
    prefix: String,
    /// Authenticates LivePerson's servers; also the one place the client id is kept.
    client_auth: ClientAuth,
    redirect_uris: Vec<String>,
    code_ttl: Duration,
    login_url: String,
    login_return_param: String,
    store: Arc<dyn Store>,
    jwt_cache: moka::sync::Cache<String, Arc<CachedJwt>>,
    identity_script: Bytes,
    pub counters: Counters,
}

/// Most users whose signed JWTs are kept in memory.
const JWT_CACHE_CAPACITY: u64 = 1_000_000;

impl LivePerson {
    /// Loads the keys the configuration names; an unusable key is a configuration error at `key`.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, (&'static str, String)> {
        let lp = &config.liveperson;
        let keys = keys::load(lp)?;
        let encrypter = keys
            .encryption
            .map(|key| Encrypter::new(key, lp.encryption_kid.clone(), lp.encryption_enc));
        let ttl = lp.token_ttl;
        let script = include_str!("identity.js")
            .replace("{{PREFIX}}", &config.reserved.prefix)
            .replace("{{METHOD}}", &lp.auth_method)
            .replace(
                "{{FLOW}}",
                match lp.page_flow {
                    PageFlow::Jwt => "jwt",
                    PageFlow::Code => "code",
                },
            );
        Ok(Self {
            jwks: Bytes::from(json!({ "keys": keys.published }).to_string()),
            key: keys.signing,
            encrypter,
            claims: ClaimsBuilder::new(lp),
            issuer: Some(lp.issuer.clone()).filter(|i| !i.is_empty()),
            prefix: config.reserved.prefix.clone(),
            client_auth: ClientAuth::new(
                lp.client_id.clone(),
                lp.client_secret.clone(),
                lp.client_auth_failures_per_minute,
            ),
            redirect_uris: lp.redirect_uris.clone(),
            code_ttl: lp.code_ttl,
            login_url: lp.login_url.clone(),
            login_return_param: lp.login_return_param.clone(),
            store,
            jwt_cache: moka::sync::Cache::builder()
                .max_capacity(JWT_CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
            identity_script: Bytes::from(script),
            counters: Counters::default(),
        })
    }

    /// The page script's source (for the page loader, which carries it).
    pub fn identity_source(&self) -> &str {
        std::str::from_utf8(&self.identity_script).expect("built from a str")
    }

    /// The `kid` of the active signing key.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// Serves `subpath` if it is a LivePerson or OpenID endpoint; None lets the caller answer 404.
    pub async fn route(
        &self,
        request: Request<Incoming>,
        subpath: &str,
        conn: &ConnInfo,
        identity: &IdentityResolver,
    ) -> Option<Response<ResponseBody>> {
        let method = request.method().clone();
        let allow = |allowed: &'static str, ok: bool| {
            (!ok).then(|| crate::respond::method_not_allowed(allowed))
        };
        let is_get = method == Method::GET || method == Method::HEAD;
        let response = match subpath {
            "/.well-known/openid-configuration" => {
                allow("GET, HEAD", is_get).unwrap_or_else(|| match self.issuer_for(&request) {
                    Some(issuer) => self.discovery(&issuer),
                    None => refusal(StatusCode::BAD_REQUEST, "invalid_host"),
                })
            }
            "/jwks.json" => {
                allow("GET, HEAD", is_get).unwrap_or_else(|| public_json(self.jwks.clone()))
            }
            "/liveperson/identity.js" => {
                allow("GET, HEAD", is_get).unwrap_or_else(|| self.script())
            }
            "/liveperson/token" | "/liveperson/identity" => {
                match allow("GET", method == Method::GET) {
                    Some(refused) => refused,
                    None => self.page(request, subpath, conn, identity).await,
                }
            }
            "/liveperson/code" => match allow("POST", method == Method::POST) {
                Some(refused) => refused,
                None => self.page(request, subpath, conn, identity).await,
            },
            "/oauth/token" => match allow("POST", method == Method::POST) {
                Some(refused) => refused,
                None => self.token_endpoint(request, conn).await,
            },
            "/oauth/authorize" => match allow("GET", method == Method::GET) {
                Some(refused) => refused,
                None => self.authorize(request, conn, identity).await,
            },
            _ => return None,
        };
        Some(response)
    }

    /// The page's endpoints: same-site only, for the logged-in user.
    async fn page(
        &self,
        request: Request<Incoming>,
        subpath: &str,
        conn: &ConnInfo,
        identity: &IdentityResolver,
    ) -> Response<ResponseBody> {
        if crate::respond::is_cross_site(request.headers()) {
            return refusal(StatusCode::FORBIDDEN, "cross_site_request");
        }
        let user = match identity.resolve(request.headers(), conn).await {
            Ok(Some(user)) => user,
            Ok(None) => return refusal(StatusCode::UNAUTHORIZED, "not_authenticated"),
            Err(err) => return crate::respond::identity_failure(err),
        };
        let Some(issuer) = self.issuer_for(&request) else {
            return refusal(StatusCode::BAD_REQUEST, "invalid_host");
        };
        match subpath {
            "/liveperson/token" => self.page_token(&issuer, &user),
            "/liveperson/identity" => {
                let sub = self.claims.subject(&user.user_id);
                private_json(
                    StatusCode::OK,
                    Some(json!({"iss": issuer, "acr": "loa1", "sub": sub})),
                )
            }
            _ => self.page_code(request, issuer, user).await,
        }
    }

    /// The issuer for a request: the configured one, or `https://<host>{prefix}` from the
    /// request's authority (HTTP/2) or Host header.
    fn issuer_for(&self, request: &Request<Incoming>) -> Option<String> {
        if let Some(issuer) = &self.issuer {
            return Some(issuer.clone());
        }
        let host = match request.uri().authority() {
            Some(authority) => authority.as_str().to_string(),
            None => {
                let host = request.headers().get(header::HOST)?.to_str().ok()?;
                host.parse::<http::uri::Authority>()
                    .ok()?
                    .as_str()
                    .to_string()
            }
        };
        Some(format!("https://{host}{}", self.prefix))
    }

    fn discovery(&self, issuer: &str) -> Response<ResponseBody> {
        let document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "jwks_uri": format!("{issuer}/jwks.json"),
            "response_types_supported": ["code", "id_token", "token"],
            "response_modes_supported": ["query", "fragment"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "grant_types_supported": ["authorization_code", "implicit"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": ["iss", "sub", "aud", "azp", "iat", "exp", "nonce", "email", "name",
                "given_name", "family_name", "preferred_username", "phone_number", "gender", "lp_sdes"],
        });
        public_json(Bytes::from(document.to_string()))
    }

    fn script(&self) -> Response<ResponseBody> {
        let mut response = crate::proxy::full(
            StatusCode::OK,
            "application/javascript; charset=utf-8",
            self.identity_script.clone(),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// Implicit Flow: `{"jwt": ...}`, from the cache while the user, their claims and the issuer
    /// are unchanged and the token is not close to expiry.
    fn page_token(&self, issuer: &str, user: &Identity) -> Response<ResponseBody> {
        if let Some(cached) = self.jwt_cache.get(&user.user_id) {
            if cached.renew_at > Instant::now()
                && cached.issuer == issuer
                && cached.identity == *user
            {
                self.counters.tokens_cached.fetch_add(1, Relaxed);
                return private_json_bytes(StatusCode::OK, cached.body.clone());
            }
        }
        let token = match self.id_token(issuer, user, None) {
            Ok(token) => token,
            Err(response) => return *response,
        };
        let body = Bytes::from(json!({ "jwt": token }).to_string());
        let ttl = self.claims.ttl();
        // Renew when a tenth of the lifetime is left (between 30 s and 5 minutes before expiry).
        let margin = (ttl / 10).clamp(Duration::from_secs(30), Duration::from_secs(300));
        self.jwt_cache.insert(
            user.user_id.clone(),
            Arc::new(CachedJwt {
                issuer: issuer.to_string(),
                identity: user.clone(),
                body: body.clone(),
                renew_at: Instant::now() + ttl.saturating_sub(margin),
            }),
        );
        private_json_bytes(StatusCode::OK, body)
    }

    /// A signed (and, when configured, encrypted) id_token; an error is already a response.
    fn id_token(
        &self,
        issuer: &str,
        user: &Identity,
        nonce: Option<&str>,
    ) -> Result<String, Box<Response<ResponseBody>>> {
        let claims = self.claims.build(issuer, user, nonce, now_secs());
        let signed = jose::sign(&self.key, &claims);
        let token = signed.and_then(|jws| match &self.encrypter {
            Some(encrypter) => encrypter.encrypt(&jws),
            None => Ok(jws),
        });
        match token {
            Ok(token) => {
                self.counters.tokens_signed.fetch_add(1, Relaxed);
                Ok(token)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot sign an id_token");
                Err(Box::new(refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "signing_failed",
                )))
            }
        }
    }

    /// Code Flow from the page: a one-time code for the logged-in user.
    async fn page_code(
        &self,
        request: Request<Incoming>,
        issuer: String,
        user: Identity,
    ) -> Response<ResponseBody> {
        if self.client_auth.client_id().is_empty() {
            return refusal(StatusCode::NOT_FOUND, "code_flow_not_configured");
        }
        let params = match params::read(request).await {
            Ok(params) => params,
            Err(why) => return refusal_with(StatusCode::BAD_REQUEST, "invalid_request", why),
        };
        let redirect_uri = params.get("redirect_uri");
        let redirect = match redirect_uri {
            Some(uri) if self.redirect_uris.iter().any(|allowed| allowed == uri) => uri.to_string(),
            Some(_) => {
                return refusal_with(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not allowed",
                )
            }
            None => self.redirect_uris[0].clone(),
        };
        // LivePerson only sends S256 challenges; an explicit "plain" is honoured.
        let challenge = match params.pkce(codes::PkceMethod::S256) {
            Ok(challenge) => challenge,
            Err(why) => return refusal_with(StatusCode::BAD_REQUEST, "invalid_request", why),
        };
        let grant = CodeRequest {
            redirect_uri: redirect.clone(),
            redirect_uri_given: redirect_uri.is_some(),
            challenge,
            nonce: params.get("nonce"),
        };
        match self.issue_code(&issuer, &user, grant).await {
            Ok(code) => private_json(
                StatusCode::OK,
                Some(json!({"code": code, "redirect_uri": redirect})),
            ),
            Err(response) => *response,
        }
    }

    /// Signs the user's id_token now, when the claims are snapshotted, and issues a code for it:
    /// the exchange LivePerson's server waits on then does no RSA work.
    async fn issue_code(
        &self,
        issuer: &str,
        user: &Identity,
        request: CodeRequest<'_>,
    ) -> Result<String, Box<Response<ResponseBody>>> {
        let grant = codes::CodeGrant {
            v: codes::GRANT_VERSION,
            client_id: self.client_auth.client_id().to_string(),
            redirect_uri: request.redirect_uri,
            redirect_uri_given: request.redirect_uri_given,
            challenge: request.challenge,
            id_token: self.id_token(issuer, user, request.nonce)?,
            expires_at: now_secs() + self.code_ttl.as_secs().max(1),
        };
        match codes::issue(self.store.as_ref(), &grant, self.code_ttl).await {
            Ok(code) => {
                self.counters.codes_issued.fetch_add(1, Relaxed);
                Ok(code)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot store a code");
                Err(Box::new(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                )))
            }
        }
    }

    pub fn metrics(self: &Arc<Self>) -> MetricsSource {
        let this = self.clone();
        Arc::new(move |out: &mut String| {
            let c = &this.counters;
            for (name, help, value) in [
                (
                    "tether_liveperson_tokens_signed_total",
                    "id_tokens signed.",
                    c.tokens_signed.load(Relaxed),
                ),
                (
                    "tether_liveperson_tokens_cached_total",
                    "JWT requests answered from the cache.",
                    c.tokens_cached.load(Relaxed),
                ),
                (
                    "tether_liveperson_codes_issued_total",
                    "Code Flow codes issued.",
                    c.codes_issued.load(Relaxed),
                ),
                (
                    "tether_liveperson_codes_redeemed_total",
                    "Codes exchanged for an id_token.",
                    c.codes_redeemed.load(Relaxed),
                ),
                (
                    "tether_liveperson_code_replays_total",
                    "Exchanges of a code already used.",
                    c.code_replays.load(Relaxed),
                ),
                (
                    "tether_liveperson_exchanges_refused_total",
                    "Code exchanges refused (invalid_grant).",
                    c.exchanges_refused.load(Relaxed),
                ),
                (
                    "tether_liveperson_client_auth_failures_total",
                    "Token endpoint calls with bad client credentials.",
                    c.client_auth_failures.load(Relaxed),
                ),
                (
                    "tether_liveperson_client_auth_throttled_total",
                    "Token endpoint calls refused with 429 after too many failed authentications.",
                    c.client_auth_throttled.load(Relaxed),
                ),
            ] {
                crate::metrics::write_counter(out, name, help, value);
            }
        })
    }
}

/// What a code is issued for, besides the user.
struct CodeRequest<'a> {
    redirect_uri: String,
    /// Whether the caller named the redirect_uri (then the exchange must repeat it).
    redirect_uri_given: bool,
    challenge: Option<(codes::PkceMethod, String)>,
    nonce: Option<&'a str>,
}

/// `{"error": code, "error_description": why}`, private and never stored.
fn refusal_with(status: StatusCode, code: &str, why: &str) -> Response<ResponseBody> {
    let mut response = private_json(
        status,
        Some(json!({"error": code, "error_description": why})),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// Public documents (discovery, JWKS): cacheable for five minutes, readable cross-origin.
fn public_json(body: Bytes) -> Response<ResponseBody> {
    let mut response = crate::proxy::full(StatusCode::OK, "application/json", body);
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
