//! LivePerson end to end: Tether in-process over TLS as the brand's OpenID Connect provider, the
//! app answering the identity probe. Every token is checked with independent implementations
//! (RustCrypto's RSA through `jsonwebtoken` and `openidconnect`, and a small JWE decrypter on
//! RustCrypto), never with the aws-lc-rs code that produced it.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod code_flow;
mod config;
mod implicit;
mod jose_check;
mod onboarding;
mod popup;
mod probing;
mod relying_party;

/// Every test above but the browser's, run again on the HTTP/1.1 engine that is not the default
/// (Tether's endpoints are served by either).
#[test]
fn every_liveperson_test_passes_on_the_other_http1_engine() {
    support::the_other_engine_passes_too_skipping(
        "every_liveperson_test_passes_on_the_other_http1_engine",
        &["browser::"],
    );
}

use std::path::{Path, PathBuf};
use support::backend::Backend;
use support::*;

pub const CLIENT_ID: &str = "liveperson-client";
/// Has a '+' and a '/', which a Basic header must carry intact.
pub const CLIENT_SECRET: &str = "s3cret+s3cret/s3cret=";
pub const RP_REDIRECT: &str = "https://rp.example/callback";

pub struct World {
    pub certs: TestCerts,
    pub app: Backend,
    pub tether: TestTether,
    /// Does not follow redirects, so tests see them.
    pub client: reqwest::Client,
    pub keys: tempfile::TempDir,
}

/// LivePerson on, the test app's profile headers mapped to claims and lp_sdes attributes.
pub fn enable_liveperson(config: &mut tether::Config, signing_key: PathBuf) {
    let text = r#"
[upstream]
url = "http://127.0.0.1:1"
[identity.claims]
"X-User-Given-Name" = "given_name"
"X-User-Phone" = "phone_number"
"X-User-Gender" = "gender"
"X-User-Balance" = "balance"
"X-User-Since" = "since"
"X-User-Birth" = "birth"
[liveperson]
enabled = true
client_id = "liveperson-client"
client_secret = "s3cret+s3cret/s3cret="
redirect_uris = ["https://liveperson.net", "https://rp.example/callback"]
[liveperson.sdes.ctmrinfo]
customerId = "user_id"
balance = "balance"
registrationDate = "since"
[liveperson.sdes.personal]
firstname = "given_name"
age = "birth"
gender = "gender"
email = "email"
phone = "phone_number"
"#;
    let parsed = tether::config::parse_str(text, "liveperson.toml", &|_| None).unwrap();
    config.identity.claims = parsed.identity.claims;
    config.liveperson = parsed.liveperson;
    config.liveperson.signing_key = signing_key;
    config.store.kind = tether::config::StoreKind::Memory;
}

impl World {
    pub async fn start(configure: impl FnOnce(&mut tether::Config, &Path)) -> Self {
        let keys = tempfile::tempdir().unwrap();
        let certs = TestCerts::new();
        let app = Backend::start().await;
        let mut config = config_for(app.addr, &certs);
        enable_liveperson(&mut config, new_signing_key(keys.path(), "signing.pem"));
        configure(&mut config, keys.path());
        let tether = TestTether::start(config).await;
        let client = certs
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            certs,
            app,
            tether,
            client,
            keys,
        }
    }

    /// `{prefix}{path}` on Tether's TLS listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}/.tether{path}", self.tether.https)
    }

    /// The issuer Tether derives for requests to `localhost:<port>`.
    pub fn issuer(&self) -> String {
        format!("{}/.tether", self.tether.https)
    }

    pub async fn get_as(&self, user: Option<&str>, path: &str) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(user) = user {
            request = request.header("cookie", format!("session={user}"));
        }
        request.send().await.unwrap()
    }

    /// The page's Implicit Flow call: the JWT for `user`.
    pub async fn page_jwt(&self, user: &str) -> String {
        let response = self.get_as(Some(user), "/liveperson/token").await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        body["jwt"].as_str().unwrap().to_string()
    }

    /// The page's Code Flow call: a code for `user` with these JSON parameters.
    pub async fn page_code(&self, user: &str, params: serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(self.url("/liveperson/code"))
            .header("cookie", format!("session={user}"))
            .json(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// LivePerson's server at the token endpoint: a form, with HTTP Basic client credentials.
    pub async fn exchange(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The claims of the id_token in a token endpoint answer, verified against the JWKS.
    pub async fn id_token_claims(&self, body: &serde_json::Value) -> serde_json::Value {
        let id_token = body["id_token"].as_str().expect("an id_token");
        jose_check::verify(id_token, &self.jwks().await, &self.issuer(), CLIENT_ID)
    }

    /// Exchanges a code (the form of `exchange`), expecting success: the id_token's claims.
    pub async fn redeemed_claims(&self, form: &[(&str, &str)]) -> serde_json::Value {
        let response = self.exchange(form).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        self.id_token_claims(&body).await
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let response = self
            .client
            .get(self.url("/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// RFC 6749 section 2.3.1: client credentials are form-encoded before Basic.
pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
