//! LiveChat's Custom Identity Provider: the whole LiveChat flow lives here (the contract it
//! implements: `docs/vendors/livechat.md`).
//!
//! - this module: the vendor (its endpoints `GET|POST|DELETE {prefix}/livechat/token` and
//!   `GET {prefix}/livechat/identity-provider.js`, its page part, its readiness check);
//! - `tokens`: the user -> customer mapping and the customer token cache;
//! - `accounts`: the accounts server client (customer tokens, the agent OAuth token), with
//!   `answers` (reading its answers) and `accounts_error` (how a call failed);
//! - `agent`: the agent OAuth token, refreshed by one replica at a time and shared;
//! - `profile`: the customer's name and email kept in step with the app;
//! - `identity-provider.js`: the page's `custom_identity_provider`; `page.js`: the loader part.

pub mod accounts;
mod accounts_error;
mod agent;
pub mod answers;
pub mod authorize;
pub mod profile;
mod ready;
pub mod tokens;
mod unrecorded;

use super::{Call, PagePart, Setup, Vendor, GET_HEAD};
use crate::config::Config;
use crate::health::ReadinessCheck;
use crate::identity::Identity;
use crate::lifecycle::StartError;
use crate::refusal::Answer;
use crate::refusal::Refusal;
use crate::respond::{private_json_bytes, script};
use crate::user_key::UserKeys;
use accounts::{AccountsClient, AccountsError, CustomerToken};
use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, StatusCode};
use profile::ProfileSync;
use std::collections::HashSet;
use std::sync::Arc;
use tokens::{TokenCounters, TokenError, TokenService};

const NAME: &str = "livechat";
const TOKEN_METHODS: &[Method] = &[Method::GET, Method::POST, Method::DELETE];

/// LiveChat state shared by every core.
pub struct LiveChat {
    tokens: Arc<TokenService>,
    profiles: Option<Arc<ProfileSync>>,
    license_id: u64,
    organization_id: String,
    provider_script: bytes::Bytes,
    page: Option<PagePart>,
    user_keys: Arc<UserKeys>,
}

