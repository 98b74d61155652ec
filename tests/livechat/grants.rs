//! The agent token's lifecycle, the cookie grant, and durability of the mapping across restarts.

use crate::World;
use reqwest::Method;
use tether::testing::store::{CustomerRecord, FileStore, Store};

#[tokio::test]
async fn revoked_agent_token_is_refreshed_once_and_rotation_is_persisted() {
    let world = World::start(|_| {}).await;
    world.token(Method::GET, "alice").await;
    assert_eq!(
        world
            .sandbox
            .counters()
            .agent_refreshes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // LiveChat answers a dead agent token with `401 identity_exception`, the same answer as for
    // an unknown customer: a returning user's fresh token must not be called unknown.
    world.sandbox.revoke_agent_tokens();
    let alice = world.token(Method::POST, "alice").await;
    assert_eq!(
        world
            .sandbox
            .counters()
            .agent_refreshes
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    world.sandbox.revoke_agent_tokens();
    world.token(Method::GET, "bob").await;
    assert_eq!(
        world
            .sandbox
            .counters()
            .agent_refreshes
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(world.sandbox.customers_created(), 2);
    assert_eq!(
        world
            .sandbox
            .owner_of(alice["accessToken"].as_str().unwrap()),
        alice["entityId"].as_str().map(str::to_string)
    );
}

#[tokio::test]
async fn cookie_grant_round_trip_keeps_one_customer() {
    let world = World::start(|c| {
        c.livechat.grant = tether::config::LiveChatGrant::Cookie;
        c.livechat.redirect_uri = "https://www.example.com/".into();
    })
    .await;
    let first = world.token(Method::GET, "erin").await;
    // Each fresh token presents the stored cookies; the sandbox rotates __lc_cst every time, so a
    // stale secret would be refused (401 identity_exception).
    for _ in 0..3 {
        let fresh = world.token(Method::POST, "erin").await;
        assert_eq!(fresh["entityId"], first["entityId"]);
    }
    assert_eq!(world.sandbox.customers_created(), 1);
    assert_eq!(world.sandbox.customer_token_calls(), 4);
    assert_eq!(
        world
            .sandbox
            .counters()
            .agent_refreshes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn mappings_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.db");
    let sandbox = tether_sandbox::livechat::SandboxAccounts::start(Default::default())
        .await
        .unwrap();
    let mut entities = Vec::new();
    for round in 0..2 {
        let certs = crate::support::TestCerts::new();
        let app = crate::support::backend::Backend::start().await;
        let mut config = crate::support::config_for(app.addr, &certs);
        crate::support::enable_livechat(&mut config, &sandbox);
        config.store.kind = tether::config::StoreKind::File;
        config.store.path = path.clone();
        let tether = crate::support::TestTether::start(config).await;
        let client = certs.client();
        let mut seen = Vec::new();
        for user in ["alice", "bob", "carol"] {
            let response = client
                .get(format!("{}/.tether/livechat/token", tether.https))
                .header("cookie", format!("session={user}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "round {round}");
            let token: serde_json::Value = response.json().await.unwrap();
            seen.push(token["entityId"].as_str().unwrap().to_string());
        }
        entities.push(seen);
        let report = tether.running.unwrap().shutdown().await;
        assert!(report.drained);
    }
    assert_eq!(
        entities[0], entities[1],
        "every entity id survived the restart"
    );
    assert_eq!(sandbox.customers_created(), 3);
}

#[tokio::test]
async fn a_recorded_customer_livechat_does_not_know_is_an_error_not_a_new_customer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.db");
    {
        let store = FileStore::open(&path).unwrap();
        let bogus = CustomerRecord {
            entity_id: "00000000-dead-4000-8000-000000000000".into(),
            cookie_secret: None,
            created_at_ms: None,
        };
        store
            .insert_customer_if_absent("frank", bogus)
            .await
            .unwrap();
    }
    let world = World::start(move |c| {
        c.store.kind = tether::config::StoreKind::File;
        c.store.path = path;
    })
    .await;
    let response = world.request(Method::GET, Some("frank")).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"livechat_customer_unknown"}"#
    );
    assert_eq!(
        world.sandbox.customers_created(),
        0,
        "no second customer was created"
    );
    assert!(world
        .tether
        .metrics()
        .await
        .contains("tether_livechat_unknown_customers_total 1"));
}

#[tokio::test]
async fn customer_name_and_email_follow_the_app_and_are_sent_only_on_change() {
    let world = World::start(|_| {}).await;
    let alice = world.token(Method::GET, "alice").await;
    crate::support::wait_until(
        "alice's profile reaches LiveChat",
        std::time::Duration::from_secs(5),
        || async { !world.sandbox.metadata().is_empty() },
    )
    .await;
    assert_eq!(
        world.sandbox.metadata()[0],
        serde_json::json!({ "id": alice["entityId"], "name": "User alice", "email": "alice@example.com" })
    );
    // Unchanged: alice's repeated and fresh tokens send nothing; bob's first token sends his.
    world.token(Method::GET, "alice").await;
    world.token(Method::POST, "alice").await;
    let bob = world.token(Method::GET, "bob").await;
    crate::support::wait_until(
        "bob's profile reaches LiveChat",
        std::time::Duration::from_secs(5),
        || async { world.sandbox.metadata().len() >= 2 },
    )
    .await;
    let metadata = world.sandbox.metadata();
    assert_eq!(metadata.len(), 2, "{metadata:?}");
    assert_eq!(metadata[1]["id"], bob["entityId"]);
}

#[tokio::test]
async fn cookie_grant_updates_the_profile_with_the_customer_token() {
    let world = World::start(|c| {
        c.livechat.grant = tether::config::LiveChatGrant::Cookie;
        c.livechat.redirect_uri = "https://www.example.com/".into();
    })
    .await;
    world.token(Method::GET, "erin").await;
    crate::support::wait_until(
        "erin's profile reaches LiveChat",
        std::time::Duration::from_secs(5),
        || async { !world.sandbox.metadata().is_empty() },
    )
    .await;
    assert_eq!(
        world.sandbox.metadata()[0],
        serde_json::json!({ "name": "User erin", "email": "erin@example.com" })
    );
}

/// Profile sync without `customers:rw`: tokens still work, /readyz warns, and a user whose
/// update failed is not sent again on every token request.
#[tokio::test]
async fn profile_sync_without_customers_rw_warns_and_backs_off() {
    let sandbox = tether_sandbox::livechat::SandboxConfig {
        agent_scope: "customers:own".into(),
        ..Default::default()
    };
    let world = crate::World::start_with_sandbox(sandbox, |_| {}).await;
    world.token(Method::GET, "alice").await;
    let refusals = || {
        world
            .sandbox
            .counters()
            .chat_api_refusals
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    crate::support::wait_until(
        "alice's update is refused",
        std::time::Duration::from_secs(5),
        || async { refusals() >= 1 },
    )
    .await;
    for _ in 0..5 {
        world.token(Method::POST, "alice").await;
    }
    world.token(Method::GET, "bob").await;
    crate::support::wait_until(
        "bob's update is refused",
        std::time::Duration::from_secs(5),
        || async { refusals() >= 2 },
    )
    .await;
    assert_eq!(refusals(), 2, "one failed call per user, then a back-off");
    assert!(world.sandbox.metadata().is_empty());
    let ready = reqwest::get(format!("{}/readyz", world.tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "tokens are still minted");
    let report: serde_json::Value = ready.json().await.unwrap();
    let warning = report["warnings"]["livechat_profiles"].as_str().unwrap();
    assert!(warning.contains("customers:rw"), "{report}");
}

/// A license in another region: the Chat API says `misdirected_request` with the region, the
/// update goes once more to the regional host, and later updates go there directly.
#[tokio::test]
async fn profile_updates_follow_the_licenses_region() {
    let sandbox = tether_sandbox::livechat::SandboxConfig {
        region: Some("fra".into()),
        ..Default::default()
    };
    let world = crate::World::start_with_sandbox(sandbox, |_| {}).await;
    world.token(Method::GET, "alice").await;
    world.token(Method::GET, "bob").await;
    crate::support::wait_until(
        "both profiles reach LiveChat",
        std::time::Duration::from_secs(5),
        || async { world.sandbox.metadata().len() >= 2 },
    )
    .await;
    let misdirected = world
        .sandbox
        .counters()
        .chat_api_refusals
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        misdirected <= 2,
        "the region is remembered after LiveChat names it ({misdirected} misdirected calls)"
    );
    world.token(Method::GET, "carol").await;
    crate::support::wait_until(
        "carol's profile reaches LiveChat",
        std::time::Duration::from_secs(5),
        || async { world.sandbox.metadata().len() >= 3 },
    )
    .await;
    assert_eq!(
        world
            .sandbox
            .counters()
            .chat_api_refusals
            .load(std::sync::atomic::Ordering::Relaxed),
        misdirected,
        "carol's update went straight to the regional host"
    );
}
