//! Headless Chromium, driven over the DevTools protocol, on pages where users change without a
//! page load (single-page apps), and on pages that carry a vendor's own snippet. The widgets
//! are the sandbox's stand-ins, which behave as the vendors' scripts do (they destroy
//! themselves on an identity mismatch, reconnect for ever after a rejection, throw without
//! LivePerson's monitor snippet).

use crate::browser::world;
use crate::support::browser::Browser;
use crate::World;
use serde_json::Value;

/// The sandbox's verdict: the customer `token` was issued to.
async fn owner(world: &World, token: &str) -> Option<String> {
    world.sandbox.owner_of(token)
}

/// Signs `user` in (or out, with "") without leaving the page, as a single-page app does.
async fn switch_user(browser: &mut Browser, user: &str) {
    browser
        .eval(&format!(
            "fetch('/login?user={user}&next=%2Fjson', {{credentials: 'same-origin'}}).then(r => r.text()).then(() => true)"
        ))
        .await;
}

/// Every token the stand-in widget was handed belongs to the customer its session logged in
/// as: nobody's session ever got another person's token.
async fn assert_tokens_stay_with_their_sessions(world: &World, log: &Value) {
    let sessions = log["sessions"].as_array().unwrap();
    for token in log["tokens"].as_array().unwrap() {
        let session = &sessions[token["session"].as_u64().unwrap() as usize - 1];
        let issued_to = owner(world, token["accessToken"].as_str().unwrap()).await;
        assert_eq!(
            issued_to.as_deref(),
            token["entityId"].as_str(),
            "a token handed over as someone else's: {log}"
        );
        if let Some(entity) = session["entity"].as_str() {
            assert_eq!(
                token["entityId"], entity,
                "a session got another customer's token: {log}"
            );
        }
    }
}

#[tokio::test]
async fn livechat_follows_users_through_a_single_page_app() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("").await;
    browser
        .goto(&format!(
            "{}/login?user=alice&next=%2Fspa",
            world.tether.https
        ))
        .await;
    let alice = browser
        .wait_for(
            "alice's widget",
            "__sandboxLiveChat.state === 'verified' && __sandboxLiveChat.entity",
        )
        .await;

    // Bob takes over the tab without a page load; the widget's socket drops and it logs in
    // again. LiveChat's widget would destroy itself for good if handed bob's token in alice's
    // session: Tether starts it again for bob instead.
    switch_user(&mut browser, "bob").await;
    browser.eval("__sandboxLiveChat.reconnect()").await;
    let bob = browser
        .wait_for(
            "bob's widget",
            &format!(
                "__sandboxLiveChat.state === 'verified' && __sandboxLiveChat.entity !== {alice} && __sandboxLiveChat.entity"
            ),
        )
        .await;

    // Alice again, the same way: her own customer.
    switch_user(&mut browser, "alice").await;
    browser.eval("__sandboxLiveChat.reconnect()").await;
    browser
        .wait_for(
            "alice's widget again",
            &format!(
                "__sandboxLiveChat.state === 'verified' && __sandboxLiveChat.entity === {alice}"
            ),
        )
        .await;

    // The app's logout: Tether's logout stops the widget; nothing polls afterwards.
    browser
        .eval("TetherLiveChat.logout().then(() => true)")
        .await;
    switch_user(&mut browser, "").await;
    browser
        .wait_for(
            "the widget stopped",
            "__sandboxLiveChat.state === 'destroyed' && __sandboxLiveChat.pendingReconnect !== true",
        )
        .await;

    let log = browser.eval("__sandboxLiveChat").await;
    assert!(
        log["destroyedFor"].is_null(),
        "never an identity mismatch: {log}"
    );
    assert_ne!(alice, bob);
    let entities: Vec<&Value> = log["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["entity"])
        .collect();
    assert_eq!(entities, vec![&alice, &bob, &alice], "{log}");
    assert_eq!(log["loads"], 3, "tracking.js once per session: {log}");
    assert_tokens_stay_with_their_sessions(&world, &log).await;
    let stored = browser
        .eval("JSON.stringify(Object.assign({}, sessionStorage))")
        .await;
    assert!(
        !stored.as_str().unwrap().contains("dal:"),
        "no token is left in the tab after logout: {stored}"
    );
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}

#[tokio::test]
async fn a_session_that_ends_elsewhere_stops_the_widget_instead_of_polling() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("").await;
    browser
        .goto(&format!(
            "{}/login?user=carol&next=%2Fspa",
            world.tether.https
        ))
        .await;
    browser
        .wait_for("carol's widget", "__sandboxLiveChat.state === 'verified'")
        .await;
    // The app's session expires (no logout call on the page); the widget reconnects, Tether
    // says nobody is signed in: a rejected getToken() alone would have it reconnect for ever.
    switch_user(&mut browser, "").await;
    browser.eval("__sandboxLiveChat.reconnect()").await;
    let log = browser
        .wait_for(
            "the widget stopped",
            "__sandboxLiveChat.state === 'destroyed' && __sandboxLiveChat.pendingReconnect !== true && __sandboxLiveChat",
        )
        .await;
    assert_eq!(log["reconnects"], 0, "{log}");
}

