//! Where the user comes from, in headless Chromium, with no app change: an app that has only its
//! own JSON `/api/me`, and one behind a stand-in Cloudflare Access that puts its signed assertion
//! on every request. The Zendesk stand-in shows whom each page's widget was told about.

use crate::chat_vendors::{visit_as, world_with};
use crate::support::browser::Browser;
use crate::support::issuer::{claims, Issuer, TestKey};
use jsonwebtoken::Algorithm;

/// The widget once it shows `user` (None: anonymous).
async fn shown(browser: &mut Browser, user: Option<&str>) -> serde_json::Value {
    let expected = user.map_or("null".to_string(), |user| format!("'{user}'"));
    browser
        .wait_for(
            &format!("the widget for {expected}"),
            &format!(
                "__sandboxZendesk.shown.length > 0 && __sandboxZendesk.shown[__sandboxZendesk.shown.length - 1] === {expected} && __sandboxZendesk"
            ),
        )
        .await
}

#[tokio::test]
async fn an_app_with_only_a_json_who_am_i_gets_the_right_widget() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world_with("zendesk", |config| {
        let identity = &mut config.identity;
        identity.probe_path = "/api/me".into();
        identity.probe_json_user = "/me/login".into();
        identity.probe_json_name = "/me/display".into();
    })
    .await;
    visit_as(&mut browser, &world, "alice").await;
    let alice = shown(&mut browser, Some("alice")).await;
    assert_eq!(alice["logins"], serde_json::json!(["alice"]));
    visit_as(&mut browser, &world, "bob").await;
    shown(&mut browser, Some("bob")).await;
    visit_as(&mut browser, &world, "").await;
    shown(&mut browser, None).await;
}

#[tokio::test]
async fn a_page_behind_cloudflare_access_gets_the_gateways_user() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let key = TestKey::new(Algorithm::RS256, "cf-2026");
    let issuer = Issuer::start(&[&key]).await;
    let jwks = issuer.jwks_url();
    let world = world_with("zendesk", move |config| {
        let identity = &mut config.identity;
        identity.source = tether::config::IdentitySource::Jwt;
        identity.jwt_preset = Some(tether::config::JwtPreset::CloudflareAccess);
        identity.jwt_team = "shop".into();
        identity.jwt_audience = crate::support::issuer::AUDIENCE.into();
        // The stand-in's keys and issuer instead of shop.cloudflareaccess.com's.
        identity.jwks_url = jwks;
        identity.jwt_issuer = crate::support::issuer::ISSUER.into();
    })
    .await;
    let page = format!("{}/spa", world.tether.https);
    // The gateway signs alice in: the app itself knows nobody (no session cookie at all).
    let alice = key.sign(&claims("alice"));
    browser
        .extra_headers(&[("Cf-Access-Jwt-Assertion", &alice)])
        .await;
    browser.goto(&page).await;
    let seen = shown(&mut browser, Some("alice")).await;
    assert_eq!(seen["logins"], serde_json::json!(["alice"]));
    let bob = key.sign(&claims("bob"));
    browser
        .extra_headers(&[("Cf-Access-Jwt-Assertion", &bob)])
        .await;
    browser.goto(&page).await;
    let seen = shown(&mut browser, Some("bob")).await;
    assert_eq!(seen["logouts"], 1, "alice's session ended first");
    // A forged assertion (another key) names nobody: the widget logs bob out.
    let forged = TestKey::new(Algorithm::RS256, "cf-2026").sign(&claims("mallory"));
    browser
        .extra_headers(&[("Cf-Access-Jwt-Assertion", &forged)])
        .await;
    browser.goto(&page).await;
    let seen = shown(&mut browser, None).await;
    assert_eq!(seen["logins"], serde_json::json!([]));
}
