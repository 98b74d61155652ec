//! The agent OAuth token behind the agent_token grant, shared by every replica through the store.
//!
//! LiveChat may rotate the refresh token on every refresh and then refuses the old one, so two
//! replicas refreshing at once would lock one of them out. Replicas therefore take turns under a
//! lease in the store: the holder refreshes and stores the newest access and refresh token; the
//! others wait and adopt them. A replica keeps its own copy, and reads the shared one when its
//! copy is near expiry, was just refused, or is a minute old (so a new authorization reaches
//! every replica within a minute).
//!
//! The first refresh token comes from `livechat.refresh_token`, or from `tether livechat
//! authorize`, which keeps what LiveChat granted in the same shared state (`keep_authorized`).

use super::accounts_error::AccountsError;
use crate::clock::now_ms;
use crate::redact::Secret;
use crate::store::{Lease, Store, StoreError, Turn};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Store key of the shared state and name of the refresh lease.
pub const STATE_KEY: &str = "livechat.agent";
const REFRESH_LEASE: &str = "livechat.agent.refresh";
/// Refresh the agent token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How many configured refresh tokens the state remembers having seen.
const SEEN_CONFIGURED: usize = 8;
/// How long a replica trusts its own copy before it looks at the shared state again.
const SHARED_RECHECK: Duration = Duration::from_secs(60);

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
    /// `livechat.refresh_token`, when the configuration names one.
    configured: Option<Secret>,
    /// This replica's copy of the shared state, and when it was read or written.
    local: tokio::sync::Mutex<Option<(AgentState, Instant)>>,
    /// The local copy is newer than the stored one (storing it failed); store it on next use.
    unsaved: AtomicBool,
    /// How long a refresh may hold the lease (longer than a refresh with all its retries).
    lease_ttl: Duration,
}

fn unavailable(err: StoreError) -> AccountsError {
    AccountsError::Unavailable(err.to_string())
}

