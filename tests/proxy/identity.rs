//! The reason this proxy exists: no client can hand the app an identity header, in any spelling,
//! over any protocol.

use crate::support::backend::Backend;
use crate::support::*;

const SPOOFS: &[&str] = &[
    "X-Authenticated-User",
    "x-authenticated-user",
    "X-AUTHENTICATED-USER",
    "X_Authenticated_User",
    "x_authenticated_user",
    "X.Authenticated.User",
    "x-authenticated_user",
    "X-Authenticated.User",
    "X-Authenticated-Email",
    "x_authenticated_email",
    "X-Authenticated-Name",
    "X-User-Plan",
    "x_user.plan",
    "X-Internal-Role",
    "X_INTERNAL_ROLE",
];

async fn setup(configure: impl FnOnce(&mut tether::Config)) -> (TestCerts, Backend, TestTether) {
    let certs = TestCerts::new();
    let backend = Backend::start().await;
    let mut config = config_for(backend.addr, &certs);
    config
        .identity
        .claims
        .push(("x-user-plan".parse().unwrap(), "plan".into()));
    config.identity.protected_headers = vec!["x-internal-role".parse().unwrap()];
    configure(&mut config);
    let tether = TestTether::start(config).await;
    (certs, backend, tether)
}

fn assert_no_identity(seen: &crate::support::backend::Seen) {
    for (name, value) in &seen.headers {
        let folded = name.to_ascii_lowercase().replace(['_', '.'], "-");
        assert!(
            !matches!(
                folded.as_str(),
                "x-authenticated-user"
                    | "x-authenticated-email"
                    | "x-authenticated-name"
                    | "x-user-plan"
                    | "x-internal-role"
            ),
            "identity header {name}: {value} reached the app"
        );
        assert_ne!(value, "mallory", "{name} carried the spoofed value");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app_over_http1() {
    let (certs, backend, tether) = setup(|_| {}).await;
    for (i, name) in SPOOFS.iter().enumerate() {
        let request = format!(
            "GET /echo/spoof{i} HTTP/1.1\r\nHost: localhost\r\n{name}: mallory\r\n{name}: mallory\r\nConnection: close\r\n\r\n"
        );
        let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
        assert!(raw.starts_with("HTTP/1.1 200"), "{name}: {raw}");
        assert_no_identity(&backend.last(&format!("/echo/spoof{i}")));
    }
    let metrics = tether.metrics().await;
    let expected = format!("tether_spoofed_identity_headers_total {}", SPOOFS.len() * 2);
    assert!(metrics.contains(&expected), "{metrics}");
}

#[tokio::test]
async fn connection_header_cannot_resurrect_or_hide_identity_headers() {
    let (certs, backend, tether) = setup(|_| {}).await;
    let request = "GET /echo/conn HTTP/1.1\r\nHost: localhost\r\n\
        Connection: close, x-authenticated-user, x-forwarded-for\r\n\
        X-Authenticated-User: mallory\r\nX_Authenticated_User: mallory\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    let seen = backend.last("/echo/conn");
    assert_no_identity(&seen);
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app_over_http2() {
    let (certs, backend, tether) = setup(|_| {}).await;
    let client = certs.client();
    for (i, name) in SPOOFS.iter().enumerate() {
        let response = client
            .get(format!("{}/echo/h2spoof{i}", tether.https))
            .header(*name, "mallory")
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert_no_identity(&backend.last(&format!("/echo/h2spoof{i}")));
    }
}

#[tokio::test]
async fn spoofed_headers_are_also_stripped_before_reserved_endpoints() {
    let (certs, backend, tether) = setup(|_| {}).await;
    let response = certs
        .client()
        .get(format!("{}/.tether/livechat/token", tether.https))
        .header("X-Authenticated-User", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(backend.seen().is_empty());
    assert!(tether
        .metrics()
        .await
        .contains("tether_spoofed_identity_headers_total 1"));
}

#[tokio::test]
async fn header_mode_trusts_only_the_exact_header_from_a_trusted_gateway() {
    let (certs, backend, tether) = setup(|config| {
        config.identity.source = tether::config::IdentitySource::Header;
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let request = "GET /echo/gw HTTP/1.1\r\nHost: localhost\r\nX-Authenticated-User: alice\r\n\
        X_Authenticated_User: mallory\r\nX-Internal-Role: admin\r\nConnection: close\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    let seen = backend.last("/echo/gw");
    assert_eq!(seen.all("x-authenticated-user"), ["alice"]);
    assert!(
        seen.headers
            .iter()
            .all(|(_, v)| v != "mallory" && v != "admin"),
        "{seen:?}"
    );

    // Two values for one identity header: ambiguous, so neither is passed on.
    let request = "GET /echo/gw2 HTTP/1.1\r\nHost: localhost\r\nX-Authenticated-User: alice\r\n\
        X-Authenticated-User: mallory\r\nConnection: close\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert_eq!(
        backend.last("/echo/gw2").header("x-authenticated-user"),
        None
    );
}

#[tokio::test]
async fn header_mode_strips_identity_from_untrusted_peers() {
    let (certs, backend, tether) = setup(|config| {
        config.identity.source = tether::config::IdentitySource::Header;
        config.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let request = "GET /echo/untrusted HTTP/1.1\r\nHost: localhost\r\nX-Authenticated-User: mallory\r\nConnection: close\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert_no_identity(&backend.last("/echo/untrusted"));
}
