//! `tether store export` and `import`: moving every mapping between store kinds.

use crate::support::redis_server::RedisServer;
use crate::*;
use std::collections::HashMap;
use tether::testing::store::{CustomerRecord, FileStore, Store};

const SYNTHETIC_USERS: usize = 100_000;
const SAMPLE_USERS: usize = 20;

/// Writes `n` synthetic mappings (concurrently, as first logins arrive) into a file store.
async fn add_synthetic(path: &Path, n: usize) -> HashMap<String, CustomerRecord> {
    let store = FileStore::open(path).unwrap();
    let mut written = HashMap::with_capacity(n);
    let mut pending = Vec::new();
    for i in 0..n {
        let user = format!("synthetic-{i}@example.com");
        let record = CustomerRecord {
            entity_id: format!("{i:08x}-0000-4000-8000-{i:012x}"),
            // Some cookie-grant records, whose secret must travel too; some from before
            // Tether kept the creation time.
            cookie_secret: (i % 7 == 0).then(|| format!("cst-{i}")),
            created_at_ms: (i % 11 != 0).then_some(1_763_000_000_000 + i as u64),
        };
        pending.push(store.insert_customer_if_absent(&user, record.clone()));
        written.insert(user, record);
        if pending.len() == 4096 {
            for insert in pending.drain(..) {
                insert.await.unwrap();
            }
        }
    }
    for insert in pending {
        insert.await.unwrap();
    }
    written
}

pub async fn records_in(path: &Path) -> HashMap<String, CustomerRecord> {
    let store = FileStore::open(path).unwrap();
    let (sink, mut rows) = tokio::sync::mpsc::channel(1024);
    let reading = tokio::spawn(store.rows(false, sink));
    let mut found = HashMap::new();
    while let Some(row) = rows.recv().await {
        if let tether::testing::store::Row::Customer { user, record } = row {
            found.insert(user, record);
        }
    }
    reading.await.unwrap().unwrap();
    found
}

/// `tether store export --with-values`: the JSON Lines it wrote.
async fn export_with_values(config: &Path) -> String {
    let (code, stdout, stderr) = store_command("export", config, &["--with-values"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_move_from_file_to_redis_and_back_and_every_user_keeps_their_customer() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (first, last) = (dir.path().join("first.db"), dir.path().join("last.db"));

    // Real customers for a sample of users, through Tether on the embedded store.
    let tether = world.tether(&StoreAt::File(first.clone())).await;
    let mut sample = Vec::new();
    for i in 0..SAMPLE_USERS {
        let user = format!("sample-{i}");
        sample.push((user.clone(), world.entity(&tether, &user).await));
    }
    stop(tether).await;
    let mut expected = add_synthetic(&first, SYNTHETIC_USERS).await;
    expected.extend(
        records_in(&first)
            .await
            .into_iter()
            .filter(|(u, _)| u.starts_with("sample-")),
    );
    assert_eq!(expected.len(), SYNTHETIC_USERS + SAMPLE_USERS);

    // file -> JSON Lines -> redis.
    let from_file = command_config(
        dir.path(),
        "first.toml",
        &StoreAt::File(first.clone()),
        None,
    );
    let to_redis = command_config(dir.path(), "redis.toml", &StoreAt::Redis(redis.url()), None);
    let export = dir.path().join("first.jsonl");
    // With the values: the agent refresh token LiveChat rotated moves too (without it, a Tether
    // on the new store could not mint tokens), and so does the secret of the pages' user keys.
    let stdout = export_with_values(&from_file).await;
    let mappings = stdout
        .lines()
        .filter(|l| l.starts_with("{\"user\""))
        .count();
    assert_eq!(mappings, expected.len());
    std::fs::write(&export, &stdout).unwrap();
    let export_file = [export.to_str().unwrap()];
    let (code, _, stderr) = store_command("import", &to_redis, &export_file).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "imported {} mappings and 2 values",
            expected.len()
        )),
        "{stderr}"
    );
    // Twice: nothing changes, everything is reported present.
    let (code, _, stderr) = store_command("import", &to_redis, &export_file).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("imported 0 mappings"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} already present", expected.len() + 2)),
        "{stderr}"
    );

    // A Tether on Redis answers the same customers, creating none.
    let tether = world.tether(&StoreAt::Redis(redis.url())).await;
    world.assert_customers(&tether, &sample, "on redis").await;
    assert_eq!(
        tether.metric("tether_store_customers").await as usize,
        expected.len()
    );
    stop(tether).await;

    // redis -> JSON Lines -> a new file store.
    let stdout = export_with_values(&to_redis).await;
    std::fs::write(&export, &stdout).unwrap();
    let to_file = command_config(dir.path(), "last.toml", &StoreAt::File(last.clone()), None);
    let (code, _, stderr) = store_command("import", &to_file, &export_file).await;
    assert_eq!(code, Some(0), "{stderr}");

    // Every record arrived whole: customer, cookie secret and creation time.
    let arrived = records_in(&last).await;
    assert_eq!(arrived.len(), expected.len());
    for (user, record) in &expected {
        assert_eq!(arrived.get(user), Some(record), "{user}");
    }
    let tether = world.tether(&StoreAt::File(last.clone())).await;
    world
        .assert_customers(&tether, &sample, "after the round trip")
        .await;
    assert_eq!(
        world.sandbox.customers_created() as usize,
        SAMPLE_USERS,
        "no user got a new customer on any store"
    );
    stop(tether).await;
}

