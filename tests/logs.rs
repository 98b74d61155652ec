//! Secrets never reach the logs, at any level: every crate logs at TRACE here while requests carry
//! cookies, credentials and identity headers over HTTP/1.1 and HTTP/2, and the app sets cookies.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use support::*;

const SECRET: &str = "s3cr3t-value-9f2c";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_is_logged_even_at_trace() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let (certs, app, tether) = start_app_and_tether(|c| c.log.access_log = true).await;
    let h2 = certs.client();
    let h1 = certs.client_builder().http1_only().build().unwrap();
    for client in [&h1, &h2] {
        for path in [
            "/echo/a?token=",
            "/hop?code=",
            "/.tether/livechat/token?x=",
            "/%2Etether/y?z=",
        ] {
            let response = client
                .get(format!("{}{path}{SECRET}", tether.https))
                .header("cookie", format!("session={SECRET}"))
                .header("authorization", format!("Bearer {SECRET}"))
                .header("proxy-authorization", format!("Basic {SECRET}"))
                .header("x-authenticated-user", SECRET)
                .send()
                .await
                .unwrap();
            let _ = response.bytes().await;
        }
    }
    let mut liveperson_secrets = liveperson_flows(&certs, &app).await;
    liveperson_secrets.extend(chat_vendor_flows(&certs, &app).await);
    unreachable_redis_with_a_password(&certs, &app).await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("tether::access"),
        "the access log ran:\n{logs}"
    );
    assert!(logs.lines().count() > 50, "trace logging ran");
    assert!(
        logs.contains("redis write"),
        "the unreachable Redis was logged:\n{logs}"
    );
    let refusals: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("a redirect_uri that is not registered was refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "logged once:\n{}", refusals.join("\n"));
    assert!(
        refusals[0].contains("https://lp.example/window?v=1"),
        "{}",
        refusals[0]
    );
    let leaks: Vec<&str> = logs
        .lines()
        .filter(|line| {
            line.contains(SECRET)
                || liveperson_secrets
                    .iter()
                    .any(|secret| line.contains(secret))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}

/// Zendesk, Intercom and Salesforce with their secrets in the configuration (read from a file,
/// as `${NAME}` would put them there) and tokens in flight; returns what must not be logged.
async fn chat_vendor_flows(certs: &TestCerts, app: &backend::Backend) -> Vec<String> {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let text = format!(
        "[upstream]\nurl = \"http://{app}\"\n[store]\nkind = \"memory\"\n\
         [signing]\nkey = \"{key}\"\n\
         [zendesk]\nenabled = true\nkey_id = \"kid-1\"\nsecret = \"zendesk-{SECRET}\"\n\
         [intercom]\nenabled = true\napp_id = \"abc\"\nsecret = \"intercom-{SECRET}\"\n\
         [salesforce]\nenabled = true\n",
        app = app.addr,
        key = key.display(),
    );
    let parsed = tether::config::parse_str(&text, "vendors.toml", &|_| None).unwrap();
    tracing::debug!(config = ?parsed, "a configuration with the vendors' secrets, as Debug");
    let mut config = config_for(app.addr, certs);
    config.log.access_log = true;
    config.store.kind = tether::config::StoreKind::Memory;
    config.signing = parsed.signing;
    config.zendesk = parsed.zendesk;
    config.intercom = parsed.intercom;
    config.salesforce = parsed.salesforce;
    let tether = TestTether::start(config).await;
    let client = certs.client();
    let mut secrets = Vec::new();
    for (path, field) in [
        ("/zendesk/jwt", "jwt"),
        ("/intercom/settings", "intercom_user_jwt"),
        ("/salesforce/jwt", "jwt"),
    ] {
        let body: serde_json::Value = client
            .get(format!("{}/.tether{path}", tether.https))
            .header("cookie", "session=bob; intercom-session-abc=s")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body[field].as_str().unwrap();
        secrets.push(token.rsplit('.').next().unwrap().to_string());
    }
    secrets
}

/// A Redis URL carrying a password, with nothing listening: connection errors are logged, the
/// password is not.
async fn unreachable_redis_with_a_password(certs: &TestCerts, app: &backend::Backend) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let mut config = config_for(app.addr, certs);
    config.store.kind = tether::config::StoreKind::Redis;
    config.store.url = Some(tether::redact::Secret::new(format!(
        "redis://tether:{SECRET}@{closed}/0"
    )));
    config.liveperson.enabled = true;
    config.liveperson.client_id = "lp-client".into();
    config.liveperson.signing_key = key;
    tracing::debug!(config = ?config, "the configuration, as Debug");
    let tether = TestTether::start(config).await;
    let response = certs
        .client()
        .post(format!("{}/.tether/liveperson/code", tether.https))
        .header("cookie", "session=bob")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let ready = reqwest::get(format!("{}/readyz", tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}

/// LivePerson's flows with the client secret, codes and signed tokens in flight; returns the
/// values that must not be logged (each code, the signature of each token).
async fn liveperson_flows(certs: &TestCerts, app: &backend::Backend) -> Vec<String> {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let mut config = config_for(app.addr, certs);
    config.log.access_log = true;
    config.store.kind = tether::config::StoreKind::Memory;
    let lp = &mut config.liveperson;
    lp.enabled = true;
    lp.client_id = "lp-client".into();
    lp.client_secret = tether::redact::Secret::new(SECRET);
    lp.signing_key = key;
    config.server.admin_token = Some(tether::redact::Secret::new(SECRET));
    tracing::debug!(config = ?config, "the configuration with an admin token, as Debug");
    let tether = TestTether::start(config).await;
    // The admin token in use, right and wrong, and an erasure and an export through it.
    let admin = reqwest::Client::new();
    for token in [SECRET, "wrong-admin-token"] {
        let erased = admin
            .delete(format!("{}/users/bob", tether.admin))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(erased.status(), if token == SECRET { 200 } else { 401 });
    }
    let exported = admin
        .get(format!("{}/store/export", tether.admin))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), 200);
    let client = certs.client();
    let url = |path: &str| format!("{}/.tether{path}", tether.https);
    let mut secrets = Vec::new();
    let jwt: serde_json::Value = client
        .get(url("/liveperson/token"))
        .header("cookie", "session=bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Two refused redirect_uris: the operator learns the first (LivePerson's window URL is not
    // published), and the log is not flooded.
    for window in [
        "https://lp.example/window?v=1",
        "https://lp.example/window?v=2",
    ] {
        let refused = client
            .get(url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "lp-client"),
                ("redirect_uri", window),
            ])
            .header("cookie", "session=bob")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
    }
    let signature = |token: &str| token.rsplit('.').next().unwrap().to_string();
    secrets.push(signature(jwt["jwt"].as_str().unwrap()));
    let grant: serde_json::Value = client
        .post(url("/liveperson/code"))
        .header("cookie", "session=bob")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = grant["code"].as_str().unwrap().to_string();
    for attempt in 0..2 {
        let response = client
            .post(url("/oauth/token"))
            .basic_auth("lp-client", Some(SECRET))
            .form(&[("grant_type", "authorization_code"), ("code", &code)])
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        if attempt == 0 {
            secrets.push(signature(body["id_token"].as_str().unwrap()));
        } else {
            assert_eq!(
                body["error"], "invalid_grant",
                "the replay is refused (and logged)"
            );
        }
    }
    let response = client
        .post(url("/oauth/token"))
        .basic_auth("lp-client", Some("wrong-secret-wrong"))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    secrets.push(code);
    secrets
}
