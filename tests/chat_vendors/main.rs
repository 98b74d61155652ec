//! Zendesk, Intercom and Salesforce end to end: Tether in-process over TLS, the app answering the
//! identity probe, every token checked by independent code (the `jsonwebtoken` crate on
//! RustCrypto, RustCrypto's HMAC, x509-parser), never by the aws-lc-rs code that made it; and the
//! vendors' widget stand-ins in headless Chromium (`browser.rs`).

#[path = "../support/mod.rs"]
mod support;

mod config;
mod intercom;
mod salesforce;
mod zendesk;

use std::path::Path;
use support::backend::Backend;
use support::*;
use tether_sandbox::widgets::WidgetAccounts;

pub struct World {
    pub certs: TestCerts,
    pub app: Backend,
    pub tether: TestTether,
    pub client: reqwest::Client,
    pub keys: tempfile::TempDir,
}

/// `[zendesk]`, `[intercom]` and `[salesforce]` on, with the sandbox accounts' secrets, and the
/// RSA key under `[signing]`.
pub fn enable_chat_vendors(config: &mut tether::Config, keys: &Path) {
    let accounts = WidgetAccounts::default();
    let text = format!(
        r#"
[upstream]
url = "http://127.0.0.1:1"
[signing]
key = "{key}"
[zendesk]
enabled = true
key_id = "{zendesk_kid}"
secret = "{zendesk_secret}"
[intercom]
enabled = true
app_id = "{app_id}"
secret = "{intercom_secret}"
[salesforce]
enabled = true
issuer = "https://brand.example/.tether"
"#,
        key = new_signing_key(keys, "signing.pem").display(),
        zendesk_kid = accounts.zendesk.key_id,
        zendesk_secret = accounts.zendesk.secret,
        app_id = accounts.intercom.app_id,
        intercom_secret = accounts.intercom.secret,
    );
    let parsed = tether::config::parse_str(&text, "vendors.toml", &|_| None).unwrap();
    config.signing = parsed.signing;
    config.zendesk = parsed.zendesk;
    config.intercom = parsed.intercom;
    config.salesforce = parsed.salesforce;
    config.store.kind = tether::config::StoreKind::Memory;
}

impl World {
    pub async fn start(configure: impl FnOnce(&mut tether::Config)) -> Self {
        let keys = tempfile::tempdir().unwrap();
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let mut config = config_for(app.addr, &certs);
        enable_chat_vendors(&mut config, keys.path());
        configure(&mut config);
        let tether = TestTether::start(config).await;
        let client = certs.client();
        Self {
            certs,
            app,
            tether,
            client,
            keys,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/.tether{path}", self.tether.https)
    }

    /// GET `path` below the prefix, as `user` (None: nobody), with `cookies` besides.
    pub async fn get_as(&self, user: Option<&str>, path: &str, cookies: &str) -> reqwest::Response {
        let mut cookie = cookies.to_string();
        if let Some(user) = user {
            cookie = format!("session={user}; {cookie}");
        }
        let mut request = self.client.get(self.url(path));
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// The JSON answer for `user`, asserting 200.
    pub async fn json_as(&self, user: &str, path: &str) -> serde_json::Value {
        let response = self.get_as(Some(user), path, "").await;
        assert_eq!(response.status(), 200, "{path} for {user}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }
}

/// The payload of a compact JWS, unverified (for what the verifier does not check).
pub fn payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every endpoint refuses a caller nobody signed in as, a third-party page, and other methods.
pub async fn refuses_what_it_must(world: &World, path: &str) {
    let anonymous = world.get_as(None, path, "").await;
    assert_eq!(anonymous.status(), 401, "{path}");
    let cross_site = world
        .client
        .get(world.url(path))
        .header("cookie", "session=alice")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403, "{path}");
    let post = world
        .client
        .post(world.url(path))
        .header("cookie", "session=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405, "{path}");
}
