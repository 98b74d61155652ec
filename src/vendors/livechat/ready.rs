//! `/readyz` for LiveChat: the agent token works and has `customers:own`.

use super::accounts::AccountsClient;
use crate::health::ReadinessCheck;
use crate::io::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A working agent token is re-checked every 30 s; a failing one every second, so readiness
/// comes back as soon as what it waited for (LiveChat, the store) does.
const READY_RECHECK: Duration = Duration::from_secs(30);
const NOT_READY_RECHECK: Duration = Duration::from_secs(1);

/// The last answer and when it was given.
type LastCheck = Arc<Mutex<Option<(Instant, Result<(), String>)>>>;

pub struct AgentReady {
    accounts: Arc<AccountsClient>,
    last: LastCheck,
}

impl AgentReady {
    pub fn new(accounts: Arc<AccountsClient>) -> Self {
        Self {
            accounts,
            last: Arc::default(),
        }
    }
}

impl ReadinessCheck for AgentReady {
    fn name(&self) -> &'static str {
        "livechat"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let accounts = self.accounts.clone();
        let last = self.last.clone();
        Box::pin(async move {
            let cached = last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .filter(|(at, result)| {
                    let recheck = if result.is_ok() {
                        READY_RECHECK
                    } else {
                        NOT_READY_RECHECK
                    };
                    at.elapsed() < recheck
                })
                .map(|(_, result)| result.clone());
            if let Some(result) = cached {
                return result;
            }
            let result = accounts.check_agent().await.map_err(|err| err.to_string());
            *last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((Instant::now(), result.clone()));
            result
        })
    }
}
