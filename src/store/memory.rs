//! In-memory store: for tests and demos. Nothing survives a restart.

use super::codes::CodeTable;
use super::{CodeTake, CustomerRecord, Store, StoreError};
use crate::proxy::BoxFuture;
use dashmap::DashMap;
use std::time::Duration;

#[derive(Default)]
pub struct MemoryStore {
    customers: DashMap<String, CustomerRecord>,
    values: DashMap<String, String>,
    codes: CodeTable,
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

    fn customer_count(&self) -> usize {
        self.customers.len()
    }

    fn put_code(
        &self,
        key: &str,
        grant: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<Result<(), StoreError>> {
        self.codes.put(key, grant, ttl);
        Box::pin(async { Ok(()) })
    }

    fn take_code(&self, key: &str) -> BoxFuture<Result<CodeTake, StoreError>> {
        let taken = self.codes.take(key);
        Box::pin(async move { Ok(taken) })
    }
}
