//! The served provider script in a real browser (headless Chromium), called the way LiveChat's
//! Customer SDK calls it, with users switching on one browser.

use crate::support::browser::{chromium, page_result};
use crate::World;

#[tokio::test]
async fn provider_script_behaves_like_the_customer_sdk_expects() {
    let Some(chromium) = chromium() else { return };
    let world = World::start(|_| {}).await;
    let result = page_result(chromium, format!("{}/page/sdk.html", world.tether.https)).await;
    let expect = |name: &str, value: bool| {
        assert_eq!(result[name], value, "{name} in {result}");
    };
    expect("anonymousRejects", true);
    expect("hasTokenAnonymous", false);
    expect("hasTokenBefore", false);
    expect("hasTokenAfter", true);
    expect("units", true);
    expect("cloneable", true);
    expect("cachedKeepsCreationDate", true);
    expect("moreThanAnHourLeft", true);
    expect("invalidateReturnsPromise", true);
    expect("hasTokenAfterInvalidate", false);
    expect("freshIsNew", true);
    expect("freshSameEntity", true);
    expect("bobHasHisOwnCustomer", true);
    expect("noAliceTokenStoredForBob", true);
    expect("aliceKeepsHerCustomer", true);
    expect("aliceNeverGetsBobsToken", true);
    expect("hasTokenAfterLogout", false);
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}

/// LiveChat's own customer SDK, installed from npm (the version pinned in
/// tests/browser/package-lock.json) by the first test that needs it. False when npm is missing
/// (a failure under CI=true).
fn customer_sdk_installed() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let sdk = dir.join("node_modules/@livechat/customer-sdk/dist/customer-sdk.js");
    if sdk.exists() {
        return true;
    }
    let under_ci = std::env::var("CI").as_deref() == Ok("true");
    let installed = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status();
    match installed {
        Ok(status) if status.success() && sdk.exists() => true,
        Ok(status) => panic!("npm ci --prefix tests/browser failed: {status}"),
        Err(error) => {
            assert!(
                !under_ci,
                "npm is needed to install LiveChat's customer SDK: {error}"
            );
            eprintln!("SKIPPED: npm is not on PATH ({error}); LiveChat's customer SDK is needed");
            false
        }
    }
}

/// LiveChat's real customer SDK (4.0.2) with Tether's identity provider, its RTM server
/// imitated in the page: alice, then bob on the same tab without a page load (the socket drops
/// and the SDK logs in again), alice again after a page load, then logged out. The SDK itself
/// checks every login's customer against the session's (IDENTITY_MISMATCH); nobody ever logs
/// in with another's token, and nothing is left behind.
#[tokio::test]
async fn livechats_customer_sdk_follows_users_on_one_browser() {
    if !customer_sdk_installed() {
        return;
    }
    let Some(mut browser) = crate::support::browser::Browser::start().await else {
        return;
    };
    let world = World::start(|_| {}).await;
    let page = format!(
        "{}/page/livechat-sdk.html?sandbox={}&organization={}",
        world.tether.https,
        world.sandbox.url(),
        tether_sandbox::livechat::SandboxConfig::default().organization_id
    );
    let sign_in = |user: &str| format!("document.cookie = 'session={user}; path=/'; true");
    // Signed in before the page loads.
    browser.goto(&world.tether.https).await;
    browser.eval(&sign_in("alice")).await;
    browser.goto(&page).await;
    let alice = browser
        .wait_for(
            "alice connected",
            "widget.current && widget.current.record.state === 'connected' && widget.current.record.customer",
        )
        .await;

    // Bob on the same tab, no page load: the connection drops and the SDK logs in again.
    browser.eval(&sign_in("bob")).await;
    browser.eval("widget.drop(); true").await;
    let bob = browser
        .wait_for(
            "bob connected",
            &format!(
                "widget.current && widget.current.record.state === 'connected' && widget.current.record.customer !== {alice} && widget.current.record.customer"
            ),
        )
        .await;
    let first_tab = browser.eval("({widget: widget, logins: rtm.logins})").await;

    // Alice again, after a page load (the tab's sessionStorage stays).
    browser.eval(&sign_in("alice")).await;
    browser.goto(&page).await;
    browser
        .wait_for(
            "alice connected again",
            &format!(
                "widget.current && widget.current.record.state === 'connected' && widget.current.record.customer === {alice}"
            ),
        )
        .await;

    // Logged out: Tether's logout ends the session; nothing polls.
    browser
        .eval("TetherLiveChat.logout().then(() => { document.cookie = 'session=; path=/; max-age=0'; return true; })")
        .await;
    browser
        .wait_for("the session ended", "widget.current === null")
        .await;
    let second_tab = browser.eval("({widget: widget, logins: rtm.logins})").await;
    let stored = browser
        .eval("JSON.stringify(Object.assign({}, sessionStorage))")
        .await;

    assert_ne!(alice, bob);
    for tab in [&first_tab, &second_tab] {
        let sessions = tab["widget"]["sessions"].as_array().unwrap();
        for session in sessions {
            assert!(
                !session["state"]
                    .as_str()
                    .unwrap()
                    .contains("identity_mismatch"),
                "the SDK saw another user's customer: {tab}"
            );
        }
        for login in tab["logins"].as_array().unwrap() {
            let session = &sessions[login["session"].as_u64().unwrap() as usize - 1];
            assert_eq!(
                world
                    .sandbox
                    .owner_of(login["token"].as_str().unwrap())
                    .as_deref(),
                login["entity"].as_str(),
            );
            if let Some(customer) = session["customer"].as_str() {
                assert_eq!(
                    login["entity"], customer,
                    "a login with another's token: {tab}"
                );
            }
        }
    }
    let customers: Vec<&serde_json::Value> = first_tab["widget"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["customer"])
        .collect();
    assert_eq!(customers, vec![&alice, &bob], "{first_tab}");
    assert!(!stored.as_str().unwrap().contains("dal:"), "{stored}");
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}
