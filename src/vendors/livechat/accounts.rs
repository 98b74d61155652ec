//! LiveChat's accounts server: customer tokens (agent_token and cookie grants) and the agent OAuth
//! token behind the agent_token grant. Error bodies are LiveChat's own shape
//! (`oauth_exception` / `identity_exception`, whatever the status), parsed into `AccountsError`.

pub use super::accounts_error::AccountsError;
use super::agent::{AgentTokens, Refreshed};
use super::answers::{
    classify, cookie_secret, AgentTokenBody, Attempt, CustomerTokenBody, ExceptionBody, InfoBody,
};
use crate::clock::now_ms;
use crate::config::{Grant, LiveChatConfig};
use crate::redact::Secret;
use crate::store::{CustomerRecord, Store};
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
        let mut agent = self.agent_token(None).await?;
        let mut refreshed = false;
        let mut last = String::new();
        let mut n = 0;
        while n < self.config.max_attempts {
            if n > 0 {
                backoff(n).await;
            }
            n += 1;
            let response = self
                .http
                .post(self.url("/v2/customer/token"))
                .bearer_auth(agent.expose())
                .json(&body)
                .send()
                .await;
            let response = match response {
                Ok(response) => response,
                Err(err) => {
                    last = network_error(&err);
                    continue;
                }
            };
            let status = response.status();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(err) => {
                    last = network_error(&err);
                    continue;
                }
            };
            let exception: ExceptionBody = serde_json::from_slice(&bytes).unwrap_or_default();
            if status == 401 && exception.identity_exception.is_none() && !refreshed {
                // The agent token was revoked or expired early: refresh it once and try again
                // (not counted as an attempt).
                refreshed = true;
                agent = self.agent_token(Some(&agent)).await?;
                n -= 1;
                continue;
            }
            if exception.identity_exception.is_some() && existing.is_some() {
                return Err(AccountsError::UnknownCustomer(exception.describe()));
            }
            match classify(status, &bytes, &exception) {
                Attempt::Done(body) => return Ok(token_from(body, None)),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(why) => last = why,
            }
        }
        Err(AccountsError::Unavailable(last))
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
        let (body, cookies) = (&body, &cookies);
        self.with_retries(|| async move {
            let mut request = self.http.post(self.url("/v2/customer/token")).json(body);
            if let Some(cookies) = &cookies {
                request = request.header(reqwest::header::COOKIE, cookies);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => return Attempt::Retry(network_error(&err)),
            };
            let status = response.status();
            let secret = cookie_secret(
                response
                    .headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .map(|value| value.as_bytes()),
            );
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(err) => return Attempt::Retry(network_error(&err)),
            };
            let exception: ExceptionBody = serde_json::from_slice(&bytes).unwrap_or_default();
            if exception.identity_exception.is_some() && existing.is_some() {
                return Attempt::Fail(AccountsError::UnknownCustomer(exception.describe()));
            }
            let kept_secret = existing.and_then(|record| record.cookie_secret.clone());
            classify(status, &bytes, &exception).map(|body: CustomerTokenBody| {
                // Store the newest secret after every call; keep the old one if none was sent.
                token_from(body, secret.or(kept_secret))
            })
        })
        .await
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
        let form = &form;
        let body: AgentTokenBody = self
            .with_retries(|| async move {
                let response = match self
                    .http
                    .post(self.url("/v2/token"))
                    .form(form)
                    .send()
                    .await
                {
                    Ok(response) => response,
                    Err(err) => return Attempt::Retry(network_error(&err)),
                };
                let status = response.status();
                let bytes = match response.bytes().await {
                    Ok(bytes) => bytes,
                    Err(err) => return Attempt::Retry(network_error(&err)),
                };
                let exception: ExceptionBody = serde_json::from_slice(&bytes).unwrap_or_default();
                classify(status, &bytes, &exception)
            })
            .await?;
        Ok(Refreshed {
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_in: body.expires_in,
        })
    }

    /// Readiness: the agent token works and carries `customers:own` (agent_token grant only).
    pub async fn check_agent(&self) -> Result<(), AccountsError> {
        if let Grant::Cookie { .. } = self.config.grant() {
            return Ok(());
        }
        let token = self.agent_token(None).await?;
        let token = &token;
        let info: InfoBody = self
            .with_retries(|| async move {
                let response = match self
                    .http
                    .get(self.url("/v2/info"))
                    .bearer_auth(token.expose())
                    .send()
                    .await
                {
                    Ok(response) => response,
                    Err(err) => return Attempt::Retry(network_error(&err)),
                };
                let status = response.status();
                let bytes = match response.bytes().await {
                    Ok(bytes) => bytes,
                    Err(err) => return Attempt::Retry(network_error(&err)),
                };
                let exception: ExceptionBody = serde_json::from_slice(&bytes).unwrap_or_default();
                classify(status, &bytes, &exception)
            })
            .await?;
        let scope = info.scope.unwrap_or_default();
        if scope.split(',').any(|s| s.trim() == "customers:own") {
            Ok(())
        } else {
            Err(AccountsError::Rejected(format!(
                "the agent token lacks the customers:own scope (has: {scope})"
            )))
        }
    }

    /// Runs `attempt` up to `max_attempts` times, with jittered exponential backoff between
    /// retryable failures.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, AccountsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let mut last = String::new();
        for n in 0..self.config.max_attempts {
            if n > 0 {
                backoff(n).await;
            }
            match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(why) => last = why,
            }
        }
        Err(AccountsError::Unavailable(last))
    }
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
    // And a margin for the store write that follows the call.
    config.request_timeout * config.max_attempts
        + Duration::from_millis(backoffs)
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
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
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
    }
}
