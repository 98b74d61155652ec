//! Headless Chromium on the app's shop page, which has no Tether code: the sandbox's stand-ins
//! for LiveChat's widget and LivePerson's lpTag, loaded by the injected loader, draw bubbles
//! naming the verified customer.

use crate::support::browser::{chromium, page_result};
use crate::World;
use serde_json::{json, Value};

/// Both vendors on the page, their scripts the sandbox's stand-ins.
pub async fn world(session_cookie: &str) -> World {
    let keys = tempfile::tempdir().unwrap().keep();
    let key = keys.join("signing.pem");
    std::fs::write(&key, tether::testing::signing::generate_pem().unwrap()).unwrap();
    let cookie = session_cookie.to_string();
    World::start(move |config| {
        let lp = &mut config.liveperson;
        lp.enabled = true;
        lp.client_id = "liveperson-client".into();
        lp.client_secret = tether::redact::Secret::new("s3cret+s3cret/s3cret=");
        lp.signing_key = key;
        let sandbox = config.livechat.accounts_url.clone();
        let inject = &mut config.inject;
        inject.liveperson = true;
        inject.liveperson_site_id = "12345678".into();
        inject.livechat_widget_src = format!("{sandbox}/sandbox/widget/livechat.js");
        inject.liveperson_tag_src = format!("{sandbox}/sandbox/widget/lptag.js");
        inject.session_cookie = cookie;
    })
    .await
}

/// Runs the plan in one browser tab; one result per step.
async fn run(world: &World, chromium: &'static str, plan: Value) -> Vec<Value> {
    let plan = plan.to_string();
    let plan = percent_encoding::utf8_percent_encode(&plan, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{}/start#{plan}", world.tether.https);
    let result = page_result(chromium, url).await;
    result.as_array().expect("a list of results").clone()
}

async fn owner(world: &World, token: &Value) -> String {
    let url = format!(
        "{}/sandbox/token-owner?token={}",
        world.sandbox.url(),
        token.as_str().unwrap()
    );
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    answer["entity_id"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn users_on_one_browser_each_see_their_own_customer() {
    let Some(chromium) = chromium() else { return };
    let world = world("").await;
    let plan = json!([
        {"login": "alice", "page": "/shop"},
        {"login": "bob", "page": "/shop"},
        {"login": "alice", "page": "/shop"},
        {"login": "", "page": "/shop"},
    ]);
    let results = run(&world, chromium, plan).await;
    assert_eq!(results.len(), 4, "{results:?}");
    let (alice, bob, alice_again, nobody) = (&results[0], &results[1], &results[2], &results[3]);
    for (who, result) in [("alice", alice), ("bob", bob), ("alice again", alice_again)] {
        assert_eq!(result["injected"], true, "{who}: {result}");
        assert_eq!(result["livechat"], "verified", "{who}: {result}");
        assert_eq!(result["liveperson"], "verified", "{who}: {result}");
        for token in result["tokens"].as_array().unwrap() {
            assert_eq!(
                owner(&world, token).await,
                result["entity"],
                "{who}: a foreign token"
            );
        }
    }
    assert_ne!(alice["entity"], bob["entity"]);
    assert_eq!(
        alice["entity"], alice_again["entity"],
        "alice keeps her customer"
    );
    assert_ne!(alice["sub"], bob["sub"]);
    let alice_tokens = alice["tokens"].as_array().unwrap();
    assert!(
        bob["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !alice_tokens.contains(t)),
        "bob was handed alice's token"
    );
    assert_eq!(nobody["livechat"], "anonymous", "{nobody}");
    assert_eq!(nobody["liveperson"], "anonymous", "{nobody}");
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "alice and bob, once each"
    );
}

#[tokio::test]
async fn anonymous_visitors_cost_the_app_no_probe() {
    let Some(chromium) = chromium() else { return };
    let world = world("session").await;
    let results = run(
        &world,
        chromium,
        json!([{"page": "/shop"}, {"page": "/shop"}]),
    )
    .await;
    for result in &results {
        assert_eq!(result["injected"], true, "{result}");
        assert_eq!(result["livechat"], "anonymous", "{result}");
        assert_eq!(result["liveperson"], "anonymous", "{result}");
    }
    assert_eq!(
        world.app.count("/whoami"),
        0,
        "no probe for a visitor without a session"
    );
    assert_eq!(world.sandbox.customers_created(), 0);
}

#[tokio::test]
async fn csp_nonce_and_compressed_pages_in_the_browser() {
    let Some(chromium) = chromium() else { return };
    let world = world("session").await;
    // One browser per page: see `app::START` on multi-page plans that do not log in each time.
    let mut entities = Vec::new();
    // `pad=1`: a long gzipped page, spliced with a tail of the app's bytes (`splice`).
    for page in [
        "/shop?csp=nonce",
        "/shop?encode=gzip",
        "/shop?encode=gzip&pad=1",
        "/shop?encode=br",
    ] {
        let results = run(&world, chromium, json!([{"login": "carol", "page": page}])).await;
        let result = &results[0];
        assert_eq!(result["livechat"], "verified", "{page}: {result}");
        assert_eq!(result["liveperson"], "verified", "{page}: {result}");
        entities.push(result["entity"].clone());
    }
    assert!(entities.iter().all(|e| *e == entities[0]), "{entities:?}");
}
