//! How long the durable store takes to load N mappings at start-up (scripts/bench.sh).
//! Usage: store_load [N] [PATH]   (default 1000000; with PATH the store is written there and
//! kept, for timing the store commands in scripts/store-bench.sh)

use std::time::Instant;
use tether::testing::store::{CustomerRecord, FileStore, Store};

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::args()
        .nth(2)
        .map_or_else(|| dir.path().join("tether.db"), std::path::PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = std::sync::Arc::new(FileStore::open(&path).unwrap());
        let started = Instant::now();
        // Concurrent first logins, as in production: the writer commits them in batches.
        let mut pending = Vec::with_capacity(8192);
        for i in 0..count {
            let record = CustomerRecord {
                entity_id: format!("{:08x}-0000-4000-8000-{:012x}", i, i),
                cookie_secret: None,
                created_at_ms: Some(1_763_000_000_000 + i as u64),
            };
            pending.push(store.insert_customer_if_absent(&format!("user-{i}"), record));
            if pending.len() == 8192 {
                for insert in pending.drain(..) {
                    insert.await.unwrap();
                }
            }
        }
        for insert in pending {
            insert.await.unwrap();
        }
        eprintln!(
            "wrote {count} mappings in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    });
    let started = Instant::now();
    let store = FileStore::open(&path).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(store.customer_count(), count);
    println!("mappings={count} load_seconds={seconds:.2}");
}
