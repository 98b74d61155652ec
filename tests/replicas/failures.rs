//! Redis going away: readiness fails, cached users and plain proxying carry on, uncached users
//! get 503 with Retry-After, Tether reconnects by itself and no acknowledged mapping is lost.

use crate::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// New users logging in on replica 0, one after another, until stopped: what was acknowledged.
struct Load {
    acknowledged: Arc<Mutex<HashMap<String, String>>>,
    refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(cluster: &Cluster) -> Self {
        let (acknowledged, refused, stop) = (
            Arc::new(Mutex::new(HashMap::new())),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (client, url) = (cluster.client.clone(), cluster.url(0, "/livechat/token"));
        let (a, f, s) = (acknowledged.clone(), refused.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut n = 0;
            while !s.load(Relaxed) {
                n += 1;
                let user = format!("load-{n}");
                let response = client
                    .get(&url)
                    .header("cookie", format!("session={user}"))
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    200 => {
                        let body: serde_json::Value = response.json().await.unwrap();
                        let entity = body["entityId"].as_str().unwrap().to_string();
                        a.lock().unwrap().insert(user, entity);
                    }
                    503 => {
                        assert!(response.headers().contains_key("retry-after"));
                        f.fetch_add(1, Relaxed);
                    }
                    other => panic!("{user}: unexpected {other}"),
                }
            }
        });
        Self {
            acknowledged,
            refused,
            stop,
            task,
        }
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    async fn stop(self) -> (HashMap<String, String>, u64) {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap();
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        (acknowledged, self.refused.load(Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_loses_no_acknowledged_mapping() {
    let Some(mut cluster) = Cluster::start(2, |_| {}).await else {
        return;
    };
    let cached = cluster.entity(0, "cached-user").await;
    let load = Load::start(&cluster);
    wait_until(
        "first logins before the kill",
        Duration::from_secs(20),
        || async { load.acknowledged() >= 20 },
    )
    .await;

    cluster.redis.kill();
    wait_until("readiness to fail", Duration::from_secs(10), || async {
        cluster.ready(0).await == 503
    })
    .await;
    wait_until(
        "the load to meet the outage",
        Duration::from_secs(10),
        || async { load.refused.load(Relaxed) >= 1 },
    )
    .await;
    let outage = cluster.token(0, "new-during-outage").await;
    assert_eq!(outage.status(), 503);
    assert!(outage.headers().contains_key("retry-after"));
    assert_eq!(
        cluster.entity(0, "cached-user").await,
        cached,
        "a cached user is served"
    );
    let proxied = cluster
        .client
        .get(format!("{}/whoami", cluster.replicas[0].https))
        .header("cookie", "session=cached-user")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200, "plain proxying is unaffected");

    let before_restart = load.acknowledged();
    cluster.redis.restart().await;
    wait_until("readiness to recover", Duration::from_secs(10), || async {
        cluster.ready(0).await == 200
    })
    .await;
    wait_until(
        "first logins after the restart",
        Duration::from_secs(20),
        || async { load.acknowledged() >= before_restart + 20 },
    )
    .await;
    let (acknowledged, refused) = load.stop().await;
    assert!(refused >= 1);

    // Replica 1 never saw these users: it reads every mapping from the restarted Redis.
    let created_before = cluster.sandbox.customers_created();
    for (user, entity) in &acknowledged {
        assert_eq!(&cluster.entity(1, user).await, entity, "{user}");
    }
    assert_eq!(
        cluster.sandbox.customers_created(),
        created_before,
        "no acknowledged user got a second customer"
    );
}

#[tokio::test]
async fn tether_starts_and_proxies_while_redis_is_down_and_connects_when_it_comes_up() {
    let Some(mut cluster) = Cluster::start(1, |_| {}).await else {
        return;
    };
    cluster.redis.kill();
    // A replica started while Redis is down.
    let late = TestTether::start(cluster.config(&|_| {})).await;
    cluster.replicas.push(late);
    assert_eq!(cluster.ready(1).await, 503);
    let proxied = cluster
        .client
        .get(format!("{}/whoami", cluster.replicas[1].https))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 401, "the app's own answer, proxied");
    let refused = cluster.token(1, "dora").await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(cluster.page_code(1, "dora").await.status(), 503);

    cluster.redis.restart().await;
    wait_until("readiness", Duration::from_secs(10), || async {
        cluster.ready(1).await == 200
    })
    .await;
    let dora = cluster.entity(1, "dora").await;
    assert_eq!(cluster.entity(0, "dora").await, dora);
}

#[test]
fn redis_settings_are_checked_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    for (store, key_line, expected) in [
        ("kind = \"redis\"\n", 2, "store.url"),
        (
            "kind = \"redis\"\nurl = \"http://redis:6379\"\n",
            3,
            "redis://",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://redis:6379\"\nprefix = \"\"\n",
            4,
            "key prefix",
        ),
        (
            "kind = \"file\"\n[livechat]\ntoken_cache = \"everywhere\"\n",
            4,
            "replica",
        ),
    ] {
        let path = dir.path().join("tether.toml");
        std::fs::write(
            &path,
            format!("[store]\n{store}[upstream]\nurl = \"http://127.0.0.1:1\"\n"),
        )
        .unwrap();
        let (code, _, stderr) = run_tether(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("tether.toml:{key_line}:")),
            "{store}: {stderr}"
        );
        assert!(stderr.contains(expected), "{store}: {stderr}");
    }
}
