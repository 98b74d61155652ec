//! Salesforce Messaging for In-App and Web, user verification (docs/vendors/salesforce.md): an
//! RS256 JWT signed with Tether's RSA key (`[signing]`, shared with LivePerson), which Salesforce
//! checks against the keyset the brand registered: Tether's JWKS (every key with `x5c`), or one
//! JWK uploaded (`tether salesforce jwk`). Served at `{prefix}/salesforce/jwt`; the page part
//! (`page.js`) hands it to `setIdentityToken`. No call to Salesforce is made.

use super::{issuer_from_host, tag_user_key, Call, PagePart, Setup, Vendor, GET_HEAD};
use crate::clock::now_secs;
use crate::config::Config;
use crate::identity::Identity;
use crate::lifecycle::StartError;
use crate::metrics::{counter, Counter};
use crate::refusal::{Answer, Refusal};
use crate::respond::{private_json_bytes, Reply};
use crate::signing::cache::SignedCache;
use crate::signing::Signer;
use crate::user_key::UserKeys;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "salesforce";

pub struct Salesforce {
    signer: Arc<Signer>,
    /// The keyset's issuer; None: Tether's issuer for the request's host.
    issuer: Option<String>,
    prefix: String,
    ttl: Duration,
    cache: SignedCache,
    user_keys: Arc<UserKeys>,
    page: Option<PagePart>,
    tokens_signed: Counter,
    tokens_cached: Counter,
}

/// The vendor, when `[salesforce]` is enabled.
pub fn build(setup: &mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError> {
    let config = setup.config;
    if !config.salesforce.enabled {
        return Ok(None);
    }
    let registry = setup.metrics(NAME);
    let tokens_signed = counter(registry, "tokens_signed", "Salesforce JWTs signed.");
    let tokens_cached = counter(
        registry,
        "tokens_cached",
        "JWT requests answered from the cache.",
    );
    let salesforce = &config.salesforce;
    Ok(Some(Arc::new(Salesforce {
        signer: setup.signer()?,
        issuer: issuer(config),
        prefix: config.reserved.prefix.clone(),
        ttl: salesforce.token_ttl,
        cache: SignedCache::new(salesforce.token_ttl),
        user_keys: setup.user_keys()?,
        page: page_part(config),
        tokens_signed,
        tokens_cached,
    })))
}

/// `salesforce.issuer`, else Tether's issuer (`liveperson.issuer`), else None: from the Host.
fn issuer(config: &Config) -> Option<String> {
    [&config.salesforce.issuer, &config.liveperson.issuer]
        .into_iter()
        .find(|issuer| !issuer.is_empty())
        .map(|issuer| issuer.trim_end_matches('/').to_string())
}

fn page_part(config: &Config) -> Option<PagePart> {
    config.inject.salesforce.then(|| PagePart {
        name: NAME,
        settings: json!({}),
        script: format!(
            "function (tether, settings) {{\n{}\n}}",
            include_str!("page.js")
        ),
        // The deployment's bootstrap is the page's own (or in extra_html).
        scripts: Vec::new(),
    })
}

impl Salesforce {
    /// `GET {prefix}/salesforce/jwt`: `sub`, `iss`, `iat`, `exp`, header `kid`, as Salesforce's
    /// own key utility makes them; kept per user until shortly before expiry.
    async fn jwt(&self, call: Call<'_>) -> Answer {
        call.only(GET_HEAD)?;
        call.same_site()?;
        let user = call.user().await?;
        let issuer = match &self.issuer {
            Some(issuer) => issuer.clone(),
            None => issuer_from_host(&call.request, &self.prefix)?,
        };
        let body = match self.cache.get(&issuer, &user) {
            Some(body) => {
                self.tokens_cached.inc();
                body
            }
            None => self.sign(&issuer, &user)?,
        };
        let mut reply: Reply = private_json_bytes(StatusCode::OK, body);
        tag_user_key(&mut reply, self.user_keys.header_for(&user.user_id));
        Ok(reply)
    }

    fn sign(&self, issuer: &str, user: &Identity) -> Result<Bytes, Refusal> {
        let now = now_secs();
        let claims = json!({
            "sub": user.user_id,
            "iss": issuer,
            "iat": now,
            "exp": now + self.ttl.as_secs(),
        });
        let token = self.signer.sign(&claims).map_err(|err| {
            tracing::error!(error = %err, "signing a Salesforce JWT failed");
            Refusal::SigningFailed
        })?;
        self.tokens_signed.inc();
        let body = Bytes::from(json!({ "jwt": token }).to_string());
        self.cache.insert(issuer, user, body.clone());
        Ok(body)
    }
}

impl Vendor for Salesforce {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match call.path {
                "/jwt" => self.jwt(call).await,
                _ => Err(Refusal::NotFound),
            }
        })
    }

    fn page_part(&self) -> Option<PagePart> {
        self.page.clone()
    }

    fn forget_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        self.cache.forget(user);
        Box::pin(async {})
    }

    fn forget_erased<'a>(
        &'a self,
        erased: &'a HashSet<&'a str>,
        everything: bool,
    ) -> BoxFuture<'a, ()> {
        self.cache.forget_erased(erased, everything);
        Box::pin(async {})
    }
}
