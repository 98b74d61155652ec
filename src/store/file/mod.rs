//! The default durable store: an embedded redb database on local disk, with every record also held
//! in a DashMap so reads never touch the disk.
//!
//! Writes go to one writer thread that commits whatever has queued up in a single transaction
//! (group commit): one fsync serves many concurrent first logins. A write's future resolves only
//! after its transaction is committed, so an acknowledged mapping survives `kill -9`.

use super::{CodeTake, CustomerRecord, MemoryStore, Row, Store, StoreError};
use crate::io::BoxFuture;
use dashmap::DashMap;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::oneshot;

mod files;

pub use files::{open_database, read_rows, write_rows, OpenError};

const CUSTOMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("customers");
const VALUES: TableDefinition<&str, &str> = TableDefinition::new("values");
/// Most writes committed in one transaction.
const MAX_BATCH: usize = 4096;

enum Write {
    InsertIfAbsent(
        String,
        CustomerRecord,
        oneshot::Sender<Result<CustomerRecord, StoreError>>,
    ),
    Replace(
        String,
        CustomerRecord,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    /// A named value; with `only_if_absent`, an existing one wins. Answers the value stored.
    SetValue {
        key: String,
        value: String,
        only_if_absent: bool,
        done: oneshot::Sender<Result<String, StoreError>>,
    },
    Remove(String, oneshot::Sender<Result<bool, StoreError>>),
}

pub struct FileStore {
    /// Shared with the writer thread; readers (exports, backups) take their own transactions.
    db: Arc<Database>,
    customers: Arc<DashMap<String, CustomerRecord>>,
    values: Arc<DashMap<String, String>>,
    /// Codes, leases and cached entries are short-lived: kept in memory (see `expiring`).
    ephemeral: MemoryStore,
    /// Writes refused (failed commits) or impossible (writer gone).
    errors: Arc<std::sync::atomic::AtomicU64>,
    /// Taken on drop, so the writer thread sees the queue close.
    writer: Option<mpsc::Sender<Write>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FileStore {
    /// Waits for queued writes to commit and the database file to be released, so the same path
    /// can be opened again at once (an in-process restart).
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

fn failed(what: &'static str, err: impl Into<redb::Error>) -> StoreError {
    StoreError::File {
        what,
        source: Arc::new(err.into()),
    }
}

impl FileStore {
    /// Opens (or creates) the database and loads every record into memory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::try_open(path).map_err(OpenError::into_store_error)
    }

    /// `open`, telling a file another process holds (`OpenError::InUse`) apart.
    pub fn try_open(path: &Path) -> Result<Self, OpenError> {
        let db = Arc::new(open_database(path, true, None)?);
        Self::load_and_start_writer(db).map_err(OpenError::Failed)
    }

    fn load_and_start_writer(db: Arc<Database>) -> Result<Self, StoreError> {
        let (customers, values) = load(&db)?;
        let (customers, values) = (Arc::new(customers), Arc::new(values));
        let (writer, queue) = mpsc::channel();
        let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (c, v, d, e) = (
            customers.clone(),
            values.clone(),
            db.clone(),
            errors.clone(),
        );
        let writer_thread = std::thread::Builder::new()
            .name("tether-store".into())
            .spawn(move || write_loop(&d, queue, c, v, &e))
            .map_err(|err| failed("starting the store writer", err))?;
        Ok(Self {
            db,
            errors,
            customers,
            values,
            ephemeral: MemoryStore::default(),
            writer: Some(writer),
            writer_thread: Some(writer_thread),
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> BoxFuture<Result<T, StoreError>> {
        let (done, result) = oneshot::channel();
        let sent = match &self.writer {
            Some(writer) => writer.send(make(done)).map_err(|_| ()),
            None => Err(()),
        };
        Box::pin(async move {
            sent.map_err(|_| StoreError::other("the store writer has stopped"))?;
            result
                .await
                .map_err(|_| StoreError::other("the store writer has stopped"))?
        })
    }
}

/// Every record read into memory, the customer map sized up front.
type Loaded = (DashMap<String, CustomerRecord>, DashMap<String, String>);

fn load(db: &Database) -> Result<Loaded, StoreError> {
    let mut customers = DashMap::new();
    let values = DashMap::new();
    let read = db.begin_read().map_err(|err| failed("reading", err))?;
    match read.open_table(CUSTOMERS) {
        Ok(table) => {
            let rows = table
                .len()
                .map_err(|err| failed("reading customers", err))?;
            customers = DashMap::with_capacity(usize::try_from(rows).unwrap_or(0));
            for entry in table
                .iter()
                .map_err(|err| failed("reading customers", err))?
            {
                let (user, record) = entry.map_err(|err| failed("reading customers", err))?;
                customers.insert(
                    user.value().to_string(),
                    CustomerRecord::decode(record.value())?,
                );
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(err) => return Err(failed("reading customers", err)),
    }
    match read.open_table(VALUES) {
        Ok(table) => {
            for entry in table.iter().map_err(|err| failed("reading values", err))? {
                let (key, value) = entry.map_err(|err| failed("reading values", err))?;
                values.insert(key.value().to_string(), value.value().to_string());
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(err) => return Err(failed("reading values", err)),
    }
    Ok((customers, values))
}

/// Commits queued writes in batches until every sender is gone.
fn write_loop(
    db: &Database,
    queue: mpsc::Receiver<Write>,
    customers: Arc<DashMap<String, CustomerRecord>>,
    values: Arc<DashMap<String, String>>,
    errors: &std::sync::atomic::AtomicU64,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        match commit(db, &batch) {
            Ok(winners) => {
                for (write, winner) in batch.into_iter().zip(winners) {
                    acknowledge(write, winner, &customers, &values);
                }
            }
            Err(err) => {
                errors.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %err, "store commit failed; the writes are refused");
                for write in batch {
                    match write {
                        Write::InsertIfAbsent(_, _, done) => drop(done.send(Err(err.clone()))),
                        Write::Replace(_, _, done) => drop(done.send(Err(err.clone()))),
                        Write::SetValue { done, .. } => drop(done.send(Err(err.clone()))),
                        Write::Remove(_, done) => drop(done.send(Err(err.clone()))),
                    }
                }
            }
        }
    }
}

/// What a committed write found: the record now stored (inserts), whether a record was there
/// (removals), or nothing to report.
enum Outcome {
    Stored(CustomerRecord),
    Removed(bool),
    Value(String),
    Done,
}

/// Applies a batch in one transaction.
fn commit(db: &Database, batch: &[Write]) -> Result<Vec<Outcome>, StoreError> {
    let txn = db.begin_write().map_err(|err| failed("writing", err))?;
    let mut winners = Vec::with_capacity(batch.len());
    {
        let mut table = txn
            .open_table(CUSTOMERS)
            .map_err(|err| failed("writing", err))?;
        let mut value_table = txn
            .open_table(VALUES)
            .map_err(|err| failed("writing", err))?;
        for write in batch {
            let winner = match write {
                Write::InsertIfAbsent(user, record, _) => {
                    let existing = match table
                        .get(user.as_str())
                        .map_err(|err| failed("writing", err))?
                    {
                        Some(bytes) => Some(CustomerRecord::decode(bytes.value())?),
                        None => None,
                    };
                    match existing {
                        Some(existing) => Outcome::Stored(existing),
                        None => {
                            let bytes = record.encode();
                            table
                                .insert(user.as_str(), bytes.as_slice())
                                .map_err(|err| failed("writing", err))?;
                            Outcome::Stored(record.clone())
                        }
                    }
                }
                Write::Replace(user, record, _) => {
                    let bytes = record.encode();
                    table
                        .insert(user.as_str(), bytes.as_slice())
                        .map_err(|err| failed("writing", err))?;
                    Outcome::Done
                }
                Write::SetValue {
                    key,
                    value,
                    only_if_absent,
                    ..
                } => {
                    let existing = match only_if_absent {
                        true => value_table
                            .get(key.as_str())
                            .map_err(|err| failed("writing", err))?
                            .map(|stored| stored.value().to_string()),
                        false => None,
                    };
                    match existing {
                        Some(existing) => Outcome::Value(existing),
                        None => {
                            value_table
                                .insert(key.as_str(), value.as_str())
                                .map_err(|err| failed("writing", err))?;
                            Outcome::Value(value.clone())
                        }
                    }
                }
                Write::Remove(user, _) => Outcome::Removed(
                    table
                        .remove(user.as_str())
                        .map_err(|err| failed("writing", err))?
                        .is_some(),
                ),
            };
            winners.push(winner);
        }
    }
    txn.commit().map_err(|err| failed("committing", err))?;
    Ok(winners)
}

/// After the commit: update the in-memory view, then tell the caller.
fn acknowledge(
    write: Write,
    outcome: Outcome,
    customers: &DashMap<String, CustomerRecord>,
    values: &DashMap<String, String>,
) {
    match write {
        Write::InsertIfAbsent(user, record, done) => {
            let winner = match outcome {
                Outcome::Stored(winner) => winner,
                _ => record,
            };
            customers.insert(user, winner.clone());
            let _ = done.send(Ok(winner));
        }
        Write::Remove(user, done) => {
            customers.remove(&user);
            let _ = done.send(Ok(matches!(outcome, Outcome::Removed(true))));
        }
        Write::Replace(user, record, done) => {
            customers.insert(user, record);
            let _ = done.send(Ok(()));
        }
        Write::SetValue {
            key, value, done, ..
        } => {
            let stored = match outcome {
                Outcome::Value(stored) => stored,
                _ => value,
            };
            values.insert(key, stored.clone());
            let _ = done.send(Ok(stored));
        }
    }
}

impl Store for FileStore {
    fn customer(&self, user: &str) -> BoxFuture<Result<Option<CustomerRecord>, StoreError>> {
        let found = self.customers.get(user).map(|record| record.clone());
        Box::pin(async move { Ok(found) })
    }

    fn insert_customer_if_absent(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<CustomerRecord, StoreError>> {
        if let Some(existing) = self.customers.get(user) {
            let existing = existing.clone();
            return Box::pin(async move { Ok(existing) });
        }
        let user = user.to_string();
        self.submit(move |done| Write::InsertIfAbsent(user, record, done))
    }

    fn replace_customer(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(), StoreError>> {
        let user = user.to_string();
        self.submit(move |done| Write::Replace(user, record, done))
    }

    fn value(&self, key: &str) -> BoxFuture<Result<Option<String>, StoreError>> {
        let found = self.values.get(key).map(|value| value.clone());
        Box::pin(async move { Ok(found) })
    }

    fn set_value(&self, key: &str, value: String) -> BoxFuture<Result<(), StoreError>> {
        let key = key.to_string();
        let stored = self.submit(move |done| Write::SetValue {
            key,
            value,
            only_if_absent: false,
            done,
        });
        Box::pin(async move { stored.await.map(|_| ()) })
    }

    fn value_or_insert(&self, key: &str, value: String) -> BoxFuture<Result<String, StoreError>> {
        if let Some(found) = self.values.get(key) {
            let found = found.clone();
            return Box::pin(async move { Ok(found) });
        }
        let key = key.to_string();
        self.submit(move |done| Write::SetValue {
            key,
            value,
            only_if_absent: true,
            done,
        })
    }

    fn customer_count(&self) -> usize {
        self.customers.len()
    }

    fn error_count(&self) -> u64 {
        self.errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn remove_customer(&self, user: &str) -> BoxFuture<Result<bool, StoreError>> {
        let user = user.to_string();
        self.submit(move |done| Write::Remove(user, done))
    }

    fn rows(
        &self,
        with_values: bool,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> BoxFuture<Result<(), StoreError>> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_rows(&db, with_values, &sink))
                .await
                .map_err(|err| StoreError::other(format!("reading: {err}")))?
        })
    }

    fn put_code(
        &self,
        key: &str,
        grant: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.ephemeral.put_code(key, grant, ttl)
    }

    fn take_code(&self, key: &str) -> BoxFuture<Result<CodeTake, StoreError>> {
        self.ephemeral.take_code(key)
    }

    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> BoxFuture<Result<bool, StoreError>> {
        self.ephemeral.try_lease(name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> BoxFuture<Result<(), StoreError>> {
        self.ephemeral.release_lease(name, holder)
    }

    fn cached(&self, key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StoreError>> {
        self.ephemeral.cached(key)
    }

    fn cache(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<Result<(), StoreError>> {
        self.ephemeral.cache(key, value, ttl)
    }

    fn ping(&self) -> BoxFuture<Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> CustomerRecord {
        CustomerRecord {
            entity_id: id.into(),
            cookie_secret: None,
            created_at_ms: Some(1),
        }
    }

    #[tokio::test]
    async fn records_survive_reopening_and_first_insert_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tether.db");
        {
            let store = FileStore::open(&path).unwrap();
            assert_eq!(
                store
                    .insert_customer_if_absent("alice", record("e1"))
                    .await
                    .unwrap(),
                record("e1")
            );
            assert_eq!(
                store
                    .insert_customer_if_absent("alice", record("e2"))
                    .await
                    .unwrap(),
                record("e1")
            );
            let secret = CustomerRecord {
                entity_id: "e3".into(),
                cookie_secret: Some("cst".into()),
                created_at_ms: Some(3),
            };
            store
                .insert_customer_if_absent("bob", record("e3"))
                .await
                .unwrap();
            store.replace_customer("bob", secret.clone()).await.unwrap();
            store
                .set_value("agent_refresh_token", "rt-2".into())
                .await
                .unwrap();
        }
        // Dropping the store released the file.
        let store = FileStore::open(&path).unwrap();
        assert_eq!(store.customer("alice").await.unwrap(), Some(record("e1")));
        assert_eq!(
            store
                .customer("bob")
                .await
                .unwrap()
                .unwrap()
                .cookie_secret
                .as_deref(),
            Some("cst")
        );
        assert_eq!(
            store.value("agent_refresh_token").await.unwrap().as_deref(),
            Some("rt-2")
        );
        assert_eq!(store.customer_count(), 2);
    }

    #[tokio::test]
    async fn concurrent_inserts_for_one_user_agree_on_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::open(&dir.path().join("t.db")).unwrap());
        let attempts = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_customer_if_absent("carol", record(&format!("e{i}")))
                    .await
                    .unwrap()
            })
        });
        let winners: Vec<_> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(
            winners.windows(2).all(|w| w[0] == w[1]),
            "several winners: {winners:?}"
        );
    }
}
