//! LivePerson's authenticated consumers: Tether as the brand's OpenID Connect provider. The
//! whole LivePerson flow lives here (the contract it implements: `docs/vendors/liveperson.md`).
//!
//! - this module: the vendor, the page's endpoints (`{prefix}/liveperson/token`, `/code`,
//!   `/identity`, `/identity.js`), discovery, and the per-user JWT cache;
//! - `oauth`: the endpoints LivePerson's side calls (`/oauth/token`, `/oauth/authorize`);
//! - `console`: the endpoints' paths, and what the brand enters in LivePerson's console;
//! - `claims` and `sdes`: what a token says; `codes`: Code Flow codes; `client_auth`: who may
//!   redeem them; `params`: OAuth parameters;
//! - `identity.js`: the page's identity function and authentication method; `page.js`: the
//!   loader part. Signing and the JWKS are shared (`crate::signing`).

pub mod claims;
pub mod client_auth;
pub mod codes;
pub mod console;
mod metrics;
mod oauth;
pub mod params;
mod redirects;
pub mod sdes;

use super::{Call, PagePart, Setup, Vendor, GET, GET_HEAD, POST};
use crate::clock::now_secs;
use crate::config::{Config, PageFlow};
use crate::identity::Identity;
use crate::lifecycle::StartError;
use crate::proxy::EndpointBody;
use crate::refusal::Answer;
use crate::refusal::Refusal;
use crate::respond::{private_json, private_json_bytes, public_json, script};
use crate::signing::cache::SignedCache;
use crate::signing::jose::Encrypter;
use crate::signing::Signer;
use crate::store::Store;
use bytes::Bytes;
use claims::ClaimsBuilder;
use client_auth::ClientAuth;
use futures_util::future::BoxFuture;
use http::{Request, StatusCode};
use metrics::Counters;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "liveperson";

pub struct LivePerson {
    signer: Arc<Signer>,
    encrypter: Option<Encrypter>,
    claims: ClaimsBuilder,
    /// Configured issuer; None: derived from each request's Host.
    issuer: Option<String>,
    prefix: String,
    /// Authenticates LivePerson's servers; also the one place the client id is kept.
    client_auth: ClientAuth,
    /// The client-authentication limit shared by the replicas (opt-in).
    shared_failures: Option<crate::shared_limit::SharedFailures>,
    redirects: redirects::Redirects,
    code_ttl: Duration,
    login_url: String,
    login_return_param: String,
    store: Arc<dyn Store>,
    jwt_cache: SignedCache,
    identity_script: Bytes,
    page: Option<PagePart>,
    counters: Counters,
}