#[tokio::test]
async fn import_keeps_conflicting_mappings_and_locates_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tether.db");
    {
        let store = FileStore::open(&path).unwrap();
        let alice = CustomerRecord::new("entity-alice".into(), None);
        store
            .insert_customer_if_absent("alice", alice)
            .await
            .unwrap();
    }
    let config = command_config(dir.path(), "t.toml", &StoreAt::File(path.clone()), None);
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"user\":\"alice\",\"entity_id\":\"entity-other\",\"created_at\":1}\n",
            "{\"user\":\"bob\",\"entity_id\":\"entity-bob\",\"created_at\":2}\n",
            "\n",
            "{\"user\":\"carol\",\"entity_id\":\"entity-carol\",\"created_at\":\"yesterday\"}\n",
        ),
    )
    .unwrap();
    let (code, _, stderr) = store_command("import", &config, &[input.to_str().unwrap()]).await;
    assert_eq!(
        code,
        Some(2),
        "an invalid line makes the exit code 2: {stderr}"
    );
    let input_name = input.display().to_string();
    assert!(
        stderr.contains(&format!("{input_name}:4:")),
        "the bad line is located: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{input_name}:1: user \"alice\" is already mapped to customer entity-alice"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("imported 1 mappings") && stderr.contains("1 conflicts"),
        "{stderr}"
    );
    let records = records_in(&path).await;
    assert_eq!(
        records["alice"].entity_id, "entity-alice",
        "never overwritten"
    );
    assert_eq!(records["bob"].entity_id, "entity-bob");
    assert!(!records.contains_key("carol"));

    // Only the conflict left: exit 1.
    std::fs::write(
        &input,
        "{\"user\":\"alice\",\"entity_id\":\"entity-other\",\"created_at\":1}\n",
    )
    .unwrap();
    let (code, _, stderr) = store_command("import", &config, &[input.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{stderr}");
}

#[tokio::test]
async fn the_agent_token_moves_with_the_values_and_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from.db"), dir.path().join("to.db"));
    {
        let store = FileStore::open(&from).unwrap();
        store
            .set_value("livechat.agent", "rotated".into())
            .await
            .unwrap();
        store.set_value("other", "one".into()).await.unwrap();
        let store = FileStore::open(&to).unwrap();
        store.set_value("other", "kept".into()).await.unwrap();
    }
    let from_config = command_config(dir.path(), "from.toml", &StoreAt::File(from), None);
    let to_config = command_config(dir.path(), "to.toml", &StoreAt::File(to.clone()), None);
    let stdout = export_with_values(&from_config).await;
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let file = dir.path().join("values.jsonl");
    std::fs::write(&file, stdout).unwrap();
    let (code, _, stderr) = store_command("import", &to_config, &[file.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let store = FileStore::open(&to).unwrap();
    assert_eq!(
        store.value("livechat.agent").await.unwrap().as_deref(),
        Some("rotated")
    );
    assert_eq!(store.value("other").await.unwrap().as_deref(), Some("kept"));
}
