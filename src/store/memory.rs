//! In-memory store: for tests and demos. Nothing survives a restart. The file store keeps its
//! short-lived entries (codes, leases) in one of these.

use super::expiring::ExpiringTable;
use super::{CodeTake, CustomerRecord, Row, Store, StoreError};
use crate::io::BoxFuture;
use dashmap::DashMap;
use std::time::Duration;

#[derive(Default)]
pub struct MemoryStore {
    customers: DashMap<String, CustomerRecord>,
    values: DashMap<String, String>,
    /// Codes, leases and cached entries, each under its own key prefix.
    ephemeral: ExpiringTable,
}

impl Store for MemoryStore {
    fn customer(&self, user: &str) -> BoxFuture<Result<Option<CustomerRecord>, StoreError>> {
        let found = self.customers.get(user).map(|record| record.clone());
        Box::pin(async move { Ok(found) })
    }

    fn insert_customer_if_absent(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<CustomerRecord, StoreError>> {
        let winner = self
            .customers
            .entry(user.to_string())
            .or_insert(record)
            .clone();
        Box::pin(async move { Ok(winner) })
    }

    fn replace_customer(
        &self,
        user: &str,
        record: CustomerRecord,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.customers.insert(user.to_string(), record);
        Box::pin(async { Ok(()) })
    }

    fn value(&self, key: &str) -> BoxFuture<Result<Option<String>, StoreError>> {
        let found = self.values.get(key).map(|value| value.clone());
        Box::pin(async move { Ok(found) })
    }

    fn set_value(&self, key: &str, value: String) -> BoxFuture<Result<(), StoreError>> {
        self.values.insert(key.to_string(), value);
        Box::pin(async { Ok(()) })
    }

    fn value_or_insert(&self, key: &str, value: String) -> BoxFuture<Result<String, StoreError>> {
        let stored = self.values.entry(key.to_string()).or_insert(value).clone();
        Box::pin(async move { Ok(stored) })
    }

    fn customer_count(&self) -> usize {
        self.customers.len()
    }

    fn remove_customer(&self, user: &str) -> BoxFuture<Result<bool, StoreError>> {
        let removed = self.customers.remove(user).is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn rows(
        &self,
        with_values: bool,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> BoxFuture<Result<(), StoreError>> {
        let mut rows: Vec<Row> = self
            .customers
            .iter()
            .map(|entry| Row::Customer {
                user: entry.key().clone(),
                record: entry.value().clone(),
            })
            .collect();
        if with_values {
            rows.extend(self.values.iter().map(|entry| Row::Value {
                name: entry.key().clone(),
                data: entry.value().clone(),
            }));
        }
        Box::pin(async move {
            for row in rows {
                if sink.send(row).await.is_err() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn put_code(
        &self,
        key: &str,
        grant: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.ephemeral.put(&format!("code:{key}"), grant, ttl);
        Box::pin(async { Ok(()) })
    }

    fn take_code(&self, key: &str) -> BoxFuture<Result<CodeTake, StoreError>> {
        let taken = self.ephemeral.take(&format!("code:{key}"));
        Box::pin(async move { Ok(taken) })
    }

    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> BoxFuture<Result<bool, StoreError>> {
        let taken =
            self.ephemeral
                .put_if_absent(&format!("lease:{name}"), holder.as_bytes().to_vec(), ttl);
        Box::pin(async move { Ok(taken) })
    }

    fn release_lease(&self, name: &str, holder: &str) -> BoxFuture<Result<(), StoreError>> {
        self.ephemeral
            .remove_if(&format!("lease:{name}"), holder.as_bytes());
        Box::pin(async { Ok(()) })
    }

    fn cached(&self, key: &str) -> BoxFuture<Result<Option<Vec<u8>>, StoreError>> {
        let found = self.ephemeral.get(&format!("cache:{key}"));
        Box::pin(async move { Ok(found) })
    }

    fn cache(&self, key: &str, value: Vec<u8>, ttl: Duration) -> BoxFuture<Result<(), StoreError>> {
        let key = format!("cache:{key}");
        if ttl.is_zero() {
            self.ephemeral.remove(&key);
        } else {
            self.ephemeral.put(&key, value, ttl);
        }
        Box::pin(async { Ok(()) })
    }

    fn ping(&self) -> BoxFuture<Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}
