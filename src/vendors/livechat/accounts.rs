//! LiveChat's accounts server: customer tokens (agent_token and cookie grants) and the agent OAuth
//! token behind the agent_token grant. Error bodies are LiveChat's own shape
//! (`oauth_exception` / `identity_exception`, whatever the status), read in `answers`.
//!
//! Every call goes through `call` (retries, with jittered backoff, what is temporary: network
//! errors, 5xx, 429, `server_error`/`temporarily_unavailable`); calls made as the agent go
//! through `as_agent`, where **any** 401 refreshes the agent token once and calls again. LiveChat
//! answers a dead agent token (revoked, or the oldest of 25 revoked for it) with the same
//! `identity_exception` as an unknown customer, so only a refusal that survives a fresh agent
//! token says the customer is unknown (`docs/vendors/livechat.md`, "Errors").

pub use super::accounts_error::AccountsError;
use super::agent::{AgentTokens, Refreshed};
use super::answers::{
    classify, cookie_secret, AgentTokenBody, Attempt, CustomerTokenBody, ExceptionBody, InfoBody,
};
use crate::clock::now_ms;
use crate::config::{Grant, LiveChatConfig};
use crate::redact::Secret;
use crate::store::{CustomerRecord, Store};
use bytes::Bytes;
use reqwest::{RequestBuilder, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// A customer token as issued by the accounts server.
#[derive(Clone)]
pub struct CustomerToken {
    pub access_token: Secret,
    pub entity_id: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    pub token_type: String,
    pub organization_id: Option<String>,
    /// When Tether received it, Unix milliseconds (the widget's `creationDate`).
    pub issued_at_ms: u64,
    /// Cookie grant: the `__lc_cst` to store for next time.
    pub cookie_secret: Option<String>,
    /// The widget's JSON form, rendered once on first use (it never changes for a token).
    pub rendered: std::sync::OnceLock<bytes::Bytes>,
    /// Its user's page key (`x-tether-user-key`), kept once known: a token is one user's, and
    /// the key is an HMAC worth not computing on every request.
    pub page_key: std::sync::OnceLock<http::HeaderValue>,
}

impl std::fmt::Debug for CustomerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerToken")
            .field("access_token", &self.access_token)
            .field("entity_id", &self.entity_id)
            .field("expires_in", &self.expires_in)
            .field("issued_at_ms", &self.issued_at_ms)
            .finish_non_exhaustive()
    }
}

/// The scopes the agent token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(pub String);

impl Scopes {
    pub fn has(&self, scope: &str) -> bool {
        self.0.split(',').any(|s| s.trim() == scope)
    }
}

/// One answer, read whole (they are small).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) bytes: Bytes,
    pub(crate) exception: ExceptionBody,
    /// The `__lc_cst` the answer set (cookie grant).
    cookie_secret: Option<String>,
}

impl Answer {
    /// The body as `T` on success; a refusal otherwise (temporary failures were retried).
    pub(crate) fn into_result<T: serde::de::DeserializeOwned>(self) -> Result<T, AccountsError> {
        match classify(self.status, &self.bytes, &self.exception) {
            Attempt::Done(body) => Ok(body),
            Attempt::Fail(err) => Err(err),
            Attempt::Retry(why) => Err(AccountsError::Unavailable(why)),
        }
    }
}

pub struct AccountsClient {
    http: reqwest::Client,
    config: LiveChatConfig,
    /// The agent OAuth token (agent_token grant), shared with the other replicas.
    agent: AgentTokens,
}

