//! `/readyz` for LiveChat: the agent token works and has `customers:own` (not ready otherwise),
//! and, with profile sync on, `customers:rw` (a warning otherwise: tokens are still minted, but
//! every profile update is a failed, billed call and agents see no name or e-mail). One
//! `GET /v2/info` answers both, re-checked every 30 s while it works and every second while it
//! does not, so readiness comes back as soon as LiveChat or the store does.

use super::accounts::{AccountsClient, Scopes};
use crate::health::ReadinessCheck;
use crate::io::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const READY_RECHECK: Duration = Duration::from_secs(30);
const NOT_READY_RECHECK: Duration = Duration::from_secs(1);

/// The agent token's scopes (None for the cookie grant), as last read.
type Answer = Result<Option<Scopes>, String>;

/// One shared reading of the agent's scopes.
pub struct AgentScopes {
    accounts: Arc<AccountsClient>,
    last: Mutex<Option<(Instant, Answer)>>,
}

impl AgentScopes {
    pub fn new(accounts: Arc<AccountsClient>) -> Arc<Self> {
        Arc::new(Self {
            accounts,
            last: Mutex::new(None),
        })
    }

    async fn read(&self) -> Answer {
        let cached = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, answer)| {
                let recheck = if answer.is_ok() {
                    READY_RECHECK
                } else {
                    NOT_READY_RECHECK
                };
                at.elapsed() < recheck
            })
            .map(|(_, answer)| answer.clone());
        if let Some(answer) = cached {
            return answer;
        }
        let answer = self
            .accounts
            .agent_scopes()
            .await
            .map_err(|err| err.to_string());
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), answer.clone()));
        answer
    }
}

/// Not ready without a working agent token that has `customers:own`.
pub struct AgentReady(pub Arc<AgentScopes>);

impl ReadinessCheck for AgentReady {
    fn name(&self) -> &'static str {
        "livechat"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let scopes = self.0.clone();
        Box::pin(async move {
            match scopes.read().await? {
                Some(scopes) if !scopes.has("customers:own") => Err(format!(
                    "the agent token lacks the customers:own scope (has: {}): add it to the app in \
                     LiveChat's Developer Console, then run `tether livechat authorize` again",
                    scopes.0
                )),
                _ => Ok(()),
            }
        })
    }
}

/// A warning while profile sync is on without `customers:rw`.
pub struct ProfilesReady(pub Arc<AgentScopes>);

impl ReadinessCheck for ProfilesReady {
    fn name(&self) -> &'static str {
        "livechat_profiles"
    }

    fn advisory(&self) -> bool {
        true
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let scopes = self.0.clone();
        Box::pin(async move {
            match scopes.read().await {
                Ok(Some(scopes)) if !scopes.has("customers:rw") => Err(format!(
                    "sync_customer_profile is on but the agent token lacks customers:rw (has: {}): \
                     agents see no name or e-mail; add the scope in the Developer Console and run \
                     `tether livechat authorize` again, or set sync_customer_profile = false",
                    scopes.0
                )),
                _ => Ok(()),
            }
        })
    }
}
