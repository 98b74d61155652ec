//! Several replicas sharing one Redis: Tether instances in-process over TLS, one real
//! redis-server (started by the test from PATH), one sandbox accounts server and one app.

#[path = "../support/mod.rs"]
mod support;

mod deployment;
mod failures;
mod sharing;

use std::time::Duration;
use support::backend::Backend;
use support::redis_server::RedisServer;
use support::*;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

pub const CLIENT_ID: &str = "liveperson-client";
pub const CLIENT_SECRET: &str = "liveperson-secret";
pub const ISSUER: &str = "https://brand.example/.tether";

/// Identity from a trusted gateway's header instead of a probe to the app: for bursts of hundreds
/// of simultaneous requests, which the test app (sharing the test's two cores with the clients)
/// cannot accept as fast as they come.
pub fn trust_gateway(config: &mut tether::Config) {
    config.identity.source = tether::config::IdentitySource::Header;
    config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

pub struct Cluster {
    pub redis: RedisServer,
    pub sandbox: SandboxAccounts,
    pub app: Backend,
    pub certs: TestCerts,
    pub replicas: Vec<TestTether>,
    pub client: reqwest::Client,
    keys: tempfile::TempDir,
}

impl Cluster {
    /// `n` replicas on one Redis (None: redis-server is missing and the test is skipped).
    pub async fn start(n: usize, configure: impl Fn(&mut tether::Config)) -> Option<Self> {
        let redis = RedisServer::start().await?;
        let sandbox = SandboxAccounts::start(SandboxConfig::default())
            .await
            .unwrap();
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let keys = tempfile::tempdir().unwrap();
        let signing_key = keys.path().join("signing.pem");
        std::fs::write(
            &signing_key,
            tether::testing::signing::generate_pem().unwrap(),
        )
        .unwrap();
        let mut cluster = Self {
            redis,
            sandbox,
            app,
            certs,
            replicas: Vec::new(),
            client: reqwest::Client::new(),
            keys,
        };
        cluster.client = cluster.certs.client();
        let starts = (0..n).map(|_| TestTether::start(cluster.config(&configure)));
        cluster.replicas = futures_util::future::join_all(starts).await;
        // Each replica checks the agent token at start-up; let those calls happen first.
        cluster.wait_for_info_calls(n as u64).await;
        Some(cluster)
    }

    /// A replica's configuration: LiveChat and LivePerson on, the Redis store.
    pub fn config(&self, configure: &impl Fn(&mut tether::Config)) -> tether::Config {
        let mut config = config_for(self.app.addr, &self.certs);
        enable_livechat(&mut config, &self.sandbox);
        let text = format!(
            r#"
[upstream]
url = "http://127.0.0.1:1"
[store]
kind = "redis"
url = "{url}"
# The 1 s default bounds a network round trip; here three replicas, Redis, the app, the clients
# and the other tests share two cores, and a burst of 600 first logins can starve a command of
# CPU for longer than that. (The outage tests meet refused connections, answered at once.)
timeout = "5s"
[liveperson]
enabled = true
issuer = "{ISSUER}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
signing_key = "{key}"
"#,
            url = self.redis.url(),
            key = self.keys.path().join("signing.pem").display(),
        );
        let parsed = tether::config::parse_str(&text, "replica.toml", &|_| None).unwrap();
        config.store = parsed.store;
        config.liveperson = parsed.liveperson;
        configure(&mut config);
        config
    }

    pub async fn wait_for_info_calls(&self, calls: u64) {
        wait_until(
            "the start-up scope checks",
            Duration::from_secs(10),
            || async {
                self.sandbox
                    .counters()
                    .info_calls
                    .load(std::sync::atomic::Ordering::Relaxed)
                    >= calls
            },
        )
        .await;
    }

    /// `path` under the reserved prefix on replica `r`.
    pub fn url(&self, r: usize, path: &str) -> String {
        format!("{}/.tether{path}", self.replicas[r].https)
    }

    /// The widget's token request as `user` on replica `r`: the session cookie the app's probe
    /// recognises, and the header a trusted gateway would add (used with `trust_gateway`; a
    /// replica that probes strips it).
    pub async fn token(&self, r: usize, user: &str) -> reqwest::Response {
        self.client
            .get(self.url(r, "/livechat/token"))
            .header("cookie", format!("session={user}"))
            .header("x-authenticated-user", user)
            .send()
            .await
            .unwrap()
    }

    /// The entity id replica `r` answers for `user` (expecting success).
    pub async fn entity(&self, r: usize, user: &str) -> String {
        let response = self.token(r, user).await;
        assert_eq!(response.status(), 200, "token for {user} on replica {r}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["entityId"].as_str().unwrap().to_string()
    }

    /// The page asking replica `r` for a LivePerson code as `user`.
    pub async fn page_code(&self, r: usize, user: &str) -> reqwest::Response {
        self.client
            .post(self.url(r, "/liveperson/code"))
            .header("cookie", format!("session={user}"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
    }

    pub async fn ready(&self, r: usize) -> u16 {
        reqwest::get(format!("{}/readyz", self.replicas[r].admin))
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A counter from replica `r`'s /metrics.
    pub async fn metric(&self, r: usize, name: &str) -> u64 {
        self.replicas[r].metric(name).await
    }

    pub fn agent_refreshes(&self) -> u64 {
        self.sandbox
            .counters()
            .agent_refreshes
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
