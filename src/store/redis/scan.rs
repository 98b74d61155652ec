//! Reading every mapping and value while Redis serves (SCAN in batches, then MGET), for export.

use super::{unversioned, RedisStore};
use crate::io::BoxFuture;
use crate::store::{CustomerRecord, Row, StoreError};

impl RedisStore {
    /// One SCAN step over the keys of one kind, with their values (MGET): (next cursor, 0 at
    /// the end; the names after the kind's prefix and their values).
    async fn scan_step(
        &self,
        kind: &str,
        cursor: u64,
    ) -> Result<(u64, Vec<(String, Vec<u8>)>), StoreError> {
        let prefix = self.key(kind, "");
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", glob_escape(&prefix)))
            .arg("COUNT")
            .arg(1000)
            .to_owned();
        let (next, keys): (u64, Vec<String>) = self.query("scan", scan).await?;
        if keys.is_empty() {
            return Ok((next, Vec::new()));
        }
        let values: Vec<Option<Vec<u8>>> = self
            .query("scan", redis::cmd("MGET").arg(&keys).to_owned())
            .await?;
        // A key erased between SCAN and MGET is simply gone.
        let found = keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key[prefix.len()..].to_string(), value?)))
            .collect();
        Ok((next, found))
    }

    /// Sends every key of one kind to `sink`, batch by batch; false once the receiver is gone.
    async fn scan_into(
        &self,
        kind: &str,
        sink: &tokio::sync::mpsc::Sender<Row>,
        row: impl Fn(String, Vec<u8>) -> Result<Row, StoreError>,
    ) -> Result<bool, StoreError> {
        let mut cursor = 0;
        loop {
            let (next, found) = self.scan_step(kind, cursor).await?;
            for (name, bytes) in found {
                if sink.send(row(name, bytes)?).await.is_err() {
                    return Ok(false);
                }
            }
            if next == 0 {
                return Ok(true);
            }
            cursor = next;
        }
    }

    /// Every mapping (and value) scanned into `sink`, batch by batch.
    pub(super) fn scan_rows(
        &self,
        with_values: bool,
        sink: tokio::sync::mpsc::Sender<Row>,
    ) -> BoxFuture<Result<(), StoreError>> {
        let this = self.clone();
        Box::pin(async move {
            let open = this
                .scan_into("customer:", &sink, |user, bytes| {
                    Ok(Row::Customer {
                        user,
                        record: CustomerRecord::decode(&bytes)?,
                    })
                })
                .await?;
            if with_values && open {
                this.scan_into("value:", &sink, |name, bytes| {
                    let data = String::from_utf8(unversioned(bytes)?)
                        .map_err(|_| StoreError::other("a stored value is not UTF-8"))?;
                    Ok(Row::Value { name, data })
                })
                .await?;
            }
            Ok(())
        })
    }
}

/// `text` matched literally by a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
