//! LiveChat end to end: Tether in-process over TLS, the app answering the identity probe, and the
//! sandbox accounts server standing in for LiveChat.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod durability;
mod grants;
mod onboarding;
mod tokens;

/// Every test above but the browser's, run again on the HTTP/1.1 engine that is not the default
/// (Tether's endpoints are served by either).
#[test]
fn every_livechat_test_passes_on_the_other_http1_engine() {
    support::the_other_engine_passes_too_skipping(
        "every_livechat_test_passes_on_the_other_http1_engine",
        &["browser::"],
    );
}

use support::backend::Backend;
use support::*;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

pub struct World {
    pub certs: TestCerts,
    pub app: Backend,
    pub sandbox: SandboxAccounts,
    pub tether: TestTether,
    pub client: reqwest::Client,
}

impl World {
    pub async fn start(configure: impl FnOnce(&mut tether::Config)) -> Self {
        Self::start_with_sandbox(SandboxConfig::default(), configure).await
    }

    pub async fn start_with_sandbox(
        sandbox: SandboxConfig,
        configure: impl FnOnce(&mut tether::Config),
    ) -> Self {
        let sandbox = SandboxAccounts::start(sandbox).await.unwrap();
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let mut config = config_for(app.addr, &certs);
        enable_livechat(&mut config, &sandbox);
        configure(&mut config);
        let checks_agent = config.livechat.grant == tether::config::LiveChatGrant::AgentToken;
        let tether = TestTether::start(config).await;
        if checks_agent {
            // Tether checks the agent token's scope at start-up; let that call happen first, so
            // faults a test injects meet the calls the test makes.
            wait_until(
                "the start-up scope check",
                std::time::Duration::from_secs(5),
                || async {
                    sandbox
                        .counters()
                        .info_calls
                        .load(std::sync::atomic::Ordering::Relaxed)
                        >= 1
                },
            )
            .await;
        }
        let client = certs.client();
        Self {
            certs,
            app,
            sandbox,
            tether,
            client,
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/.tether/livechat/token", self.tether.https)
    }

    /// A token request as `user` (a session cookie the app's probe recognises).
    pub async fn request(&self, method: reqwest::Method, user: Option<&str>) -> reqwest::Response {
        let mut request = self.client.request(method, self.token_url());
        if let Some(user) = user {
            request = request.header("cookie", format!("session={user}"));
        }
        request.send().await.unwrap()
    }

    pub async fn token(&self, method: reqwest::Method, user: &str) -> serde_json::Value {
        let response = self.request(method, Some(user)).await;
        assert_eq!(response.status(), 200, "token for {user}");
        response.json().await.unwrap()
    }
}