/// The vendor, when `[liveperson]` is enabled.
pub fn build(setup: &mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError> {
    let config = setup.config;
    if !config.liveperson.enabled {
        return Ok(None);
    }
    let store = setup.store()?;
    let signer = setup.signer()?;
    let counters = Counters::register(setup.metrics(NAME));
    let liveperson = LivePerson::new(config, store, signer, counters)
        .map_err(|(key, why)| StartError::Config(config.origin.error_at(key, why)))?;
    tracing::info!(
        kid = liveperson.signer.kid(),
        "LivePerson: signing id_tokens"
    );
    Ok(Some(Arc::new(liveperson)))
}

impl LivePerson {
    /// An unusable encryption key is a configuration error at `key`.
    fn new(
        config: &Config,
        store: Arc<dyn Store>,
        signer: Arc<Signer>,
        counters: Counters,
    ) -> Result<Self, (&'static str, String)> {
        let lp = &config.liveperson;
        let encrypter = match &lp.encryption_key {
            Some(path) => Some(Encrypter::new(
                crate::signing::keys::load_encryption_key(path)
                    .map_err(|e| ("liveperson.encryption_key", e))?,
                Some(lp.encryption_kid.clone()).filter(|kid| !kid.is_empty()),
                lp.encryption_enc,
            )),
            None => None,
        };
        let script_source = include_str!("identity.js")
            .replace("{{PREFIX}}", &config.reserved.prefix)
            .replace("{{ISSUER}}", &lp.issuer)
            .replace("{{METHOD}}", &lp.auth_method)
            .replace(
                "{{FLOW}}",
                match lp.page_flow {
                    PageFlow::Jwt => "jwt",
                    PageFlow::Code => "code",
                },
            );
        let inject = &config.inject;
        let page = inject.liveperson.then(|| PagePart {
            name: NAME,
            settings: json!({
                "site": inject.liveperson_site_id,
                "tag": inject.liveperson_tag_url(),
            }),
            script: format!(
                "function (tether, settings) {{\n  function installIdentity() {{\n{script_source}\n  }}\n{}\n}}",
                include_str!("page.js")
            ),
            scripts: vec![inject.liveperson_tag_url()],
        });
        Ok(Self {
            signer,
            encrypter,
            claims: ClaimsBuilder::new(lp),
            issuer: Some(lp.issuer.clone()).filter(|i| !i.is_empty()),
            prefix: config.reserved.prefix.clone(),
            client_auth: ClientAuth::new(
                lp.client_id.clone(),
                lp.client_secret.clone(),
                lp.client_auth_failures_per_minute,
            ),
            shared_failures: lp.client_auth_limit_shared.then(|| {
                crate::shared_limit::SharedFailures::new(
                    store.clone(),
                    lp.client_auth_failures_per_minute,
                    "lp-auth",
                )
            }),
            redirects: redirects::Redirects::new(lp),
            code_ttl: lp.code_ttl,
            login_url: lp.login_url.clone(),
            login_return_param: lp.login_return_param.clone(),
            store,
            jwt_cache: SignedCache::new(lp.token_ttl),
            identity_script: Bytes::from(script_source),
            page,
            counters,
        })
    }

    /// The page's endpoints: same-site only, for the signed-in user.
    async fn page(&self, call: Call<'_>) -> Answer {
        call.same_site()?;
        let user = call.user().await?;
        let issuer = self.issuer_for(&call.request)?;
        match call.path {
            "/token" => self.page_token(&issuer, &user),
            "/identity" => Ok(private_json(
                StatusCode::OK,
                &json!({"iss": issuer, "acr": "loa1", "sub": self.claims.subject(&user.user_id)}),
            )),
            _ => self.page_code(call.request, issuer, user).await,
        }
    }

    /// The issuer for a request: the configured one, or `https://<host>{prefix}` from the
    /// request's authority (HTTP/2) or Host header.
    fn issuer_for(&self, request: &Request<EndpointBody>) -> Result<String, Refusal> {
        match &self.issuer {
            Some(issuer) => Ok(issuer.clone()),
            None => super::issuer_from_host(request, &self.prefix),
        }
    }

    fn discovery(&self, issuer: &str) -> Answer {
        let document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}{}", console::AUTHORIZE),
            "token_endpoint": format!("{issuer}{}", console::TOKEN),
            "jwks_uri": format!("{issuer}{}", console::JWKS),
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
        Ok(public_json(Bytes::from(document.to_string())))
    }

    /// Implicit Flow: `{"jwt": ...}`, from the cache while the user, their claims and the issuer
    /// are unchanged and the token is not close to expiry.
    fn page_token(&self, issuer: &str, user: &Identity) -> Answer {
        if let Some(body) = self.jwt_cache.get(issuer, user) {
            self.counters.tokens_cached.inc();
            return Ok(private_json_bytes(StatusCode::OK, body));
        }
        let token = self.id_token(issuer, user, None)?;
        let body = Bytes::from(json!({ "jwt": token }).to_string());
        self.jwt_cache.insert(issuer, user, body.clone());
        Ok(private_json_bytes(StatusCode::OK, body))
    }

    /// A signed (and, when configured, encrypted) id_token.
    fn id_token(
        &self,
        issuer: &str,
        user: &Identity,
        nonce: Option<&str>,
    ) -> Result<String, Refusal> {
        let claims = self.claims.build(issuer, user, nonce, now_secs());
        let signed = self.signer.sign(&claims);
        let token = signed.and_then(|jws| match &self.encrypter {
            Some(encrypter) => encrypter.encrypt(&jws),
            None => Ok(jws),
        });
        let token = token.map_err(|err| {
            tracing::error!(error = %err, "cannot sign an id_token");
            Refusal::SigningFailed
        })?;
        self.counters.tokens_signed.inc();
        Ok(token)
    }

    /// Code Flow from the page: a one-time code for the signed-in user.
    async fn page_code(
        &self,
        request: Request<EndpointBody>,
        issuer: String,
        user: Identity,
    ) -> Answer {
        if self.client_auth.client_id().is_empty() {
            return Err(Refusal::NotConfigured("code_flow_not_configured"));
        }
        let params = params::read(request)
            .await
            .map_err(|why| Refusal::InvalidRequest(why.into()))?;
        let redirect_uri = params.get("redirect_uri");
        let (redirect, allowed) = match redirect_uri {
            Some(uri) => match self.redirects.check(uri) {
                Some(allowed) => (uri.to_string(), allowed),
                None => {
                    return Err(Refusal::InvalidRequest(
                        "redirect_uri is not allowed".into(),
                    ))
                }
            },
            None => (
                self.redirects.default_uri().to_string(),
                redirects::Allowed::Registered,
            ),
        };
        // LivePerson only sends S256 challenges; an explicit "plain" is honoured.
        let challenge = params
            .pkce(codes::PkceMethod::S256)
            .map_err(|why| Refusal::InvalidRequest(why.into()))?;
        let grant = CodeRequest {
            redirect_uri: redirect.clone(),
            redirect_uri_given: redirect_uri.is_some(),
            legacy_window: allowed == redirects::Allowed::LegacyWindow,
            challenge,
            nonce: params.get("nonce"),
        };
        let code = self.issue_code(&issuer, &user, grant).await?;
        Ok(private_json(
            StatusCode::OK,
            &json!({"code": code, "redirect_uri": redirect}),
        ))
    }

    /// Signs the user's id_token now, when the claims are snapshotted, and issues a code for it:
    /// the exchange LivePerson's server waits on then does no RSA work.
    async fn issue_code(
        &self,
        issuer: &str,
        user: &Identity,
        request: CodeRequest<'_>,
    ) -> Result<String, Refusal> {
        let grant = codes::CodeGrant {
            v: codes::GRANT_VERSION,
            client_id: self.client_auth.client_id().to_string(),
            redirect_uri: request.redirect_uri,
            redirect_uri_given: request.redirect_uri_given,
            legacy_window: request.legacy_window,
            challenge: request.challenge,
            id_token: self.id_token(issuer, user, request.nonce)?,
            expires_at: now_secs() + self.code_ttl.as_secs().max(1),
        };
        let code = codes::issue(self.store.as_ref(), &grant, self.code_ttl)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "cannot store a code");
                Refusal::StoreUnavailable
            })?;
        self.counters.codes_issued.inc();
        Ok(code)
    }
}

