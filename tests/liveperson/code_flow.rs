//! Code Flow: the page gets a one-time code, LivePerson's server exchanges it at
//! `POST /.tether/oauth/token`.

use crate::jose_check::*;
use crate::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";

fn s256(verifier: &str) -> String {
    b64e(&Sha256::digest(verifier.as_bytes()))
}

async fn code_for(world: &World, params: &Value) -> String {
    world.page_code("alice", params.clone()).await["code"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_code_with_s256_pkce_is_exchanged_once_for_a_verified_id_token() {
    let world = World::start(|_, _| {}).await;
    let grant = world
        .page_code(
            "alice",
            json!({"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}),
        )
        .await;
    assert_eq!(
        grant["redirect_uri"], "https://liveperson.net",
        "the default"
    );
    let code = grant["code"].as_str().unwrap();
    assert_eq!(b64d(code).len(), 32, "256 bits of randomness");

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "https://liveperson.net"),
        ("code_verifier", VERIFIER),
    ];
    let response = world.exchange(&form).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 43);
    let claims = world.id_token_claims(&body).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["email"], "alice@example.com");

    // Single use: the replay is refused and counted.
    assert_eq!(
        error_of(world.exchange(&form).await).await,
        (400, "invalid_grant".into())
    );
    let metrics = world.tether.metrics().await;
    assert!(
        metrics.contains("tether_liveperson_code_replays_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_liveperson_codes_redeemed_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn plain_pkce_client_secret_post_json_bodies_and_nonce() {
    let world = World::start(|_, _| {}).await;
    let grant = world
        .page_code(
            "bob",
            json!({"code_challenge": VERIFIER, "code_challenge_method": "plain",
                   "redirect_uri": RP_REDIRECT, "nonce": "n-0S6_WzA2Mj"}),
        )
        .await;
    assert_eq!(grant["redirect_uri"], RP_REDIRECT);
    // client_secret_post, and a JSON body (an old LivePerson doc revision said JSON).
    let response = world
        .client
        .post(world.url("/oauth/token"))
        .json(&json!({
            "grant_type": "authorization_code",
            "code": grant["code"],
            "redirect_uri": RP_REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = world.id_token_claims(&body).await;
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");

    // A code without PKCE, form-encoded client_secret_post.
    let grant = world.page_code("bob", json!({})).await;
    let response = world
        .client
        .post(world.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", grant["code"].as_str().unwrap()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "redirect_uri may be left out when the page did not name one"
    );
}

#[tokio::test]
async fn wrong_verifiers_redirects_clients_and_codes_are_refused() {
    let world = &World::start(|_, _| {}).await;
    let challenge = json!({"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"});
    let exchange = |code: String, verifier: Option<&'static str>, redirect: &'static str| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("redirect_uri", redirect.to_string()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier.to_string()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| async move {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        error_of(world.exchange(&form).await).await
    };
    let invalid_grant = (400, "invalid_grant".to_string());
    // Wrong verifier; and the code is spent by the attempt.
    let code = code_for(world, &challenge).await;
    assert_eq!(
        send(exchange(
            code.clone(),
            Some("wrong-verifier-wrong-verifier-wrong-verifier-1"),
            "https://liveperson.net"
        ))
        .await,
        invalid_grant
    );
    assert_eq!(
        send(exchange(code, Some(VERIFIER), "https://liveperson.net")).await,
        invalid_grant
    );
    // Missing verifier.
    assert_eq!(
        send(exchange(
            code_for(world, &challenge).await,
            None,
            "https://liveperson.net"
        ))
        .await,
        invalid_grant
    );
    // redirect_uri other than the one the code was issued for.
    let mut bound = challenge.clone();
    bound["redirect_uri"] = "https://liveperson.net".into();
    assert_eq!(
        send(exchange(
            code_for(world, &bound).await,
            Some(VERIFIER),
            RP_REDIRECT
        ))
        .await,
        invalid_grant
    );
    // A code Tether never issued.
    assert_eq!(
        send(exchange(
            b64e(&[7u8; 32]),
            Some(VERIFIER),
            "https://liveperson.net"
        ))
        .await,
        invalid_grant
    );

    // Wrong secret, unknown client, no credentials: 401 invalid_client with a Basic challenge.
    for (id, secret) in [
        (CLIENT_ID, "not-the-secret"),
        ("someone-else", CLIENT_SECRET),
    ] {
        let response = world
            .client
            .post(world.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&exchange(
                code_for(world, &challenge).await,
                Some(VERIFIER),
                "https://liveperson.net",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert_eq!(error_of(response).await, (401, "invalid_client".into()));
    }
    let response = world
        .client
        .post(world.url("/oauth/token"))
        .form(&exchange(
            code_for(world, &challenge).await,
            Some(VERIFIER),
            "https://liveperson.net",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (401, "invalid_client".into()));

    // Grant types and malformed requests.
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    assert_eq!(
        error_of(world.exchange(&form).await).await,
        (400, "unsupported_grant_type".into())
    );
    assert_eq!(
        error_of(
            world
                .exchange(&[("grant_type", "authorization_code")])
                .await
        )
        .await,
        (400, "invalid_request".into())
    );
    let response = world
        .client
        .post(world.url("/oauth/token"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=a&code=b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (400, "invalid_request".into()),
        "a repeated parameter"
    );
    let response = world
        .client
        .post(world.url("/oauth/token"))
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
    let response = world
        .client
        .get(world.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);

    let metrics = world.tether.metrics().await;
    assert!(
        metrics.contains("tether_liveperson_client_auth_failures_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_liveperson_codes_redeemed_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let world = World::start(|config, _| {
        config.liveperson.code_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    let code = world.page_code("alice", json!({})).await["code"]
        .as_str()
        .unwrap()
        .to_string();
    // The code's lifetime is the condition under test: let it pass.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    assert_eq!(
        error_of(world.exchange(&form).await).await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn the_page_cannot_ask_for_codes_it_should_not_get() {
    let world = World::start(|_, _| {}).await;
    let post = |body: Value, user: Option<&str>| {
        let mut request = world.client.post(world.url("/liveperson/code")).json(&body);
        if let Some(user) = user {
            request = request.header("cookie", format!("session={user}"));
        }
        request.send()
    };
    assert_eq!(post(json!({}), None).await.unwrap().status(), 401);
    let response = post(
        json!({"redirect_uri": "https://evil.example/steal"}),
        Some("alice"),
    )
    .await
    .unwrap();
    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
    let response = post(json!({"code_challenge": "short"}), Some("alice"))
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
    let response = post(
        json!({"code_challenge": s256(VERIFIER), "code_challenge_method": "S512"}),
        Some("alice"),
    )
    .await
    .unwrap();
    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
    let response = world
        .client
        .post(world.url("/liveperson/code"))
        .header("cookie", "session=alice")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// A token endpoint call from `from` (via the trusted proxy's X-Forwarded-For).
async fn exchange_from(world: &World, from: &str, secret: &str, code: &str) -> reqwest::Response {
    world
        .client
        .post(world.url("/oauth/token"))
        .header("x-forwarded-for", from)
        .basic_auth(urlencode(CLIENT_ID), Some(urlencode(secret)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://liveperson.net"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_client_authentications_are_limited_per_address_and_per_client() {
    let world = World::start(|config, _| {
        config.liveperson.client_auth_failures_per_minute = 3; // 30 per client
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let world = &world;
    let no_pkce = json!({});
    let code = || code_for(world, &no_pkce);
    // LivePerson's server authenticates once from its address.
    let response = exchange_from(world, "192.0.2.1", CLIENT_SECRET, &code().await).await;
    assert_eq!(response.status(), 200);

    // One address guessing: three failures, then 429 even with the right secret.
    for _ in 0..3 {
        let response = exchange_from(world, "198.51.100.1", "guess", "x").await;
        assert_eq!(error_of(response).await, (401, "invalid_client".into()));
    }
    let response = exchange_from(world, "198.51.100.1", CLIENT_SECRET, &code().await).await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (19..=20).contains(&wait),
        "one failure refills in 20 s: {wait}"
    );
    assert_eq!(error_of(response).await, (429, "slow_down".into()));
    // Another address is not affected.
    let response = exchange_from(world, "198.51.100.2", CLIENT_SECRET, &code().await).await;
    assert_eq!(response.status(), 200);

    // Guesses spread over many addresses: after 30 failures for the client, new addresses are
    // refused, while addresses that authenticated before keep working.
    for i in 0..27 {
        let from = format!("203.0.113.{}", i / 3 + 1);
        let response = exchange_from(world, &from, "guess", "x").await;
        assert_eq!(response.status(), 401, "failure {i} from {from}");
    }
    let response = exchange_from(world, "203.0.113.200", CLIENT_SECRET, &code().await).await;
    assert_eq!(
        response.status(),
        429,
        "a new address, once the client is under attack"
    );
    for known in ["192.0.2.1", "198.51.100.2"] {
        let response = exchange_from(world, known, CLIENT_SECRET, &code().await).await;
        assert_eq!(response.status(), 200, "{known} authenticated before");
    }
    let metrics = world.tether.metrics().await;
    assert!(
        metrics.contains("tether_liveperson_client_auth_failures_total 30\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_liveperson_client_auth_throttled_total 2\n"),
        "{metrics}"
    );
}

/// As LivePerson's reference IdP does: a code issued without a `redirect_uri` binds none, and
/// a request carrying the client credentials both ways is accepted when they agree (and
/// refused when they differ).
#[tokio::test]
async fn unbound_codes_and_agreeing_double_credentials_are_accepted() {
    let world = World::start(|_, _| {}).await;
    let form = |code: &str, redirect: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect.to_string()),
        ]
    };
    let unbound = code_for(&world, &json!({})).await;
    let response = world
        .exchange(&as_pairs(&form(&unbound, RP_REDIRECT)))
        .await;
    assert_eq!(
        response.status(),
        200,
        "a code issued without redirect_uri binds none"
    );

    let both = |secret: &'static str| {
        let world = &world;
        async move {
            let code = code_for(world, &json!({})).await;
            let mut body = form(&code, "https://liveperson.net");
            body.push(("client_id", CLIENT_ID.to_string()));
            body.push(("client_secret", secret.to_string()));
            world
                .client
                .post(world.url("/oauth/token"))
                .basic_auth(urlencode(CLIENT_ID), Some(urlencode(CLIENT_SECRET)))
                .form(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(both(CLIENT_SECRET).await.status(), 200);
    let differing = both("another-secret-that-differs").await;
    assert_eq!(error_of(differing).await, (401, "invalid_client".into()));
}

fn as_pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
