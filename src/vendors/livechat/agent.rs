//! The agent OAuth token behind the agent_token grant, shared by every replica through the store.
//!
//! LiveChat may rotate the refresh token on every refresh and then refuses the old one, so two
//! replicas refreshing at once would lock one of them out. Replicas therefore take turns under a
//! lease in the store: the holder refreshes and stores the newest access and refresh token; the
//! others wait and adopt them. A replica keeps its own copy and reads the shared one only when
//! its copy is near expiry or was just refused.

use super::accounts_error::AccountsError;
use crate::clock::now_ms;
use crate::redact::Secret;
use crate::store::{Lease, Store, StoreError, Turn};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Store key of the shared state and name of the refresh lease.
const STATE_KEY: &str = "livechat.agent";
const REFRESH_LEASE: &str = "livechat.agent.refresh";
/// Refresh the agent token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How many configured refresh tokens the state remembers having seen.
const SEEN_CONFIGURED: usize = 8;

/// What a refresh returned.
pub struct Refreshed {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

/// The shared state, stored as JSON with a version.
#[derive(Clone, Serialize, Deserialize)]
struct AgentState {
    v: u8,
    access_token: Option<String>,
    /// Unix milliseconds.
    access_expires_ms: u64,
    refresh_token: String,
    /// SHA-256 of the configured refresh tokens this state has seen. A replica whose configured
    /// token is not among them was given a new one by the operator and starts from it; one whose
    /// token is among them (an older replica in a rolling update) adopts the shared state.
    configured: Vec<String>,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("access_expires_ms", &self.access_expires_ms)
            .finish_non_exhaustive()
    }
}

impl AgentState {
    /// The access token, if it has more than the margin left and is not the one just refused.
    fn usable(&self, refused: Option<&Secret>) -> Option<Secret> {
        let token = self.access_token.as_deref()?;
        let margin = REFRESH_MARGIN.as_millis() as u64;
        let fresh = self.access_expires_ms > now_ms().saturating_add(margin);
        (fresh && refused.is_none_or(|r| r.expose() != token))
            .then(|| Secret::new(token.to_string()))
    }
}

pub struct AgentTokens {
    store: Arc<dyn Store>,
    configured: Secret,
    /// This replica's copy of the shared state.
    local: tokio::sync::Mutex<Option<AgentState>>,
    /// The local copy is newer than the stored one (storing it failed); store it on next use.
    unsaved: AtomicBool,
    /// How long a refresh may hold the lease (longer than a refresh with all its retries).
    lease_ttl: Duration,
}

fn unavailable(err: StoreError) -> AccountsError {
    AccountsError::Unavailable(err.to_string())
}

impl AgentTokens {
    pub fn new(store: Arc<dyn Store>, configured: Secret, lease_ttl: Duration) -> Self {
        Self {
            store,
            configured,
            local: tokio::sync::Mutex::new(None),
            unsaved: AtomicBool::new(false),
            lease_ttl,
        }
    }

    /// The current access token. `refused` is a token LiveChat just refused: a newer one is
    /// adopted, or one is refreshed. `refresh` calls LiveChat with a refresh token.
    pub async fn access_token<F, Fut>(
        &self,
        refused: Option<&Secret>,
        refresh: F,
    ) -> Result<Secret, AccountsError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: Future<Output = Result<Refreshed, AccountsError>>,
    {
        let mut local = self.local.lock().await;
        if let Some(token) = local.as_ref().and_then(|state| state.usable(refused)) {
            if self.unsaved.load(Relaxed) {
                self.save(local.as_ref().expect("checked above")).await;
            }
            return Ok(token);
        }
        let shared = self.load().await.map_err(unavailable)?;
        if let Some(token) = shared.usable(refused) {
            *local = Some(shared);
            return Ok(token);
        }
        let turn = Lease::turn(
            &self.store,
            REFRESH_LEASE,
            self.lease_ttl,
            self.lease_ttl + Duration::from_secs(1),
            || async {
                let state = self.load().await?;
                Ok(state.usable(refused).map(|token| (state, token)))
            },
        )
        .await
        .map_err(unavailable)?;
        let lease = match turn {
            Turn::Done((state, token)) => {
                *local = Some(state);
                return Ok(token);
            }
            Turn::Mine(lease) => lease,
        };
        let result = self.refresh_now(refresh).await;
        lease.release().await;
        let state = result?;
        let token = Secret::new(state.access_token.clone().unwrap_or_default());
        *local = Some(state);
        Ok(token)
    }

    /// Refreshes with the newest refresh token (the lease is held) and stores the outcome.
    async fn refresh_now<F, Fut>(&self, refresh: F) -> Result<AgentState, AccountsError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: Future<Output = Result<Refreshed, AccountsError>>,
    {
        let mut state = self.load().await.map_err(unavailable)?;
        let answer = refresh(Secret::new(state.refresh_token.clone())).await?;
        state.access_token = Some(answer.access_token);
        state.access_expires_ms = now_ms().saturating_add(answer.expires_in.saturating_mul(1000));
        if let Some(rotated) = answer.refresh_token {
            state.refresh_token = rotated;
        }
        self.save(&state).await;
        Ok(state)
    }

    /// Stores the state. The new refresh token is already the only valid one, so a failure
    /// keeps it in this replica and retries on next use rather than throwing it away.
    async fn save(&self, state: &AgentState) {
        let json = serde_json::to_string(state).expect("the agent state serialises");
        match self.store.set_value(STATE_KEY, json).await {
            Ok(()) => self.unsaved.store(false, Relaxed),
            Err(err) => {
                self.unsaved.store(true, Relaxed);
                tracing::error!(error = %err, "could not store the rotated LiveChat agent token; will retry");
            }
        }
    }

    /// The shared state, or a new one from the configured refresh token when the operator
    /// configured one the state has not seen (or there is none yet).
    async fn load(&self) -> Result<AgentState, StoreError> {
        let fingerprint = hex_sha256(self.configured.expose());
        let stored = match self.store.value(STATE_KEY).await? {
            Some(json) => Some(serde_json::from_str::<AgentState>(&json).map_err(|_| {
                StoreError::other("the stored agent state is corrupt or of an unknown version")
            })?),
            None => None,
        };
        match stored {
            Some(state) if state.v == 1 && state.configured.contains(&fingerprint) => Ok(state),
            stored => {
                let mut configured = stored.map(|state| state.configured).unwrap_or_default();
                configured.push(fingerprint);
                let skip = configured.len().saturating_sub(SEEN_CONFIGURED);
                Ok(AgentState {
                    v: 1,
                    access_token: None,
                    access_expires_ms: 0,
                    refresh_token: self.configured.expose().to_string(),
                    configured: configured.split_off(skip),
                })
            }
        }
    }
}

fn hex_sha256(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