#[tokio::test]
async fn the_widget_api_exists_at_once_and_the_pages_own_snippet_waits_for_the_provider() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("").await;
    // Whether someone is signed in is not known from the page (no session cookie configured):
    // the page's own script still finds the widget's API and the account at once.
    browser
        .goto(&format!(
            "{}/login?user=dave&next=%2Fspa",
            world.tether.https
        ))
        .await;
    let saw = browser.eval("window.pageSaw").await;
    assert_eq!(saw["api"], true, "{saw}");
    assert_eq!(saw["account"], true, "{saw}");
    assert_eq!(saw["queue"], true, "{saw}");
    browser
        .wait_for("dave's widget", "__sandboxLiveChat.state === 'verified'")
        .await;

    // A page that carries LiveChat's own snippet after Tether's tag: the widget is loaded
    // once, and only after the identity provider is set.
    let widget = format!("{}/sandbox/widget/livechat.js", world.sandbox.url());
    let widget = percent_encoding::utf8_percent_encode(&widget, percent_encoding::NON_ALPHANUMERIC);
    browser
        .goto(&format!(
            "{}/login?user=dave&next={}",
            world.tether.https,
            percent_encoding::utf8_percent_encode(
                &format!("/with-livechat-snippet?widget={widget}"),
                percent_encoding::NON_ALPHANUMERIC
            )
        ))
        .await;
    let log = browser
        .wait_for(
            "dave's widget with the page's snippet",
            "__sandboxLiveChat.state === 'verified' && __sandboxLiveChat",
        )
        .await;
    assert_eq!(log["loads"], 1, "tracking.js once: {log}");
}

#[tokio::test]
async fn an_organization_only_account_gets_the_widget() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = World::start(|config| {
        let sandbox = config.livechat.accounts_url.clone();
        config.livechat.license_id = 0;
        config.inject.livechat_widget_src = format!("{sandbox}/sandbox/widget/livechat.js");
    })
    .await;
    browser
        .goto(&format!(
            "{}/login?user=erin&next=%2Fspa",
            world.tether.https
        ))
        .await;
    browser
        .wait_for("erin's widget", "__sandboxLiveChat.state === 'verified'")
        .await;
    let lc = browser.eval("window.__lc").await;
    assert!(lc.get("license").is_none(), "{lc}");
    assert_eq!(
        lc["organizationId"],
        tether_sandbox::livechat::SandboxConfig::default().organization_id
    );
    let token = browser.eval("__sandboxLiveChat.tokens[0]").await;
    assert!(token.get("licenseId").is_none(), "{token}");
}

#[tokio::test]
async fn liveperson_gets_its_monitor_snippet_and_a_synchronous_identity() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let world = world("session").await;
    browser
        .goto(&format!(
            "{}/login?user=frank&next=%2Fspa%3Fidentify%3D1",
            world.tether.https
        ))
        .await;
    let log = browser
        .wait_for(
            "frank's LivePerson",
            "__sandboxLivePerson.state === 'verified' && __sandboxLivePerson",
        )
        .await;
    assert_eq!(log["loads"], 1, "{log}");
    assert_eq!(log["sub"], "frank");
    assert_eq!(
        log["identitySync"], true,
        "the page knew its user: no request before answering the tag: {log}"
    );
    let tag = browser
        .eval("({v: lpTag._v, count: lpTag._tagCount, site: lpTag.site})")
        .await;
    assert_eq!(tag["v"], "1.10.0");
    assert_eq!(tag["count"], 1);
    assert_eq!(tag["site"], "12345678");

    // The single-page app's logout: the tag is told a new page began, and the authenticated
    // conversation ends.
    switch_user(&mut browser, "").await;
    browser.eval("TetherLivePerson.logout()").await;
    let log = browser
        .wait_for(
            "frank's conversation ended",
            "__sandboxLivePerson.state === 'anonymous' && __sandboxLivePerson",
        )
        .await;
    assert_eq!(log["newPages"], 1, "{log}");

    // A page that carries LivePerson's own snippet: the tag still loads once.
    let tag_src = format!("{}/sandbox/widget/lptag.js", world.sandbox.url());
    let next = format!(
        "/with-liveperson-snippet?tag={}",
        percent_encoding::utf8_percent_encode(&tag_src, percent_encoding::NON_ALPHANUMERIC)
    );
    browser
        .goto(&format!(
            "{}/login?user=frank&next={}",
            world.tether.https,
            percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
        ))
        .await;
    let log = browser
        .wait_for(
            "frank's LivePerson with the page's snippet",
            "__sandboxLivePerson.state === 'verified' && __sandboxLivePerson",
        )
        .await;
    assert_eq!(log["loads"], 1, "{log}");
    assert_eq!(browser.eval("lpTag._tagCount").await, 2);
}
