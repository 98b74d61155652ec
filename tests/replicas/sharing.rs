//! What replicas share through Redis: mappings, one-time codes, the agent token, cached tokens.

use crate::*;
use futures_util::future::join_all;
use redis::AsyncCommands;
use tether::testing::store::CustomerRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_logins_on_three_replicas_at_once_make_one_customer_per_user() {
    let Some(cluster) = Cluster::start(3, trust_gateway).await else {
        return;
    };
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    // Every user's first request reaches all three replicas at the same time.
    let requests = users
        .iter()
        .flat_map(|user| (0..3).map(move |r| (r, user)))
        .map(|(r, user)| {
            let cluster = &cluster;
            async move { (user.clone(), cluster.entity(r, user).await) }
        });
    let answers = join_all(requests).await;

    assert_eq!(
        cluster.sandbox.customers_created(),
        200,
        "one LiveChat customer per user, whichever replicas the user reached"
    );
    let mut redis = cluster.redis.connection().await;
    for user in &users {
        let entities: Vec<&String> = answers
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, entity)| entity)
            .collect();
        assert_eq!(entities.len(), 3);
        assert!(
            entities.iter().all(|e| *e == entities[0]),
            "{user}: {entities:?}"
        );
        let stored: Vec<u8> = redis.get(format!("tether:customer:{user}")).await.unwrap();
        assert_eq!(
            &CustomerRecord::decode(&stored).unwrap().entity_id,
            entities[0]
        );
    }
    let recorded: u64 = redis.get("tether:customers").await.unwrap();
    assert_eq!(recorded, 200);
    for r in 0..3 {
        assert_eq!(
            cluster
                .metric(r, "tether_livechat_surplus_customers_total")
                .await,
            0
        );
    }
    let created: u64 = {
        let mut total = 0;
        for r in 0..3 {
            total += cluster
                .metric(r, "tether_livechat_customers_created_total")
                .await;
        }
        total
    };
    assert_eq!(
        created, 200,
        "each customer recorded by exactly one replica"
    );
    // A replica that never saw these users (a fourth, started now) serves the same customers.
    let late = TestTether::start(cluster.config(&trust_gateway)).await;
    let response = cluster
        .client
        .get(format!("{}/.tether/livechat/token", late.https))
        .header("x-authenticated-user", "user-7")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let seven = answers.iter().find(|(u, _)| u == "user-7").unwrap();
    assert_eq!(body["entityId"], seven.1.as_str());
    assert_eq!(cluster.sandbox.customers_created(), 200);
}

