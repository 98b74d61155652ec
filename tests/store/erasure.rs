//! Erasing one person: `DELETE /users/{user}` on the admin listener and `tether store forget`.

use crate::support::redis_server::RedisServer;
use crate::*;

async fn delete_user(tether: &TestTether, user: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().delete(format!("{}/users/{user}", tether.admin));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_erased_user_gets_a_new_customer_and_the_endpoint_needs_the_admin_token() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let tether = world.tether(&StoreAt::File(dir.path().join("t.db"))).await;
    let before = world.entity(&tether, "alice@example.com").await;
    let bob = world.entity(&tether, "bob").await;

    for token in [None, Some("wrong-token-0123456789")] {
        let refused = delete_user(&tether, "alice%40example.com", token).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(
        world.entity(&tether, "alice@example.com").await,
        before,
        "nothing erased yet"
    );

    let erased = delete_user(&tether, "alice%40example.com", Some(ADMIN_TOKEN)).await;
    assert_eq!(erased.status(), 200);
    assert_eq!(
        erased.json::<serde_json::Value>().await.unwrap()["erased"],
        true
    );
    assert_eq!(tether.metric("tether_store_users_erased_total").await, 1);

    // The cached token went with the mapping: the next login is a new customer.
    let after = world.entity(&tether, "alice@example.com").await;
    assert_ne!(after, before);
    assert_eq!(world.sandbox.customers_created(), 3);
    assert_eq!(
        world.entity(&tether, "bob").await,
        bob,
        "nobody else is touched"
    );

    // Erasing someone with no mapping says so.
    let none = delete_user(&tether, "nobody", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        none.json::<serde_json::Value>().await.unwrap()["erased"],
        false
    );
    stop(tether).await;
}

#[tokio::test]
async fn forget_works_on_the_file_store_with_and_without_a_running_tether() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let tether = world.tether(&StoreAt::File(path.clone())).await;
    let first = world.entity(&tether, "carol").await;
    world.entity(&tether, "dave").await;

    // The running Tether holds the file: the command asks it through the admin listener.
    let config = command_config(
        dir.path(),
        "c.toml",
        &StoreAt::File(path.clone()),
        Some(&tether.admin),
    );
    let (code, _, stderr) = store_command("forget", &config, &["carol"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("through the running Tether"), "{stderr}");
    let second = world.entity(&tether, "carol").await;
    assert_ne!(second, first);

    // Without an admin token to ask with, the command says what to do.
    let tokenless = command_config(dir.path(), "n.toml", &StoreAt::File(path.clone()), None);
    let (code, _, stderr) = store_command("forget", &tokenless, &["dave"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("server.admin_token"), "{stderr}");

    // Stopped: the command opens the file itself.
    stop(tether).await;
    let (code, _, stderr) = store_command("forget", &config, &["dave"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("through the running Tether"), "{stderr}");
    let records = crate::moving::records_in(&path).await;
    assert!(!records.contains_key("dave"));
    assert_eq!(records["carol"].entity_id, second);
}

#[tokio::test]
async fn store_endpoints_are_off_without_an_admin_token_and_short_tokens_are_refused() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let tether = world
        .tether_configured(&StoreAt::File(dir.path().join("t.db")), |config| {
            config.server.admin_token = None;
        })
        .await;
    let response = delete_user(&tether, "alice", Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 404);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("server.admin_token"));
    stop(tether).await;

    let config = dir.path().join("short.toml");
    std::fs::write(
        &config,
        "[server]\nadmin_token = \"short\"\n[upstream]\nurl = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run_tether(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("short.toml:2:15") && stderr.contains("at least 16 characters"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_drops_an_erased_users_tokens_within_the_poll_interval() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let world = World::new().await;
    let store = StoreAt::Redis(redis.url());
    let replicas = vec![
        world.tether(&store).await,
        world.tether(&store).await,
        world.tether(&store).await,
    ];
    let mut old = None;
    for replica in &replicas {
        let entity = world.entity(replica, "erin").await;
        assert_eq!(old.get_or_insert(entity.clone()), &entity);
    }
    let old = old.unwrap();
    assert_eq!(world.sandbox.customers_created(), 1);

    // Erased through the command, straight in Redis: no replica is asked.
    let dir = tempfile::tempdir().unwrap();
    let config = command_config(dir.path(), "r.toml", &store, None);
    let erased_at = std::time::Instant::now();
    let (code, _, stderr) = store_command("forget", &config, &["erin"]).await;
    assert_eq!(code, Some(0), "{stderr}");

    // Each replica still holding erin's token drops it within the documented bound; then
    // they all answer one new customer.
    // The documented bound is one poll interval; the slack is for two shared, busy cores.
    let deadline = erased_at + tether::testing::store::POLL_INTERVAL * 3 + Duration::from_secs(2);
    for replica in &replicas {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        wait_until("the replica drops erin's token", left, || async {
            world.entity(replica, "erin").await != old
        })
        .await;
    }
    let mut new = None;
    for replica in &replicas {
        let entity = world.entity(replica, "erin").await;
        assert_eq!(new.get_or_insert(entity.clone()), &entity);
    }
    assert_eq!(
        world.sandbox.customers_created(),
        2,
        "one new customer, not one per replica"
    );
    for replica in replicas {
        stop(replica).await;
    }
}
