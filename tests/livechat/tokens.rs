//! The token endpoint: shape, units, cache rules, single flight, failures and refusals.

use crate::World;
use reqwest::Method;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn token_has_the_widget_shape_and_units() {
    let world = World::start(|_| {}).await;
    let before = now_ms();
    let response = world.request(Method::GET, Some("alice")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["vary"], "Cookie, Authorization");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(headers["x-tether-user-key"].len(), 32);
    let token: serde_json::Value = response.json().await.unwrap();
    assert_eq!(token["tokenType"], "Bearer");
    assert_eq!(token["expiresIn"], 28_800_000, "milliseconds");
    assert_eq!(token["licenseId"], 12345);
    assert_eq!(
        token["organizationId"],
        tether_sandbox::livechat::SandboxConfig::default().organization_id
    );
    let created = token["creationDate"].as_u64().unwrap();
    assert!(
        created >= before && created <= now_ms(),
        "creationDate {created} is the issue time in ms"
    );
    let owner = world
        .sandbox
        .owner_of(token["accessToken"].as_str().unwrap());
    assert_eq!(
        owner.as_deref(),
        token["entityId"].as_str(),
        "the token belongs to the entity"
    );
    assert_eq!(token.as_object().unwrap().len(), 7, "{token}");
}

#[tokio::test]
async fn cached_tokens_keep_their_creation_date_and_fresh_ones_reissue() {
    let world = World::start(|_| {}).await;
    let first = world.token(Method::GET, "alice").await;
    let again = world.token(Method::GET, "alice").await;
    assert_eq!(first, again, "served from the cache, creationDate included");
    assert_eq!(world.sandbox.customer_token_calls(), 1);

    let fresh = world.token(Method::POST, "alice").await;
    assert_eq!(
        world.sandbox.customer_token_calls(),
        2,
        "POST bypasses the cache"
    );
    assert_ne!(fresh["accessToken"], first["accessToken"]);
    assert_eq!(
        fresh["entityId"], first["entityId"],
        "the customer never changes"
    );
    assert!(fresh["creationDate"].as_u64() >= first["creationDate"].as_u64());
    assert_eq!(
        world.token(Method::GET, "alice").await,
        fresh,
        "the fresh token is the cached one now"
    );

    let response = world.request(Method::DELETE, Some("alice")).await;
    assert_eq!(response.status(), 204);
    let after_logout = world.token(Method::GET, "alice").await;
    assert_eq!(
        world.sandbox.customer_token_calls(),
        3,
        "DELETE forgot the cached token"
    );
    assert_eq!(after_logout["entityId"], first["entityId"]);
    assert_eq!(world.sandbox.customers_created(), 1);
}

#[tokio::test]
async fn tokens_with_too_little_life_left_are_never_served_from_cache() {
    // LiveChat tokens living 1 h: under the 65 min margin from the start, so never cacheable.
    let sandbox = tether_sandbox::livechat::SandboxConfig {
        customer_token_ttl: 3600,
        ..Default::default()
    };
    let world = World::start_with_sandbox(sandbox, |_| {}).await;
    for _ in 0..3 {
        world.token(Method::GET, "bob").await;
    }
    assert_eq!(world.sandbox.customer_token_calls(), 3);
    assert_eq!(world.sandbox.customers_created(), 1);
}

#[tokio::test]
async fn concurrent_first_logins_create_one_customer_each() {
    // 1000 concurrent TLS requests on a 2-core machine: generous timeouts, exact counts.
    let world = World::start(|c| {
        c.identity.probe_timeout = std::time::Duration::from_secs(20);
        c.livechat.request_timeout = std::time::Duration::from_secs(20);
    })
    .await;
    let requests = (0..1000).map(|i| {
        let request = world
            .client
            .get(world.token_url())
            .header("cookie", format!("session=user{}", i % 10));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let token: serde_json::Value = response.json().await.unwrap();
            (i % 10, token["entityId"].as_str().unwrap().to_string())
        }
    });
    let results = futures_util::future::join_all(requests).await;
    assert_eq!(world.sandbox.customers_created(), 10);
    assert_eq!(
        world.sandbox.customer_token_calls(),
        10,
        "one accounts call per user"
    );
    let mut by_user = std::collections::HashMap::new();
    for (user, entity) in results {
        assert_eq!(
            by_user.entry(user).or_insert_with(|| entity.clone()),
            &entity,
            "user{user} got two entities"
        );
    }
}