#[tokio::test]
async fn a_code_from_one_replica_is_redeemed_on_another_and_its_replay_refused_on_a_third() {
    let Some(cluster) = Cluster::start(3, |_| {}).await else {
        return;
    };
    let response = cluster.page_code(0, "alice").await;
    assert_eq!(response.status(), 200);
    let grant: serde_json::Value = response.json().await.unwrap();
    let code = grant["code"].as_str().unwrap().to_string();
    let exchange = |r: usize| {
        let (client, url, code) = (
            cluster.client.clone(),
            cluster.url(r, "/oauth/token"),
            code.clone(),
        );
        async move {
            client
                .post(url)
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", "https://liveperson.net"),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    let redeemed = exchange(1).await;
    assert_eq!(redeemed.status(), 200);
    let body: serde_json::Value = redeemed.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = cluster
        .client
        .get(cluster.url(2, "/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[CLIENT_ID]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice");

    let replay = exchange(2).await;
    assert_eq!(replay.status(), 400);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        cluster
            .metric(2, "tether_liveperson_code_replays_total")
            .await,
        1,
        "told apart from an unknown code"
    );
    // Redis never held the code itself: keys are hashes and grants are sealed.
    let mut redis = cluster.redis.connection().await;
    let keys: Vec<String> = redis.keys("tether:code:*").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&code));
    let ttl: i64 = redis.pttl(&keys[0]).await.unwrap();
    assert!(ttl > 0, "Redis expires the code (and its tombstone): {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refresh_the_agent_token_one_at_a_time_and_share_the_rotation() {
    let Some(cluster) = Cluster::start(3, |_| {}).await else {
        return;
    };
    assert_eq!(
        cluster.agent_refreshes(),
        1,
        "three replicas started together: one refresh, the others adopted it"
    );
    for round in 1..=3 {
        // Every agent access token is revoked; all replicas meet the 401 at once. The sandbox
        // rotates the refresh token on each refresh, so a second refresh with the old one fails.
        cluster.sandbox.revoke_agent_tokens();
        let requests = (0..30).map(|i| {
            let cluster = &cluster;
            async move {
                cluster
                    .token(i % 3, &format!("r{round}-user-{i}"))
                    .await
                    .status()
            }
        });
        let statuses = join_all(requests).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        assert_eq!(cluster.agent_refreshes(), 1 + round);
    }
    let mut redis = cluster.redis.connection().await;
    let stored: Vec<u8> = redis.get("tether:value:livechat.agent").await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(&stored[1..]).unwrap();
    assert_eq!(state["v"], 1);
    assert_eq!(
        state["refresh_token"],
        cluster.sandbox.current_refresh_token(),
        "the newest refresh token is shared"
    );
}

#[tokio::test]
async fn a_shared_token_cache_fetches_each_token_once_for_all_replicas() {
    let Some(cluster) = Cluster::start(3, |config| {
        config.livechat.token_cache = tether::config::TokenCache::Shared;
    })
    .await
    else {
        return;
    };
    let body = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        response.json::<serde_json::Value>().await.unwrap()
    };
    let first = body(cluster.token(0, "carol").await).await;
    for r in [1, 2] {
        let again = body(cluster.token(r, "carol").await).await;
        assert_eq!(again["accessToken"], first["accessToken"]);
        assert_eq!(again["creationDate"], first["creationDate"]);
        assert_eq!(
            cluster
                .metric(r, "tether_livechat_tokens_shared_total")
                .await,
            1
        );
    }
    assert_eq!(cluster.sandbox.customer_token_calls(), 1);
    // A fresh token (the widget's one-hour rule) is fetched and shared again.
    let fresh = cluster
        .client
        .post(cluster.url(1, "/livechat/token"))
        .header("cookie", "session=carol")
        .send()
        .await
        .unwrap();
    let fresh = body(fresh).await;
    assert_ne!(fresh["accessToken"], first["accessToken"]);
    assert_eq!(cluster.sandbox.customer_token_calls(), 2);
    let mut redis = cluster.redis.connection().await;
    let ttl: i64 = redis
        .pttl("tether:cache:livechat.token:carol")
        .await
        .unwrap();
    assert!(ttl > 0, "shared tokens expire: {ttl}");
}

/// The pages' user keys come from one secret in Redis: every replica gives a user the same key
/// (a page from one replica and a token from another agree), and it is not a plain hash of the
/// user id.
#[tokio::test]
async fn every_replica_gives_a_user_the_same_page_key() {
    let Some(cluster) = Cluster::start(3, trust_gateway).await else {
        return;
    };
    let mut keys = Vec::new();
    for r in 0..3 {
        // The secret is read (or created) once the store answers: wait for the header.
        let key = wait_for(&format!("replica {r}'s user key"), || async {
            let response = cluster.token(r, "alice").await;
            response
                .headers()
                .get("x-tether-user-key")
                .map(|key| key.to_str().unwrap().to_string())
        })
        .await;
        keys.push(key);
    }
    assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");
    let bob = cluster.token(0, "bob").await;
    assert_ne!(bob.headers()["x-tether-user-key"], keys[0].as_str());
    let plain = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"alice");
    let plain: String = plain.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(
        keys[0], plain,
        "a dictionary of user ids must not reverse page keys"
    );
}

/// Wrong client credentials at the token endpoint, spread over three replicas: with the limit
/// shared through Redis the fleet allows `client_auth_failures_per_minute` in all, not three
/// times as many.
#[tokio::test]
async fn the_shared_client_authentication_limit_holds_for_the_fleet() {
    let Some(cluster) = Cluster::start(3, |config| {
        config.liveperson.client_auth_failures_per_minute = 4;
        config.liveperson.client_auth_limit_shared = true;
    })
    .await
    else {
        return;
    };
    let guess = |r: usize| {
        cluster
            .client
            .post(cluster.url(r, "/oauth/token"))
            .basic_auth(crate::CLIENT_ID, Some("a wrong guess"))
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
            .send()
    };
    let mut statuses = Vec::new();
    for attempt in 0..6 {
        statuses.push(guess(attempt % 3).await.unwrap().status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429],
        "four in all, then refused"
    );
    let refused = guess(2).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
}
