//! Zendesk, Intercom and Salesforce in headless Chromium, on the app's page with no Tether code:
//! alice, bob, alice again and nobody on one browser, each vendor's widget the sandbox's
//! stand-in, which verifies what it is handed with WebCrypto and keeps its session across page
//! loads as the real widget does. At each step the test reads what the widget was told.

use crate::support::browser::Browser;
use crate::World;
use serde_json::Value;
use tether_sandbox::widgets::WidgetAccounts;

/// The three vendors on (only the one under test injected), their widgets the stand-ins.
async fn world(vendor: &str) -> World {
    world_with(vendor, |_| {}).await
}

/// The same, then `configure`.
pub async fn world_with(
    vendor: &str,
    configure: impl FnOnce(&mut tether::Config) + Send + 'static,
) -> World {
    let keys = tempfile::tempdir().unwrap().keep();
    let key = keys.join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let vendor = vendor.to_string();
    World::start(move |config| {
        let accounts = WidgetAccounts::default();
        let sandbox = config.livechat.accounts_url.clone();
        config.signing.key = Some(key);
        config.zendesk.enabled = true;
        config.zendesk.key_id = accounts.zendesk.key_id;
        config.zendesk.secret = tether::redact::Secret::new(accounts.zendesk.secret);
        config.intercom.enabled = true;
        config.intercom.app_id = accounts.intercom.app_id;
        config.intercom.secret = tether::redact::Secret::new(accounts.intercom.secret);
        config.salesforce.enabled = true;
        let inject = &mut config.inject;
        inject.livechat = false;
        match vendor.as_str() {
            "zendesk" => {
                inject.zendesk = true;
                inject.zendesk_snippet_key = accounts.zendesk.widget_key;
                inject.zendesk_snippet_src = format!("{sandbox}/sandbox/widget/zendesk.js");
            }
            "intercom" => {
                inject.intercom = true;
                inject.intercom_widget_src = format!("{sandbox}/sandbox/widget/intercom.js");
            }
            _ => {
                inject.salesforce = true;
                // The deployment's own bootstrap snippet, as a brand pastes it.
                inject.extra_html = format!(
                    "<script src=\"{sandbox}/sandbox/widget/salesforce.js\" \
                     onload=\"embeddedservice_bootstrap.init('00D000000000001', 'Web', \
                     'https://brand.my.site.com/ESWWeb', {{}})\"></script>"
                );
            }
        }
        configure(config);
    })
    .await
}

/// Signs `user` in ("" signs out) through the app's login, landing on its page.
pub async fn visit_as(browser: &mut Browser, world: &World, user: &str) {
    browser
        .goto(&format!(
            "{}/login?user={user}&next=%2Fspa",
            world.tether.https
        ))
        .await;
}

#[tokio::test]
async fn zendesk_logs_each_user_in_and_the_last_one_out() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("zendesk").await;
    let settled = |user: &str| {
        format!(
            "__sandboxZendesk.shown.length > 1 && __sandboxZendesk.shown[__sandboxZendesk.shown.length - 1] === {} && __sandboxZendesk",
            if user.is_empty() { "null".to_string() } else { format!("'{user}'") }
        )
    };

    visit_as(&mut browser, &world, "alice").await;
    let alice = browser.wait_for("alice logged in", &settled("alice")).await;
    assert_eq!(alice["logins"], serde_json::json!(["alice"]), "{alice}");
    assert_eq!(alice["logouts"], 0);
    // The widget asks again when its token runs out: a fresh token from Tether.
    browser.eval("__sandboxZendesk.expire()").await;
    let renewed = browser
        .wait_for(
            "alice's renewal",
            "__sandboxZendesk.logins.length === 2 && __sandboxZendesk",
        )
        .await;
    assert_eq!(renewed["logins"], serde_json::json!(["alice", "alice"]));
    assert_eq!(renewed["jwtRequests"], 2);

    // bob: the widget resumes alice's session at load; Tether logs it out before bob logs in.
    visit_as(&mut browser, &world, "bob").await;
    let bob = browser.wait_for("bob logged in", &settled("bob")).await;
    assert_eq!(bob["logins"], serde_json::json!(["bob"]), "{bob}");
    assert_eq!(bob["logouts"], 1, "alice's session ended first: {bob}");

    visit_as(&mut browser, &world, "alice").await;
    let again = browser.wait_for("alice again", &settled("alice")).await;
    assert_eq!(again["logins"], serde_json::json!(["alice"]), "{again}");
    assert_eq!(again["logouts"], 1);

    visit_as(&mut browser, &world, "").await;
    let nobody = browser.wait_for("nobody", &settled("")).await;
    assert_eq!(nobody["logins"], serde_json::json!([]), "{nobody}");
    assert_eq!(
        nobody["logouts"], 1,
        "the last user's session ended: {nobody}"
    );
    for step in [&alice, &bob, &again, &nobody] {
        assert_eq!(step["conflicts"], 0, "{step}");
        assert_eq!(step["refused"], serde_json::json!([]), "{step}");
    }
}