impl AgentTokens {
    /// `configured` is `livechat.refresh_token` (empty: none, the store's is used).
    pub fn new(store: Arc<dyn Store>, configured: Secret, lease_ttl: Duration) -> Self {
        Self {
            store,
            configured: (!configured.expose().is_empty()).then_some(configured),
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
        if let Some((state, read_at)) = local.as_ref() {
            if let Some(token) = state.usable(refused) {
                if self.unsaved.load(Relaxed) {
                    self.save(state).await;
                    return Ok(token);
                }
                if read_at.elapsed() < SHARED_RECHECK {
                    return Ok(token);
                }
            }
        }
        let shared = self
            .load()
            .await
            .map_err(unavailable)?
            .ok_or(AccountsError::NotAuthorized)?;
        if let Some(token) = shared.usable(refused) {
            *local = Some((shared, Instant::now()));
            return Ok(token);
        }
        let turn = Lease::turn(
            &self.store,
            REFRESH_LEASE,
            self.lease_ttl,
            self.lease_ttl + Duration::from_secs(1),
            || async {
                let state = self.load().await?;
                Ok(state.and_then(|state| Some((state.usable(refused)?, state))))
            },
        )
        .await
        .map_err(unavailable)?;
        let lease = match turn {
            Turn::Done((token, state)) => {
                *local = Some((state, Instant::now()));
                return Ok(token);
            }
            Turn::Mine(lease) => lease,
        };
        let result = self.refresh_now(refresh).await;
        lease.release().await;
        let state = result?;
        let token = Secret::new(state.access_token.clone().unwrap_or_default());
        *local = Some((state, Instant::now()));
        Ok(token)
    }

    /// Refreshes with the newest refresh token (the lease is held) and stores the outcome.
    async fn refresh_now<F, Fut>(&self, refresh: F) -> Result<AgentState, AccountsError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: Future<Output = Result<Refreshed, AccountsError>>,
    {
        let mut state = self
            .load()
            .await
            .map_err(unavailable)?
            .ok_or(AccountsError::NotAuthorized)?;
        let answer = refresh(Secret::new(state.refresh_token.clone())).await?;
        state.take(answer);
        self.save(&state).await;
        Ok(state)
    }

    /// Stores the state. The new refresh token is already the only valid one, so a failure
    /// keeps it in this replica and retries on next use rather than throwing it away.
    async fn save(&self, state: &AgentState) {
        match save(&self.store, state).await {
            Ok(()) => self.unsaved.store(false, Relaxed),
            Err(err) => {
                self.unsaved.store(true, Relaxed);
                tracing::error!(error = %err, "could not store the rotated LiveChat agent token; will retry");
            }
        }
    }

    /// The shared state; a new one from the configured refresh token when the operator
    /// configured one the state has not seen (or there is none yet); None when there is
    /// neither.
    async fn load(&self) -> Result<Option<AgentState>, StoreError> {
        let stored = load(&self.store).await?;
        let Some(configured) = &self.configured else {
            return Ok(stored);
        };
        let fingerprint = hex_sha256(configured.expose());
        match stored {
            Some(state) if state.configured.contains(&fingerprint) => Ok(Some(state)),
            stored => {
                let seen = stored.map(|state| state.configured).unwrap_or_default();
                Ok(Some(AgentState {
                    v: 1,
                    access_token: None,
                    access_expires_ms: 0,
                    refresh_token: configured.expose().to_string(),
                    configured: remember(seen, fingerprint),
                }))
            }
        }
    }
}

impl AgentState {
    /// Adopts what LiveChat answered a grant with.
    fn take(&mut self, answer: Refreshed) {
        self.access_token = Some(answer.access_token);
        self.access_expires_ms = now_ms().saturating_add(answer.expires_in.saturating_mul(1000));
        if let Some(rotated) = answer.refresh_token {
            self.refresh_token = rotated;
        }
    }
}

/// Keeps what an authorization-code grant returned as the shared state every replica uses from
/// now on (`tether livechat authorize`), under the refresh lease so no replica's refresh
/// overwrites it.
pub async fn keep_authorized(
    store: &Arc<dyn Store>,
    configured: &Secret,
    granted: Refreshed,
    lease_ttl: Duration,
) -> Result<(), StoreError> {
    let turn = Lease::turn(store, REFRESH_LEASE, lease_ttl, lease_ttl * 2, || async {
        Ok(None::<()>)
    })
    .await?;
    let Turn::Mine(lease) = turn else {
        unreachable!("nothing else finishes this turn")
    };
    let previous = store.value(STATE_KEY).await;
    let saved = match previous {
        Ok(previous) => match authorized_state(previous.as_deref(), configured, granted) {
            Ok(json) => store.set_value(STATE_KEY, json).await,
            Err(why) => Err(StoreError::other(why)),
        },
        Err(err) => Err(err),
    };
    lease.release().await;
    saved
}

/// The shared state after an authorization, as stored under `STATE_KEY`: the granted tokens,
/// and `configured` (the configuration's refresh token, if any) marked as seen, so this
/// authorization wins over the older token in the file. `previous` is the stored state.
pub fn authorized_state(
    previous: Option<&str>,
    configured: &Secret,
    granted: Refreshed,
) -> Result<String, &'static str> {
    let refresh_token = granted
        .refresh_token
        .clone()
        .ok_or("LiveChat granted no refresh token (is the app a server-side app?)")?;
    // A corrupt or unknown previous state is replaced.
    let seen = previous
        .and_then(|json| serde_json::from_str::<AgentState>(json).ok())
        .map(|state| state.configured)
        .unwrap_or_default();
    let seen = match configured.expose() {
        "" => seen,
        token => remember(seen, hex_sha256(token)),
    };
    let mut state = AgentState {
        v: 1,
        access_token: None,
        access_expires_ms: 0,
        refresh_token,
        configured: seen,
    };
    state.take(granted);
    Ok(serde_json::to_string(&state).expect("the agent state serialises"))
}

async fn load(store: &Arc<dyn Store>) -> Result<Option<AgentState>, StoreError> {
    let Some(json) = store.value(STATE_KEY).await? else {
        return Ok(None);
    };
    match serde_json::from_str::<AgentState>(&json) {
        Ok(state) if state.v == 1 => Ok(Some(state)),
        _ => Err(StoreError::other(
            "the stored agent state is corrupt or of an unknown version",
        )),
    }
}

async fn save(store: &Arc<dyn Store>, state: &AgentState) -> Result<(), StoreError> {
    let json = serde_json::to_string(state).expect("the agent state serialises");
    store.set_value(STATE_KEY, json).await
}

/// Adds a configured token's fingerprint, keeping the newest few.
fn remember(mut seen: Vec<String>, fingerprint: String) -> Vec<String> {
    if !seen.contains(&fingerprint) {
        seen.push(fingerprint);
    }
    let skip = seen.len().saturating_sub(SEEN_CONFIGURED);
    seen.split_off(skip)
}

fn hex_sha256(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    crate::hex::lower(digest.as_ref())
}