impl AccountsClient {
    /// Builds the client. The store holds the newest agent token (it rotates); it is read on first
    /// use, so Tether starts while a shared store is unreachable.
    pub fn new(config: &LiveChatConfig, store: Arc<dyn Store>) -> Result<Self, AccountsError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| AccountsError::Rejected(format!("building the HTTP client: {err}")))?;
        Ok(Self {
            http,
            config: config.clone(),
            agent: AgentTokens::new(
                store,
                configured_refresh_token(config),
                longest_call(config),
            ),
        })
    }

    /// The longest one accounts call can take with all its attempts and backoffs: how long a
    /// replica may hold a lease while it calls.
    pub fn longest_call(&self) -> Duration {
        longest_call(&self.config)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn config(&self) -> &LiveChatConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.accounts_url.trim_end_matches('/'))
    }

    /// A customer token: refreshes `existing`'s customer, or creates a new customer when None.
    pub async fn customer_token(
        &self,
        existing: Option<&CustomerRecord>,
    ) -> Result<CustomerToken, AccountsError> {
        match self.config.grant() {
            Grant::AgentToken { .. } => self.agent_grant(existing).await,
            Grant::Cookie {
                organization_id,
                redirect_uri,
            } => {
                self.cookie_grant(existing, organization_id, redirect_uri)
                    .await
            }
        }
    }

    async fn agent_grant(
        &self,
        existing: Option<&CustomerRecord>,
    ) -> Result<CustomerToken, AccountsError> {
        let mut body = serde_json::json!({
            "grant_type": "agent_token",
            "client_id": self.config.client_id,
            "response_type": "token",
        });
        if let Some(record) = existing {
            body["entity_id"] = record.entity_id.clone().into();
        }
        let url = self.url("/v2/customer/token");
        let answer = self
            .as_agent(|agent| self.http.post(&url).bearer_auth(agent.expose()).json(&body))
            .await?;
        // After a fresh agent token, an identity refusal is about the customer on record.
        if answer.exception.identity_exception.is_some() && existing.is_some() {
            return Err(AccountsError::UnknownCustomer(answer.exception.describe()));
        }
        let body: CustomerTokenBody = answer.into_result()?;
        Ok(token_from(body, None))
    }

    async fn cookie_grant(
        &self,
        existing: Option<&CustomerRecord>,
        organization_id: &str,
        redirect_uri: &str,
    ) -> Result<CustomerToken, AccountsError> {
        let body = serde_json::json!({
            "grant_type": "cookie",
            "client_id": self.config.client_id,
            "response_type": "token",
            "organization_id": organization_id,
            "redirect_uri": redirect_uri,
        });
        let cookies = existing.and_then(|record| {
            let secret = record.cookie_secret.as_ref()?;
            Some(format!(
                "__lc_cid={}; __lc_cst={}",
                record.entity_id, secret
            ))
        });
        let url = self.url("/v2/customer/token");
        let answer = self
            .call(|| {
                let request = self.http.post(&url).json(&body);
                match &cookies {
                    Some(cookies) => request.header(reqwest::header::COOKIE, cookies),
                    None => request,
                }
            })
            .await?;
        if answer.exception.identity_exception.is_some() && existing.is_some() {
            return Err(AccountsError::UnknownCustomer(answer.exception.describe()));
        }
        // Store the newest secret after every call; keep the old one if none was sent.
        let secret = answer
            .cookie_secret
            .clone()
            .or_else(|| existing.and_then(|record| record.cookie_secret.clone()));
        let body: CustomerTokenBody = answer.into_result()?;
        Ok(token_from(body, secret))
    }

    /// The current agent access token, refreshing it when it is close to expiry or when `stale`
    /// (a token the accounts server just refused) is still the current one.
    pub(crate) async fn agent_token(
        &self,
        stale: Option<&Secret>,
    ) -> Result<Secret, AccountsError> {
        self.agent
            .access_token(stale, |refresh| self.refresh_agent(refresh))
            .await
    }

    /// One refresh_token grant, with retries.
    async fn refresh_agent(&self, refresh: Secret) -> Result<Refreshed, AccountsError> {
        let Grant::AgentToken { client_secret, .. } = self.config.grant() else {
            return Err(AccountsError::Rejected(
                "the cookie grant has no agent token".into(),
            ));
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", client_secret.expose()),
        ];
        let url = self.url("/v2/token");
        let body: AgentTokenBody = self
            .call(|| self.http.post(&url).form(&form))
            .await?
            .into_result()?;
        Ok(Refreshed {
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_in: body.expires_in,
        })
    }

    /// The agent token's scopes (`GET /v2/info`); the cookie grant has none to check.
    pub async fn agent_scopes(&self) -> Result<Option<Scopes>, AccountsError> {
        if let Grant::Cookie { .. } = self.config.grant() {
            return Ok(None);
        }
        let url = self.url("/v2/info");
        let info: InfoBody = self
            .as_agent(|agent| self.http.get(&url).bearer_auth(agent.expose()))
            .await?
            .into_result()?;
        Ok(Some(Scopes(info.scope.unwrap_or_default())))
    }

    /// Readiness: the agent token works and carries `customers:own` (agent_token grant only).
    pub async fn check_agent(&self) -> Result<(), AccountsError> {
        match self.agent_scopes().await? {
            Some(scopes) if !scopes.has("customers:own") => Err(AccountsError::Rejected(format!(
                "the agent token lacks the customers:own scope (has: {})",
                scopes.0
            ))),
            _ => Ok(()),
        }
    }

    /// Calls as the agent (see the module's documentation): a 401 refreshes the token once.
    pub(crate) async fn as_agent(
        &self,
        send: impl Fn(&Secret) -> RequestBuilder,
    ) -> Result<Answer, AccountsError> {
        let agent = self.agent_token(None).await?;
        let answer = self.call(|| send(&agent)).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let fresh = self.agent_token(Some(&agent)).await?;
        self.call(|| send(&fresh)).await
    }

    /// Sends `request()` until an answer that is not temporary, up to `max_attempts` times with
    /// jittered exponential backoff.
    pub(crate) async fn call(
        &self,
        request: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, AccountsError> {
        let mut last = String::new();
        for n in 0..self.config.max_attempts {
            if n > 0 {
                backoff(n).await;
            }
            match send(request()).await {
                Ok(answer) => match classify::<serde::de::IgnoredAny>(
                    answer.status,
                    &answer.bytes,
                    &answer.exception,
                ) {
                    Attempt::Retry(why) => last = why,
                    _ => return Ok(answer),
                },
                Err(why) => last = why,
            }
        }
        Err(AccountsError::Unavailable(last))
    }
}