/// The vendor, when `[livechat]` is enabled.
pub fn build(setup: &mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError> {
    let config = setup.config;
    if !config.livechat.enabled {
        return Ok(None);
    }
    let store = setup.store()?;
    let accounts = AccountsClient::new(&config.livechat, store.clone())
        .map_err(|err| StartError::Fatal(err.to_string()))?;
    let counters = TokenCounters::register(setup.metrics(NAME));
    let tokens = TokenService::new(
        Arc::new(accounts),
        store,
        config.livechat.refresh_margin,
        config.livechat.token_cache_capacity,
        config.livechat.token_cache,
        counters,
    );
    let livechat = Arc::new(LiveChat::new(config, tokens, setup.user_keys()?));
    // Check the agent token and its scope at start-up, so a misconfiguration shows in the log
    // at once (and in /readyz until it is fixed).
    let accounts = livechat.tokens.accounts().clone();
    tokio::spawn(async move {
        match accounts.check_agent().await {
            Ok(()) => tracing::info!("LiveChat agent token works and has the customers:own scope"),
            Err(err) => {
                tracing::error!(error = %err, "LiveChat is not usable yet; token requests will fail")
            }
        }
    });
    Ok(Some(livechat))
}

impl LiveChat {
    fn new(config: &Config, tokens: TokenService, user_keys: Arc<UserKeys>) -> Self {
        let provider =
            include_str!("identity-provider.js").replace("{{PREFIX}}", &config.reserved.prefix);
        let inject = &config.inject;
        let page = inject.livechat.then(|| PagePart {
            name: NAME,
            settings: serde_json::json!({
                "license": config.livechat.license_id,
                "organization": config.livechat.organization_id,
                "group": inject.livechat_group,
                "widget": inject.livechat_widget_src,
            }),
            script: format!(
                "function (tether, settings) {{\n{provider}\n{}\n}}",
                include_str!("page.js")
            ),
            scripts: vec![inject.livechat_widget_src.clone()],
        });
        Self {
            tokens: Arc::new(tokens),
            profiles: config
                .livechat
                .sync_customer_profile
                .then(|| Arc::new(ProfileSync::new(config.livechat.token_cache_capacity))),
            license_id: config.livechat.license_id,
            organization_id: config.livechat.organization_id.clone(),
            provider_script: bytes::Bytes::from(provider),
            page,
            user_keys,
        }
    }

    /// The token endpoint, for the signed-in caller.
    async fn token(&self, call: Call<'_>) -> Answer {
        call.only(TOKEN_METHODS)?;
        call.same_site()?;
        let identity = call.user().await?;
        let user = identity.user_id.as_str();
        if call.method() == Method::DELETE {
            self.tokens.forget(user).await;
            return Ok(private_json_bytes(
                StatusCode::NO_CONTENT,
                bytes::Bytes::new(),
            ));
        }
        let fresh = call.method() == Method::POST;
        let token = self.tokens.token(user, fresh).await.map_err(|err| {
            self.tokens.counters.failures.inc();
            tracing::warn!(error = %err, "no LiveChat token");
            refusal_for(&err)
        })?;
        self.sync_profile(&identity, &token);
        let body = token.rendered.get_or_init(|| self.render(&token)).clone();
        let mut reply = private_json_bytes(StatusCode::OK, body);
        // The page keys its stored tokens by this (until the store answers, there is none).
        super::tag_user_key(&mut reply, self.page_key(user, &token));
        Ok(reply)
    }

    /// The user's page key, computed once per token (a token is one user's).
    fn page_key(&self, user: &str, token: &CustomerToken) -> Option<HeaderValue> {
        if let Some(key) = token.page_key.get() {
            return Some(key.clone());
        }
        let key = self.user_keys.header_for(user)?;
        Some(token.page_key.get_or_init(|| key).clone())
    }

    fn sync_profile(&self, identity: &Identity, token: &CustomerToken) {
        if let Some(profiles) = &self.profiles {
            profiles.update(self.tokens.accounts(), identity, token);
        }
    }

    /// The token object the widget expects (`docs/vendors/livechat.md`, "The token object").
    fn render(&self, token: &CustomerToken) -> bytes::Bytes {
        let mut body = serde_json::json!({
            "accessToken": token.access_token.expose(),
            "entityId": token.entity_id,
            "expiresIn": token.expires_in.saturating_mul(1000),
            "tokenType": token.token_type,
            "creationDate": token.issued_at_ms,
            "organizationId": token.organization_id.as_deref().unwrap_or(&self.organization_id),
        });
        // Organization-only accounts have no license: no `licenseId` at all, never 0.
        if self.license_id != 0 {
            body["licenseId"] = self.license_id.into();
        }
        bytes::Bytes::from(body.to_string())
    }
}

/// How a failed token request is answered.
fn refusal_for(err: &TokenError) -> Refusal {
    match err {
        TokenError::Accounts(AccountsError::Unavailable(_) | AccountsError::NotAuthorized) => {
            Refusal::VendorUnavailable(NAME)
        }
        TokenError::Store(_) => Refusal::VendorUnavailable(NAME),
        TokenError::Accounts(AccountsError::Rejected(_)) => Refusal::VendorRejected(NAME),
        TokenError::Accounts(AccountsError::UnknownCustomer(_)) | TokenError::CustomerMismatch => {
            Refusal::CustomerUnknown(NAME)
        }
    }
}

impl Vendor for LiveChat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            match call.path {
                "/token" => self.token(call).await,
                "/identity-provider.js" => {
                    call.only(GET_HEAD)?;
                    Ok(script(self.provider_script.clone(), "no-cache"))
                }
                _ => Err(Refusal::NotFound),
            }
        })
    }

    fn page_part(&self) -> Option<PagePart> {
        self.page.clone()
    }

    fn checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        let scopes = ready::AgentScopes::new(self.tokens.accounts().clone());
        let mut checks: Vec<Arc<dyn ReadinessCheck>> =
            vec![Arc::new(ready::AgentReady(scopes.clone()))];
        if self.profiles.is_some() {
            checks.push(Arc::new(ready::ProfilesReady(scopes)));
        }
        checks
    }

    fn forget_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.tokens.erase(user))
    }

    fn forget_erased<'a>(
        &'a self,
        erased: &'a HashSet<&'a str>,
        everything: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.tokens.drop_erased(erased, everything))
    }
}
