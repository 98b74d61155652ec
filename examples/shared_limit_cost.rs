//! What the shared client-authentication limit costs per token-endpoint call: the Redis read it
//! adds (two GETs, pipelined), timed sequentially. Usage: shared_limit_cost REDIS_URL [N]

use std::time::Instant;
use tether::testing::store::{RedisStore, Store};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("a redis:// URL");
    let n: u32 = args.next().map_or(20_000, |n| n.parse().unwrap());
    let config = tether::config::parse_str(
        &format!("[upstream]\nurl = \"http://127.0.0.1:1\"\n[store]\nkind = \"redis\"\nurl = \"{url}\"\n"),
        "bench.toml",
        &|_| None,
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = RedisStore::open(&config.store).unwrap();
        store.ping().await.unwrap();
        for round in 0..3 {
            let started = Instant::now();
            for _ in 0..n {
                store
                    .failure_counts("lp-auth:10.0.0.1", 29_000_000)
                    .await
                    .unwrap();
            }
            let check = started.elapsed() / n;
            let started = Instant::now();
            for _ in 0..n {
                store
                    .count_failure("lp-auth:10.0.0.1", 29_000_000)
                    .await
                    .unwrap();
            }
            let count = started.elapsed() / n;
            println!("round {round}: check {check:?} per call, counting a failure {count:?}");
        }
    });
}
