//! Zendesk's JWT: HS256 with `kid`, `scope: "user"`, `external_id`, `exp` (docs/vendors/zendesk.md).

use crate::{payload, refuses_what_it_must, World};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use tether_sandbox::widgets::WidgetAccounts;

fn verify(jwt: &str) -> serde_json::Value {
    let account = WidgetAccounts::default().zendesk;
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some(account.key_id.as_str()));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
    validation.validate_aud = false;
    decode::<serde_json::Value>(
        jwt,
        &DecodingKey::from_secret(account.secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims
}

#[tokio::test]
async fn the_jwt_says_who_the_user_is_and_nothing_risky() {
    let world = World::start(|_| {}).await;
    let body = world.json_as("alice", "/zendesk/jwt").await;
    let jwt = body["jwt"].as_str().unwrap();
    let claims = verify(jwt);
    assert_eq!(claims["scope"], "user");
    assert_eq!(claims["external_id"], "alice");
    assert!(claims["external_id"].is_string());
    assert_eq!(claims["name"], "User alice");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 600, "token_ttl, 10 minutes by default");
    // An e-mail another Zendesk user has makes Zendesk answer 409: not without send_email.
    assert!(claims.get("email").is_none() && claims.get("email_verified").is_none());
    // A fresh token each time the widget asks.
    let again = world.json_as("alice", "/zendesk/jwt").await;
    assert_eq!(
        verify(again["jwt"].as_str().unwrap())["external_id"],
        "alice"
    );
    let bob = world.json_as("bob", "/zendesk/jwt").await;
    assert_eq!(payload(bob["jwt"].as_str().unwrap())["external_id"], "bob");
    assert!(
        world
            .tether
            .metric("tether_zendesk_tokens_signed_total")
            .await
            >= 3
    );
    refuses_what_it_must(&world, "/zendesk/jwt").await;
}

#[tokio::test]
async fn send_email_signs_the_email_as_verified() {
    let world = World::start(|config| config.zendesk.send_email = true).await;
    let body = world.json_as("alice", "/zendesk/jwt").await;
    let claims = verify(body["jwt"].as_str().unwrap());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
}

#[tokio::test]
async fn a_trusted_gateway_names_the_user_and_a_spoofed_header_names_nobody() {
    let trusted = World::start(|config| {
        config.identity.source = tether::config::IdentitySource::Header;
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let response = trusted
        .client
        .get(trusted.url("/zendesk/jwt"))
        .header("x-authenticated-user", "carol")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        verify(body["jwt"].as_str().unwrap())["external_id"],
        "carol"
    );

    let untrusted = World::start(|config| {
        config.identity.source = tether::config::IdentitySource::Header;
        config.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    for path in ["/zendesk/jwt", "/intercom/settings", "/salesforce/jwt"] {
        let response = untrusted
            .client
            .get(untrusted.url(path))
            .header("x-authenticated-user", "mallory")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            401,
            "{path}: a spoofed header names nobody"
        );
    }
}
