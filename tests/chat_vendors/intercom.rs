//! Intercom's values: `intercom_user_jwt` (HS256) or `user_hash` (hex HMAC-SHA256), and the
//! Messenger's session cookie expired when its user went away or changed
//! (docs/vendors/intercom.md).

use crate::{refuses_what_it_must, World};
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use tether_sandbox::widgets::WidgetAccounts;

fn secret() -> String {
    WidgetAccounts::default().intercom.secret
}

#[tokio::test]
async fn jwt_mode_signs_the_user_and_the_attributes() {
    let world = World::start(|_| {}).await;
    let values = world.json_as("alice", "/intercom/settings").await;
    assert_eq!(values["app_id"], WidgetAccounts::default().intercom.app_id);
    assert_eq!(values["user_id"], "alice");
    // Signed attributes are not repeated in the open (as Intercom's own gem does).
    assert!(values.get("email").is_none() && values.get("name").is_none());
    assert!(values.get("user_hash").is_none());
    let jwt = values["intercom_user_jwt"].as_str().unwrap();
    assert_eq!(decode_header(jwt).unwrap().alg, Algorithm::HS256);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
    let claims = decode::<serde_json::Value>(
        jwt,
        &DecodingKey::from_secret(secret().as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["user_id"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "User alice");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    refuses_what_it_must(&world, "/intercom/settings").await;
}

#[tokio::test]
async fn user_hash_mode_is_the_hex_hmac_of_the_user_id() {
    let world =
        World::start(|config| config.intercom.mode = tether::config::IntercomMode::UserHash).await;
    let values = world.json_as("alice", "/intercom/settings").await;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret().as_bytes()).unwrap();
    mac.update(b"alice");
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(values["user_hash"], expected.as_str());
    assert_eq!(values["user_id"], "alice");
    assert_eq!(values["email"], "alice@example.com");
    assert!(values.get("intercom_user_jwt").is_none());
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The marker cookie Tether set for whoever `set` names.
fn marker(set: &[String]) -> String {
    let cookie = set
        .iter()
        .find(|c| c.starts_with("tether_intercom="))
        .expect("the marker is set");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_messenger_session_goes_when_its_user_goes_or_changes() {
    let world = World::start(|config| config.intercom.cookie_domain = "example.com".into()).await;
    let session = format!(
        "intercom-session-{}=alices-session",
        WidgetAccounts::default().intercom.app_id
    );
    // alice's first visit: her Messenger session is marked as hers, nothing cleared.
    let first = world.get_as(Some("alice"), "/intercom/settings", "").await;
    let set = set_cookies(&first);
    assert_eq!(set.len(), 1, "{set:?}");
    let alice = marker(&set);

    // alice again, with her session: nothing to say.
    let again = world
        .get_as(
            Some("alice"),
            "/intercom/settings",
            &format!("{session}; {alice}"),
        )
        .await;
    assert!(set_cookies(&again).is_empty());

    // bob on the same browser: alice's session expires (host and parent domain).
    let bob = world
        .get_as(
            Some("bob"),
            "/intercom/settings",
            &format!("{session}; {alice}"),
        )
        .await;
    let set = set_cookies(&bob);
    let expired: Vec<&String> = set
        .iter()
        .filter(|c| {
            c.starts_with(&format!(
                "intercom-session-{}=;",
                WidgetAccounts::default().intercom.app_id
            ))
        })
        .collect();
    assert_eq!(expired.len(), 2, "{set:?}");
    assert!(expired.iter().all(|c| c.contains("Max-Age=0")));
    assert!(expired[1].contains("Domain=.example.com"));
    assert_ne!(marker(&set), alice);

    // Signed out: 401, the session expires and the marker goes.
    let gone = world
        .get_as(None, "/intercom/settings", &format!("{session}; {alice}"))
        .await;
    assert_eq!(gone.status(), 401);
    let set = set_cookies(&gone);
    assert!(set
        .iter()
        .any(|c| c.starts_with("intercom-session-") && c.contains("Max-Age=0")));
    assert!(set
        .iter()
        .any(|c| c.starts_with("tether_intercom=;") && c.contains("Max-Age=0")));
    assert_eq!(
        world
            .tether
            .metric("tether_intercom_sessions_cleared_total")
            .await,
        2
    );
}