/// One request, read whole; Err is a network failure (worth a retry).
pub(crate) async fn send(request: RequestBuilder) -> Result<Answer, String> {
    let response = request.send().await.map_err(|err| network_error(&err))?;
    let status = response.status();
    let cookie_secret = cookie_secret(
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|value| value.as_bytes()),
    );
    let bytes = response.bytes().await.map_err(|err| network_error(&err))?;
    let exception: ExceptionBody = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(Answer {
        status,
        bytes,
        exception,
        cookie_secret,
    })
}

/// The refresh token the operator configured (the agent_token grant only).
fn configured_refresh_token(config: &LiveChatConfig) -> Secret {
    match config.grant() {
        Grant::AgentToken { refresh_token, .. } => refresh_token.clone(),
        Grant::Cookie { .. } => Secret::default(),
    }
}

fn longest_call(config: &LiveChatConfig) -> Duration {
    let backoffs: u64 = (1..config.max_attempts)
        .map(|n| 200u64 << (n - 1).min(6))
        .sum();
    // A refresh and a second try after a 401, and a margin for the store write that follows.
    config.request_timeout * config.max_attempts * 2
        + Duration::from_millis(backoffs * 2)
        + Duration::from_secs(2)
}

/// Jittered exponential backoff before retry `n` (1-based): 100-200 ms, 200-400 ms, ...
async fn backoff(n: u32) {
    let base = 100u64 << (n - 1).min(6);
    let jitter = crate::random::up_to(base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

fn network_error(err: &reqwest::Error) -> String {
    // reqwest's message names the URL, never credentials; the body is not included.
    crate::io::ErrorChain(err).to_string()
}

fn token_from(body: CustomerTokenBody, cookie_secret: Option<String>) -> CustomerToken {
    CustomerToken {
        access_token: Secret::new(body.access_token),
        entity_id: body.entity_id,
        expires_in: body.expires_in,
        token_type: body.token_type,
        organization_id: body.organization_id,
        issued_at_ms: now_ms(),
        cookie_secret,
        rendered: std::sync::OnceLock::new(),
        page_key: std::sync::OnceLock::new(),
    }
}
