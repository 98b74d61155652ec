//! Where the user comes from, end to end: the app's own JSON "who am I" read at JSON pointers,
//! and signed tokens (a gateway's header or the app's session cookie) verified against a stand-in
//! issuer's keys. The user each source names is read back from Zendesk's token, the simplest
//! vendor endpoint.

#[path = "../support/mod.rs"]
mod support;

mod json_probe;
mod probe_wire;
mod tokens;

use support::backend::Backend;
use support::*;
use tether_sandbox::widgets::WidgetAccounts;

pub struct World {
    pub certs: TestCerts,
    pub app: Backend,
    pub tether: TestTether,
    pub client: reqwest::Client,
}

impl World {
    /// Zendesk on (to read back whom Tether names), then `configure`.
    pub async fn start(configure: impl FnOnce(&mut tether::Config)) -> Self {
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let tether = tether_in_front_of(app.addr, &certs, configure).await;
        let client = certs.client();
        Self {
            certs,
            app,
            tether,
            client,
        }
    }

    /// Whom Tether names for a request with these headers: Ok(user id, name) or Err(status).
    pub async fn who(&self, headers: &[(&str, &str)]) -> Result<(String, Option<String>), u16> {
        who(&self.client, &self.tether, headers).await
    }

    /// A counter of /metrics with one label.
    pub async fn counted(&self, family: &str, reason: &str) -> u64 {
        let metrics = self.tether.metrics().await;
        let line = format!("{family}{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in /metrics"))
            .parse()
            .unwrap()
    }
}

/// Tether in front of `app` with Zendesk on (to read back whom Tether names), then `configure`.
pub async fn tether_in_front_of(
    app: std::net::SocketAddr,
    certs: &TestCerts,
    configure: impl FnOnce(&mut tether::Config),
) -> TestTether {
    let mut config = config_for(app, certs);
    let accounts = WidgetAccounts::default();
    config.zendesk.enabled = true;
    config.zendesk.key_id = accounts.zendesk.key_id;
    config.zendesk.secret = tether::redact::Secret::new(accounts.zendesk.secret);
    config.store.kind = tether::config::StoreKind::Memory;
    configure(&mut config);
    config.validate().expect("a valid test configuration");
    TestTether::start(config).await
}

/// Whom `tether` names for a request with these headers: Ok(user id, name) or Err(status).
pub async fn who(
    client: &reqwest::Client,
    tether: &TestTether,
    headers: &[(&str, &str)],
) -> Result<(String, Option<String>), u16> {
    let mut request = client.get(format!("{}/.tether/zendesk/jwt", tether.https));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        if status == 503 {
            assert!(response.headers().contains_key("retry-after"));
        }
        return Err(status);
    }
    let body: serde_json::Value = response.json().await.unwrap();
    let claims = payload(body["jwt"].as_str().unwrap());
    Ok((
        claims["external_id"].as_str().unwrap().to_string(),
        claims["name"].as_str().map(str::to_string),
    ))
}

/// A JWT's claims, unverified.
pub fn payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}
