//! Reading every mapping and value while Redis serves (SCAN in batches, then the values), for
//! export: on the one primary, or on each primary of a Cluster in turn.

use super::{unversioned, RedisStore};
use crate::io::BoxFuture;
use crate::store::{CustomerRecord, Row, StoreError};

impl RedisStore {
    /// One SCAN step over the keys of one kind on `node` (a Cluster primary; None: the one
    /// primary), with their values: (next cursor, 0 at the end; the names after the kind's
    /// prefix and their values).
    async fn scan_step(
        &self,
        kind: &str,
        node: Option<&(String, u16)>,
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
        let mut connection = self.connection.clone();
        let (next, keys): (u64, Vec<String>) =
            tokio::time::timeout(self.timeout, connection.on_node(node, scan))
                .await
                .map_err(|_| StoreError::Timeout {
                    what: "scan",
                    after: self.timeout,
                })?
                .map_err(|err| super::failed("scan", err))?;
        if keys.is_empty() {
            return Ok((next, Vec::new()));
        }
        // In a Cluster the keys are on many slots: one GET each (pipelined by the multiplexed
        // connections); otherwise one MGET.
        let values: Vec<Option<Vec<u8>>> = if self.cluster {
            let reads = keys.iter().map(|key| {
                self.query::<Option<Vec<u8>>>("scan", redis::cmd("GET").arg(key).to_owned())
            });
            futures_util::future::join_all(reads)
                .await
                .into_iter()
                .collect::<Result<_, _>>()?
        } else {
            self.query("scan", redis::cmd("MGET").arg(&keys).to_owned())
                .await?
        };
        // A key erased between SCAN and the read is simply gone.
        let found = keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key[prefix.len()..].to_string(), value?)))
            .collect();
        Ok((next, found))
    }

    /// Sends every key of one kind to `sink`, batch by batch, node by node; false once the
    /// receiver is gone.
    async fn scan_into(
        &self,
        kind: &str,
        sink: &tokio::sync::mpsc::Sender<Row>,
        row: impl Fn(String, Vec<u8>) -> Result<Row, StoreError>,
    ) -> Result<bool, StoreError> {
        let nodes = self
            .connection
            .clone()
            .cluster_primaries()
            .await
            .map_err(|err| super::failed("scan", err))?;
        let nodes: Vec<Option<(String, u16)>> = match nodes {
            Some(primaries) => primaries.into_iter().map(Some).collect(),
            None => vec![None],
        };
        for node in &nodes {
            let mut cursor = 0;
            loop {
                let (next, found) = self.scan_step(kind, node.as_ref(), cursor).await?;
                for (name, bytes) in found {
                    if sink.send(row(name, bytes)?).await.is_err() {
                        return Ok(false);
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(true)
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
