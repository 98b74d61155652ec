//! A replica's memory while a million distinct users pass through its Redis store: each user's
//! mapping is recorded, then read back twice (the read-through cache at work), and the process's
//! resident memory is printed every 100,000 users. scripts/mapping-cache-memory.sh starts the
//! redis-server. Usage: mapping_cache_memory REDIS_URL [USERS] [CAPACITY]

use std::sync::Arc;
use tether::testing::store::{CustomerRecord, RedisStore, Store};

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("a redis:// URL");
    let users: usize = args.next().map_or(1_000_000, |n| n.parse().unwrap());
    let capacity: u64 = args.next().map_or(100_000, |n| n.parse().unwrap());
    let config = tether::config::parse_str(
        &format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\nkind = \"redis\"\nurl = \"{url}\"\nmapping_cache_capacity = {capacity}\ntimeout = \"10s\"\n"
        ),
        "bench.toml",
        &|_| None,
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(RedisStore::open(&config.store).unwrap());
        store.ping().await.unwrap();
        println!("users\tRSS MiB\tcached mappings\thit ratio");
        println!("0\t{}\t0\t-", rss_mib());
        let batch = 4096;
        for start in (0..users).step_by(batch) {
            let end = (start + batch).min(users);
            let inserts = (start..end).map(|i| {
                let record = CustomerRecord {
                    entity_id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
                    cookie_secret: None,
                    created_at_ms: Some(1_763_000_000_000 + i as u64),
                };
                store.insert_customer_if_absent(&format!("user-{i}"), record)
            });
            for result in futures_util::future::join_all(inserts).await {
                result.unwrap();
            }
            for _ in 0..2 {
                let reads = (start..end).map(|i| store.customer(&format!("user-{i}")));
                for result in futures_util::future::join_all(reads).await {
                    result.unwrap().unwrap();
                }
            }
            if end % 100_000 < batch || end == users {
                let stats = store.mapping_cache().unwrap();
                println!(
                    "{end}\t{}\t{}\t{:.2}",
                    rss_mib(),
                    stats.entries,
                    stats.hits as f64 / (stats.hits + stats.misses).max(1) as f64
                );
            }
        }
    });
}
