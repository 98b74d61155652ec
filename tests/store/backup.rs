//! `tether store backup`: a consistent copy of the embedded store, also while Tether serves.

use crate::*;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;
use tether::testing::store::{FileStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_first_logins_holds_every_mapping_acknowledged_before_it_started() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let tether = world.tether(&StoreAt::File(path.clone())).await;
    let config = command_config(
        dir.path(),
        "b.toml",
        &StoreAt::File(path.clone()),
        Some(&tether.admin),
    );
    let out = dir.path().join("backup.db");

    // 200 concurrent first logins; the backup starts once some have been answered.
    let answered = AtomicUsize::new(0);
    let logins = (0..200).map(|i| {
        let (world, tether, answered) = (&world, &tether, &answered);
        async move {
            let user = format!("user-{i}");
            let entity = world.entity(tether, &user).await;
            let at = Instant::now();
            answered.fetch_add(1, Relaxed);
            (user, entity, at)
        }
    });
    let backup = async {
        wait_until(
            "some first logins answered",
            Duration::from_secs(30),
            || async { answered.load(Relaxed) >= 40 },
        )
        .await;
        let started = Instant::now();
        let outcome = store_command("backup", &config, &[out.to_str().unwrap()]).await;
        (started, outcome)
    };
    let (answers, (started, (code, _, stderr))) =
        tokio::join!(futures_util::future::join_all(logins), backup);
    assert_eq!(code, Some(0), "{stderr}");
    stop(tether).await;

    let restored = FileStore::open(&out).unwrap();
    let acknowledged_before: Vec<_> = answers.iter().filter(|(_, _, at)| *at < started).collect();
    assert!(
        acknowledged_before.len() >= 40,
        "{}",
        acknowledged_before.len()
    );
    for (user, entity, _) in &acknowledged_before {
        let record = restored.customer(user).await.unwrap();
        assert_eq!(record.map(|r| r.entity_id).as_ref(), Some(entity), "{user}");
    }
    // The agent's OAuth state is in the backup too, and nothing outside the answers is.
    assert!(restored.value("livechat.agent").await.unwrap().is_some());
    assert!(restored.customer_count() <= 200);
}

#[tokio::test]
async fn a_backup_of_a_stopped_store_is_a_copy_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let store = FileStore::open(&path).unwrap();
        for i in 0..1000 {
            let record = tether::testing::store::CustomerRecord::new(format!("e-{i}"), None);
            store
                .insert_customer_if_absent(&format!("u-{i}"), record)
                .await
                .unwrap();
        }
    }
    let config = command_config(dir.path(), "b.toml", &StoreAt::File(path.clone()), None);
    let out = dir.path().join("copy.db");
    let out_arg = [out.to_str().unwrap()];
    let (code, _, stderr) = store_command("backup", &config, &out_arg).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("backed up 1000 rows"), "{stderr}");
    let (code, _, stderr) = store_command("backup", &config, &out_arg).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("exists already"), "{stderr}");
    let copy = FileStore::open(&out).unwrap();
    assert_eq!(copy.customer_count(), 1000);
    assert_eq!(
        copy.customer("u-7").await.unwrap().unwrap().entity_id,
        "e-7"
    );
}
