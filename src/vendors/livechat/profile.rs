//! Keeps the LiveChat customer's name and email in step with what the app says about the user, so
//! agents see verified identity data. Runs off the request path and only when a value changed.
//!
//! agent_token grant: Agent Chat API `update_customer` with the agent token; cookie grant: Customer
//! Chat API `update_customer` with the customer's own token (`docs/vendors/livechat.md`, "What
//! agents see").

use super::accounts::{AccountsClient, CustomerToken};
use crate::config::Grant;
use crate::identity::Identity;
use dashmap::DashMap;
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq)]
struct Profile {
    name: Option<String>,
    email: Option<String>,
}

/// The profile last sent per user (in memory: after a restart each user is synced once more).
#[derive(Default)]
pub struct ProfileSync {
    sent: DashMap<String, Profile>,
}

impl ProfileSync {
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
        // Recorded before sending so concurrent requests do not send it twice; undone on failure.
        if self.sent.insert(user.clone(), profile.clone()).as_ref() == Some(&profile) {
            return;
        }
        let this = self.clone();
        let accounts = accounts.clone();
        let token = token.clone();
        tokio::spawn(async move {
            if let Err(err) = send(&accounts, &token, &profile).await {
                tracing::warn!(error = %err, "customer profile update failed; will retry on the next token request");
                this.sent.remove_if(&user, |_, sent| *sent == profile);
            }
        });
    }
}

async fn send(
    accounts: &AccountsClient,
    token: &CustomerToken,
    profile: &Profile,
) -> Result<(), String> {
    let config = accounts.config();
    let base = config.api_url.trim_end_matches('/');
    let mut body = serde_json::Map::new();
    if let Some(name) = &profile.name {
        body.insert("name".into(), name.clone().into());
    }
    if let Some(email) = &profile.email {
        body.insert("email".into(), email.clone().into());
    }
    let request = match config.grant() {
        Grant::AgentToken { .. } => {
            body.insert("id".into(), token.entity_id.clone().into());
            let agent = accounts
                .agent_token(None)
                .await
                .map_err(|err| err.to_string())?;
            accounts
                .http()
                .post(format!("{base}/v3.6/agent/action/update_customer"))
                .bearer_auth(agent.expose())
        }
        Grant::Cookie {
            organization_id, ..
        } => accounts
            .http()
            .post(format!("{base}/v3.6/customer/action/update_customer"))
            .query(&[("organization_id", organization_id)])
            .bearer_auth(token.access_token.expose()),
    };
    let response = request
        .json(&body)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    // The Chat API's error shape: {"error": {"type": ..., "message": ...}}.
    let error: serde_json::Value = response.json().await.unwrap_or_default();
    Err(format!(
        "HTTP {status}: {} {}",
        error["error"]["type"].as_str().unwrap_or("unknown"),
        error["error"]["message"].as_str().unwrap_or("")
    ))
}