#[tokio::test]
async fn anonymous_and_spoofing_callers_get_401() {
    let world = World::start(|_| {}).await;
    let response = world.request(Method::GET, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"not_authenticated"}"#
    );
    let spoofed = world
        .client
        .get(world.token_url())
        .header("x-authenticated-user", "alice")
        .header("x_authenticated_user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 401, "a client cannot name itself");
    assert_eq!(world.sandbox.customer_token_calls(), 0);
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let world = World::start(|_| {}).await;
    let port = world.tether.tls_addr.port();
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let response = world
            .client
            .get(world.token_url())
            .header("cookie", "session=alice")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}: {value}");
    }
    let same_site = world
        .client
        .get(world.token_url())
        .header("cookie", "session=alice")
        .header("origin", format!("https://localhost:{port}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), 200);
    assert_eq!(world.sandbox.customer_token_calls(), 1);
}

#[tokio::test]
async fn identity_probe_failures_fail_closed() {
    let world =
        World::start(|c| c.identity.probe_timeout = std::time::Duration::from_millis(300)).await;
    for (user, status) in [("__500", 503), ("__dup", 502), ("__slow", 503)] {
        let response = world.request(Method::GET, Some(user)).await;
        assert_eq!(response.status(), status, "{user}");
        if status == 503 {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(world.sandbox.customer_token_calls(), 0);
}

#[tokio::test]
async fn livechat_outage_is_503_while_proxying_keeps_working() {
    use tether_sandbox::livechat::Fault;
    let world = World::start(|c| c.livechat.sync_customer_profile = false).await;
    world.sandbox.inject(
        std::time::Duration::ZERO,
        // One failure per attempt (max_attempts = 3). Dropped connections are covered below: the
        // HTTP client itself retries a request whose connection closed before any answer.
        [
            Fault::Status { status: 503 },
            Fault::Status { status: 500 },
            Fault::Status { status: 429 },
        ],
    );
    let response = world.request(Method::GET, Some("alice")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"livechat_unavailable"}"#
    );
    let app = world
        .client
        .get(format!("{}/echo/during-outage", world.tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(app.status(), 200, "plain proxying is unaffected");
    // The outage is over: the next request succeeds and nothing was cached from the failure.
    let token = world.token(Method::GET, "alice").await;
    assert!(token["entityId"].is_string());
}

#[tokio::test]
async fn transient_failures_are_retried_within_one_request() {
    use tether_sandbox::livechat::Fault;
    let world = World::start(|c| c.livechat.sync_customer_profile = false).await;
    world.sandbox.inject(
        std::time::Duration::ZERO,
        [Fault::Status { status: 500 }, Fault::Drop { drop: true }],
    );
    world.token(Method::GET, "carol").await;
    assert_eq!(world.sandbox.customers_created(), 1);
}

#[tokio::test]
async fn metrics_and_readiness_report_livechat() {
    let world = World::start(|_| {}).await;
    world.token(Method::GET, "dave").await;
    world.token(Method::GET, "dave").await;
    let metrics = world.tether.metrics().await;
    for line in [
        "tether_livechat_customers_created_total 1",
        "tether_livechat_tokens_issued_total 1",
        "tether_livechat_tokens_cached_total 1",
        "tether_store_customers 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", world.tether.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["livechat"], "ok", "{ready}");
}

#[tokio::test]
async fn readiness_fails_without_the_customers_own_scope() {
    let sandbox = tether_sandbox::livechat::SandboxConfig {
        agent_scope: "chats--all:rw".into(),
        ..Default::default()
    };
    let world = World::start_with_sandbox(sandbox, |_| {}).await;
    let ready = reqwest::get(format!("{}/readyz", world.tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert!(
        report["checks"]["livechat"]
            .as_str()
            .unwrap()
            .contains("customers:own"),
        "{report}"
    );
}

#[tokio::test]
async fn an_accounts_server_that_never_answers_is_a_503_within_the_timeouts() {
    use tether_sandbox::livechat::Fault;
    let world = World::start(|c| {
        c.livechat.request_timeout = std::time::Duration::from_millis(300);
        c.livechat.max_attempts = 2;
        c.livechat.sync_customer_profile = false;
    })
    .await;
    world.token(Method::GET, "warmup").await; // the agent token is fetched before the faults
    world.sandbox.inject(
        std::time::Duration::ZERO,
        [Fault::Hang { hang: true }, Fault::Hang { hang: true }],
    );
    let started = std::time::Instant::now();
    let response = world.request(Method::GET, Some("gina")).await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

/// An organization-only account (no license): tokens carry no `licenseId`, not 0.
#[tokio::test]
async fn organization_only_accounts_have_no_license_in_tokens() {
    let world = World::start(|c| c.livechat.license_id = 0).await;
    let token = world.token(Method::GET, "alice").await;
    assert!(token.get("licenseId").is_none(), "{token}");
    assert_eq!(
        token["organizationId"],
        tether_sandbox::livechat::SandboxConfig::default().organization_id
    );
}

/// The widget's `getFreshToken()` after a refused token, then at once a reconnect's
/// `getToken()`: the read waits for the new token instead of getting the refused one.
#[tokio::test]
async fn reads_during_a_fresh_reissue_wait_for_it() {
    let world = World::start(|_| {}).await;
    let refused = world.token(Method::GET, "alice").await;
    let calls = world.sandbox.customer_token_calls();
    world
        .sandbox
        .inject(std::time::Duration::from_millis(400), []);
    let fresh = tokio::spawn({
        let client = world.client.clone();
        let url = world.token_url();
        async move {
            let response = client
                .post(url)
                .header("cookie", "session=alice")
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        }
    });
    crate::support::wait_until(
        "the re-issue reached LiveChat",
        std::time::Duration::from_secs(5),
        || async { world.sandbox.customer_token_calls() > calls },
    )
    .await;
    let read = world.token(Method::GET, "alice").await;
    let fresh = fresh.await.unwrap();
    assert_ne!(fresh["accessToken"], refused["accessToken"]);
    assert_eq!(read["accessToken"], fresh["accessToken"]);
}

/// Splits pipelined HTTP/1.1 responses: (status, head, body) each; `heads` says which answer a
/// HEAD request (no body whatever its length says).
fn split_responses(mut bytes: &[u8], heads: &[bool]) -> Vec<(u16, String, Vec<u8>)> {
    let mut out = Vec::new();
    for &head_request in heads {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(len) = response.parse(bytes).unwrap() else {
            panic!("a whole head: {}", String::from_utf8_lossy(bytes));
        };
        let length: usize = response
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |f| {
                std::str::from_utf8(f.value).unwrap().parse().unwrap()
            });
        let body_len = if head_request { 0 } else { length };
        let head = String::from_utf8_lossy(&bytes[..len]).into_owned();
        out.push((
            response.code.unwrap(),
            head,
            bytes[len..len + body_len].to_vec(),
        ));
        bytes = &bytes[len + body_len..];
    }
    assert!(bytes.is_empty(), "nothing after the last answer");
    out
}

#[tokio::test]
async fn token_requests_share_a_keep_alive_connection_with_the_app_on_the_engine() {
    let world = World::start(|config| {
        config.server.http1_engine = tether::config::Http1Engine::Tether;
    })
    .await;
    // Pipelined on one connection: a token, a POST with a body (read, so the next request is
    // found where it starts), a page from the app, and a HEAD that closes the connection.
    let request = concat!(
        "GET /.tether/livechat/token HTTP/1.1\r\nHost: localhost\r\nCookie: session=alice\r\n\r\n",
        "POST /.tether/livechat/token HTTP/1.1\r\nHost: localhost\r\nCookie: session=alice\r\n",
        "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "HEAD /.tether/livechat/token HTTP/1.1\r\nHost: localhost\r\nCookie: session=alice\r\n",
        "Connection: close\r\n\r\n",
    );
    let raw =
        crate::support::raw_exchange(&world.certs, world.tether.tls_addr, request.as_bytes()).await;
    let answers = split_responses(raw.as_bytes(), &[false, false, false, true]);
    let statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
    // The token endpoint takes GET, POST and DELETE: a HEAD is refused, with no body.
    assert_eq!(statuses, [200, 200, 200, 405], "{raw}");
    for (_, head, body) in [&answers[0], &answers[1]] {
        assert!(head.contains("cache-control: no-store\r\n"), "{head}");
        let token: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(token["tokenType"], "Bearer");
    }
    let (_, head, body) = &answers[3];
    assert!(
        body.is_empty()
            && head.contains("content-length: 30\r\n")
            && head.contains("connection: close"),
        "a HEAD's answer has its length, no body, and ends the connection: {head}"
    );
    assert_eq!(
        world.sandbox.customer_token_calls(),
        2,
        "the POST asked for a fresh token"
    );
    assert_eq!(
        world.tether.metric("tether_http1_handoffs_total").await,
        0,
        "every request above is the engine's"
    );

    // A chunked body is left to hyper, which streams it; the answer is the same.
    let chunked = concat!(
        "POST /.tether/livechat/token HTTP/1.1\r\nHost: localhost\r\nCookie: session=alice\r\n",
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let raw =
        crate::support::raw_exchange(&world.certs, world.tether.tls_addr, chunked.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    assert_eq!(world.tether.metric("tether_http1_handoffs_total").await, 1);
}