/// What a code is issued for, besides the user.
struct CodeRequest<'a> {
    redirect_uri: String,
    /// Whether the caller named the redirect_uri (then the exchange must repeat it).
    redirect_uri_given: bool,
    /// Issued to LivePerson's window by a registered prefix (a legacy connector).
    legacy_window: bool,
    challenge: Option<(codes::PkceMethod, String)>,
    nonce: Option<&'a str>,
}

impl Vendor for LivePerson {
    fn name(&self) -> &'static str {
        NAME
    }

    fn extra_paths(&self) -> &'static [&'static str] {
        &[console::DISCOVERY, console::TOKEN, console::AUTHORIZE]
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match call.path {
                console::DISCOVERY => {
                    call.only(GET_HEAD)?;
                    self.discovery(&self.issuer_for(&call.request)?)
                }
                "/identity.js" => {
                    call.only(GET_HEAD)?;
                    Ok(script(self.identity_script.clone(), "no-cache"))
                }
                "/token" | "/identity" => {
                    call.only(GET)?;
                    self.page(call).await
                }
                "/code" => {
                    call.only(POST)?;
                    self.page(call).await
                }
                console::TOKEN => {
                    call.only(POST)?;
                    self.token_endpoint(call).await
                }
                console::AUTHORIZE => {
                    call.only(GET)?;
                    self.authorize(call).await
                }
                _ => Err(Refusal::NotFound),
            }
        })
    }

    fn page_part(&self) -> Option<PagePart> {
        self.page.clone()
    }

    fn page_visitor(&self, user: &str) -> Option<serde_json::Value> {
        Some(json!({ "sub": self.claims.subject(user) }))
    }

    fn forget_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        self.jwt_cache.forget(user);
        Box::pin(async {})
    }

    fn forget_erased<'a>(
        &'a self,
        erased: &'a HashSet<&'a str>,
        everything: bool,
    ) -> BoxFuture<'a, ()> {
        self.jwt_cache.forget_erased(erased, everything);
        Box::pin(async {})
    }
}