/// The Messenger's state once it has booted: (state, user).
async fn messenger(browser: &mut Browser, what: &str, state: &str) -> Value {
    browser
        .wait_for(
            what,
            &format!("__sandboxIntercom.state === '{state}' && __sandboxIntercom"),
        )
        .await
}

#[tokio::test]
async fn intercom_boots_each_user_and_never_resumes_the_last_one() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("intercom").await;
    visit_as(&mut browser, &world, "alice").await;
    let alice = messenger(&mut browser, "alice's Messenger", "verified").await;
    assert_eq!(alice["user"], "alice");
    assert_eq!(alice["boots"], serde_json::json!(["alice"]));
    // A single-page app's identified update carries fresh values: Intercom accepts it.
    browser
        .eval("TetherIntercom.update({plan: 'pro'}).then(() => true)")
        .await;
    assert_eq!(browser.eval("__sandboxIntercom.updates").await, 1);

    // bob on alice's browser: Tether expired alice's session cookie before the Messenger
    // booted, so it boots bob's.
    visit_as(&mut browser, &world, "bob").await;
    let bob = messenger(&mut browser, "bob's Messenger", "verified").await;
    assert_eq!(bob["user"], "bob", "{bob}");

    visit_as(&mut browser, &world, "alice").await;
    let again = messenger(&mut browser, "alice's Messenger again", "verified").await;
    assert_eq!(again["user"], "alice");

    // Logged out: the Messenger boots anonymous; without Tether it would resume alice's
    // conversations from her session cookie.
    visit_as(&mut browser, &world, "").await;
    let nobody = messenger(&mut browser, "the anonymous Messenger", "anonymous").await;
    assert_eq!(nobody["user"], Value::Null, "{nobody}");
    for step in [&alice, &bob, &again, &nobody] {
        assert_eq!(step["refused"], serde_json::json!([]), "{step}");
    }

    // A single-page app's user switch: shutdown, then boot for the next user.
    visit_as(&mut browser, &world, "alice").await;
    messenger(&mut browser, "alice's Messenger", "verified").await;
    browser
        .eval("fetch('/login?user=bob&next=%2Fjson', {credentials: 'same-origin'}).then(() => TetherIntercom.update()).then(() => true)")
        .await;
    let switched = browser
        .wait_for(
            "bob after the switch",
            "__sandboxIntercom.user === 'bob' && __sandboxIntercom.state === 'verified' && __sandboxIntercom",
        )
        .await;
    assert_eq!(switched["shutdowns"], 1, "{switched}");
    assert_eq!(switched["refused"], serde_json::json!([]), "{switched}");
}

#[tokio::test]
async fn salesforce_verifies_each_user_and_clears_the_last_ones_session() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("salesforce").await;
    let verified =
        |user: &str| format!("__sandboxSalesforce.user === '{user}' && __sandboxSalesforce");
    visit_as(&mut browser, &world, "alice").await;
    let alice = browser.wait_for("alice verified", &verified("alice")).await;
    assert_eq!(alice["tokens"], serde_json::json!(["alice"]), "{alice}");
    assert_eq!(alice["cleared"], 0);
    // The token runs out: within the 30-second window Tether hands a new one.
    browser.eval("__sandboxSalesforce.expire()").await;
    let renewed = browser
        .wait_for(
            "alice renewed",
            "__sandboxSalesforce.tokens.length === 2 && __sandboxSalesforce",
        )
        .await;
    assert_eq!(renewed["tokens"], serde_json::json!(["alice", "alice"]));
    assert_eq!(renewed["cleared"], 0);

    visit_as(&mut browser, &world, "bob").await;
    let bob = browser.wait_for("bob verified", &verified("bob")).await;
    assert_eq!(bob["tokens"], serde_json::json!(["bob"]), "{bob}");
    assert_eq!(bob["cleared"], 1, "alice's session cleared first: {bob}");

    visit_as(&mut browser, &world, "alice").await;
    let again = browser.wait_for("alice again", &verified("alice")).await;
    assert_eq!(again["tokens"], serde_json::json!(["alice"]));
    assert_eq!(again["cleared"], 1);

    visit_as(&mut browser, &world, "").await;
    let nobody = browser
        .wait_for(
            "the session cleared",
            "__sandboxSalesforce.cleared === 1 && __sandboxSalesforce.user === null && __sandboxSalesforce",
        )
        .await;
    assert_eq!(nobody["tokens"], serde_json::json!([]), "{nobody}");
    for step in [&alice, &bob, &again, &nobody] {
        assert_eq!(step["refused"], serde_json::json!([]), "{step}");
    }
}
