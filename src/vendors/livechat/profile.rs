//! Keeps the LiveChat customer's name and email in step with what the app says about the user, so
//! agents see verified identity data. Runs off the request path and only when a value changed.
//!
//! agent_token grant: Agent Chat API `update_customer` with the agent token (it needs the scope
//! `customers:rw`, which minting tokens does not); cookie grant: Customer Chat API
//! `update_customer` with the customer's own token (`docs/vendors/livechat.md`, "What agents
//! see"). A license in another region answers `misdirected_request` naming it: the call is made
//! once more on the regional host, which is remembered. A user whose update failed is not tried
//! again before a back-off (one minute, doubling to an hour): every failed call is billed and
//! logged, and a missing scope fails the same way every time.

use super::accounts::{AccountsClient, CustomerToken};
use crate::config::Grant;
use crate::identity::Identity;
use moka::sync::Cache;
use reqwest::StatusCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone, PartialEq, Eq)]
struct Profile {
    name: Option<String>,
    email: Option<String>,
}

/// After a failure, when to try the user again.
#[derive(Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const LONGEST_BACKOFF: Duration = Duration::from_secs(3600);

/// The profile last sent per user, and the users backing off (bounded: after an eviction a user
/// is synced once more).
pub struct ProfileSync {
    sent: Cache<String, Profile>,
    backing_off: Cache<String, Backoff>,
    /// The regional Chat API host, once LiveChat named one.
    region_url: RwLock<Option<String>>,
}

/// Why an update failed.
pub enum UpdateError {
    /// LiveChat says the license lives in another region.
    Misdirected(String),
    Failed(String),
}

impl ProfileSync {
    pub fn new(capacity: u64) -> Self {
        Self {
            sent: Cache::new(capacity),
            backing_off: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(LONGEST_BACKOFF)
                .build(),
            region_url: RwLock::new(None),
        }
    }

    /// Sends the user's name and email to LiveChat in the background if they changed.
    pub fn update(
        self: &Arc<Self>,
        accounts: &Arc<AccountsClient>,
        identity: &Identity,
        token: &CustomerToken,
    ) {
        let profile = Profile {
            name: identity.name.clone(),
            email: identity.email.clone(),
        };
        if profile.name.is_none() && profile.email.is_none() {
            return;
        }
        let user = identity.user_id.clone();
        if self.sent.get(&user).as_ref() == Some(&profile) {
            return;
        }
        let backing_off = self.backing_off.get(&user);
        if backing_off.is_some_and(|b| b.until > Instant::now()) {
            return;
        }
        // Recorded before sending so concurrent requests do not send it twice; undone on failure.
        self.sent.insert(user.clone(), profile.clone());
        let this = self.clone();
        let accounts = accounts.clone();
        let token = token.clone();
        tokio::spawn(async move {
            match this.send(&accounts, &token, &profile).await {
                Ok(()) => this.backing_off.invalidate(&user),
                Err(why) => {
                    let failures = backing_off.map_or(0, |b| b.failures) + 1;
                    let wait = FIRST_BACKOFF
                        .saturating_mul(1 << (failures - 1).min(6))
                        .min(LONGEST_BACKOFF);
                    tracing::warn!(error = %why, retry_in = ?wait, "customer profile update failed");
                    this.sent.invalidate(&user);
                    this.backing_off.insert(
                        user,
                        Backoff {
                            failures,
                            until: Instant::now() + wait,
                        },
                    );
                }
            }
        });
    }

    /// One update, once more on the regional host when LiveChat names one.
    async fn send(
        &self,
        accounts: &AccountsClient,
        token: &CustomerToken,
        profile: &Profile,
    ) -> Result<(), String> {
        let base = self
            .region_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let base = base.unwrap_or_else(|| accounts.config().api_url.clone());
        match send(accounts, &base, token, profile).await {
            Err(UpdateError::Misdirected(region)) => {
                let regional = accounts.config().region_url(&region);
                tracing::info!(%region, host = %regional, "LiveChat: this license's Chat API is regional; using its host from now on");
                *self.region_url.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(regional.clone());
                send(accounts, &regional, token, profile)
                    .await
                    .map_err(|err| match err {
                        UpdateError::Misdirected(again) => {
                            format!("misdirected again, to region {again}")
                        }
                        UpdateError::Failed(why) => why,
                    })
            }
            Err(UpdateError::Failed(why)) => Err(why),
            Ok(()) => Ok(()),
        }
    }
}

async fn send(
    accounts: &AccountsClient,
    base: &str,
    token: &CustomerToken,
    profile: &Profile,
) -> Result<(), UpdateError> {
    let config = accounts.config();
    let base = base.trim_end_matches('/');
    let mut body = serde_json::Map::new();
    if let Some(name) = &profile.name {
        body.insert("name".into(), name.clone().into());
    }
    if let Some(email) = &profile.email {
        body.insert("email".into(), email.clone().into());
    }
    let answer = match config.grant() {
        Grant::AgentToken { .. } => {
            body.insert("id".into(), token.entity_id.clone().into());
            let url = format!("{base}/v3.6/agent/action/update_customer");
            accounts
                .as_agent(|agent| {
                    accounts
                        .http()
                        .post(&url)
                        .bearer_auth(agent.expose())
                        .json(&body)
                })
                .await
        }
        Grant::Cookie {
            organization_id, ..
        } => {
            let url = format!("{base}/v3.6/customer/action/update_customer");
            accounts
                .call(|| {
                    accounts
                        .http()
                        .post(&url)
                        .query(&[("organization_id", organization_id)])
                        .bearer_auth(token.access_token.expose())
                        .json(&body)
                })
                .await
        }
    };
    let answer = answer.map_err(|err| UpdateError::Failed(err.to_string()))?;
    if answer.status.is_success() {
        return Ok(());
    }
    // The Chat API's error shape: {"error": {"type": ..., "message": ..., "data": ...}}.
    let error: serde_json::Value = serde_json::from_slice(&answer.bytes).unwrap_or_default();
    let kind = error["error"]["type"].as_str().unwrap_or("unknown");
    if kind == "misdirected_request" || answer.status == StatusCode::MISDIRECTED_REQUEST {
        if let Some(region) = error["error"]["data"]["region"].as_str() {
            return Err(UpdateError::Misdirected(region.to_string()));
        }
    }
    Err(UpdateError::Failed(format!(
        "HTTP {}: {kind} {}",
        answer.status,
        error["error"]["message"].as_str().unwrap_or("")
    )))
}
