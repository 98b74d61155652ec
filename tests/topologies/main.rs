//! Tether on a Sentinel-managed Redis and on a Redis Cluster, with real servers (started by the
//! tests from PATH): three replicas of Tether and 200 users' first logins while the primary is
//! killed and its replica promoted. With `min_replica_acks = 1`, every user keeps exactly the
//! customer first acknowledged to them: no mapping acknowledged is lost in the failover.

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::backend::Backend;
use support::redis_topology::{RedisCluster, Sentinels, MASTER};
use support::*;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

const USERS: usize = 200;

struct Fleet {
    sandbox: SandboxAccounts,
    _app: Backend,
    _certs: TestCerts,
    replicas: Vec<TestTether>,
    client: reqwest::Client,
}

/// Three Tether replicas on the store `store` describes; identity from a trusted header.
async fn fleet(store: &str) -> Fleet {
    let sandbox = SandboxAccounts::start(SandboxConfig::default())
        .await
        .unwrap();
    let certs = TestCerts::new();
    let app = Backend::start().await;
    let parsed = tether::config::parse_str(
        &format!("[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\nkind = \"redis\"\n{store}"),
        "store.toml",
        &|_| None,
    )
    .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let mut config = config_for(app.addr, &certs);
        enable_livechat(&mut config, &sandbox);
        config.store = parsed.store.clone();
        config.identity.source = tether::config::IdentitySource::Header;
        config.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        replicas.push(TestTether::start(config).await);
    }
    let client = certs.client();
    Fleet {
        sandbox,
        _app: app,
        _certs: certs,
        replicas,
        client,
    }
}

impl Fleet {
    /// The customer `user` is told about by replica `r`; retried (100 ms apart, up to a
    /// minute) while Tether answers 503, as the widget does.
    async fn entity(&self, r: usize, user: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let response = self
                .client
                .get(format!("{}/.tether/livechat/token", self.replicas[r].https))
                .header("x-authenticated-user", user)
                .send()
                .await;
            if let Ok(response) = response {
                if response.status() == 200 {
                    let token: serde_json::Value = response.json().await.unwrap();
                    return token["entityId"].as_str().unwrap().to_string();
                }
                assert_eq!(response.status(), 503, "only 503 while Redis fails over");
                assert!(response.headers().contains_key("retry-after"));
            }
            assert!(Instant::now() < deadline, "{user} never got a token");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every user's first logins, 20 at a time across the replicas, while `fault` runs once a
    /// quarter of them are acknowledged; then each user asks again on another replica. Returns
    /// (users whose customer changed, customers created beyond one per user).
    async fn first_logins_through(
        &self,
        fault: impl std::future::Future<Output = ()>,
    ) -> (usize, u64) {
        let first: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let done = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(20));
        let logins = async {
            let tasks = (0..USERS).map(|i| {
                let (first, done, gate) = (first.clone(), done.clone(), gate.clone());
                async move {
                    let _slot = gate.acquire().await.unwrap();
                    let user = format!("user-{i}");
                    let entity = self.entity(i % 3, &user).await;
                    first.lock().unwrap().insert(user, entity);
                    done.fetch_add(1, SeqCst);
                }
            });
            futures_util::future::join_all(tasks).await;
        };
        let faulty = async {
            wait_until(
                "a quarter of the users acknowledged",
                Duration::from_secs(120),
                || async { done.load(SeqCst) >= USERS / 4 },
            )
            .await;
            fault.await;
        };
        tokio::join!(logins, faulty);
        let first = first.lock().unwrap().clone();
        let mut changed = 0;
        for (i, (user, entity)) in first.iter().enumerate() {
            if &self.entity((i + 1) % 3, user).await != entity {
                changed += 1;
            }
        }
        let extra = self
            .sandbox
            .customers_created()
            .saturating_sub(USERS as u64);
        (changed, extra)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_loses_no_acknowledged_mapping() {
    let Some(mut redis) = Sentinels::start().await else {
        return;
    };
    let sentinels: Vec<String> = redis
        .sentinel_urls()
        .iter()
        .map(|url| format!("\"{url}\""))
        .collect();
    let fleet = fleet(&format!(
        "sentinels = [{}]\nsentinel_master = \"{MASTER}\"\nmin_replica_acks = 1\nreplica_ack_timeout = \"2s\"\ntimeout = \"3s\"\n",
        sentinels.join(", ")
    ))
    .await;
    let (changed, extra) = fleet.first_logins_through(redis.fail_over()).await;
    println!("sentinel failover: {changed} users with a changed customer; {extra} customers never handed out");
    assert_eq!(
        changed, 0,
        "a mapping acknowledged before the failover was lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_loses_no_acknowledged_mapping() {
    let Some(mut redis) = RedisCluster::start().await else {
        return;
    };
    let seeds: Vec<String> = redis
        .seed_urls()
        .iter()
        .map(|url| format!("\"{url}\""))
        .collect();
    let fleet = fleet(&format!(
        "cluster = [{}]\nmin_replica_acks = 1\nreplica_ack_timeout = \"2s\"\ntimeout = \"3s\"\n",
        seeds.join(", ")
    ))
    .await;
    // The primary holding user-0's mapping goes down.
    let (changed, extra) = fleet
        .first_logins_through(redis.fail_over("tether:customer:user-0"))
        .await;
    println!("cluster failover: {changed} users with a changed customer; {extra} customers never handed out");
    assert_eq!(
        changed, 0,
        "a mapping acknowledged before the failover was lost"
    );
    // `tether store export` finds every mapping on the cluster's primaries.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\nkind = \"redis\"\ncluster = [{}]\ntimeout = \"3s\"\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_tether(&["store", "export", "--config", config.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().count(),
        USERS,
        "every mapping found on the primaries"
    );
}
