//! The erasure log: a stream of erased users' hashes that every replica reads (`store::erasure`).

use super::RedisStore;
use crate::io::BoxFuture;
use crate::store::{user_hash, ErasureCursor, Erasures, StoreError, LOG_LENGTH};
use std::sync::atomic::Ordering::Relaxed;

impl RedisStore {
    /// Drops cached mappings of erased users (all of them when some erasures were missed).
    pub(super) fn drop_erased(&self, erased: &std::collections::HashSet<&str>, everything: bool) {
        self.erasure_epoch.fetch_add(1, Relaxed);
        if everything {
            self.customers.invalidate_all();
        } else if !erased.is_empty() {
            for (user, _) in self.customers.iter() {
                if erased.contains(user_hash(&user).as_str()) {
                    self.customers.invalidate(user.as_str());
                }
            }
        }
    }

    /// Erasures logged after `cursor`; drops this replica's cached mappings of those users.
    pub(super) fn read_erasures(
        &self,
        cursor: ErasureCursor,
    ) -> BoxFuture<Result<Erasures, StoreError>> {
        let key = self.key("erasures", "");
        let this = self.clone();
        Box::pin(async move {
            let Some(after) = cursor.0.clone() else {
                // Start at the log's end: what this replica caches is newer than any entry.
                let last: Vec<StreamEntry> = this
                    .query(
                        "erasures",
                        redis::cmd("XREVRANGE")
                            .arg(&key)
                            .arg("+")
                            .arg("-")
                            .arg("COUNT")
                            .arg(1)
                            .to_owned(),
                    )
                    .await?;
                let end = last
                    .first()
                    .map_or_else(|| "0-0".to_string(), |(id, _)| id.clone());
                return Ok(Erasures {
                    cursor: ErasureCursor(Some(end)),
                    ..Erasures::default()
                });
            };
            // Inclusive start (Redis 6.0 has no exclusive ranges): the entry at the cursor is
            // skipped below.
            let (entries, first, length): (Vec<StreamEntry>, Vec<StreamEntry>, u64) = this
                .pipeline(
                    "erasures",
                    redis::pipe()
                        .cmd("XRANGE")
                        .arg(&key)
                        .arg(&after)
                        .arg("+")
                        .arg("COUNT")
                        .arg(1000)
                        .cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .arg("COUNT")
                        .arg(1)
                        .cmd("XLEN")
                        .arg(&key)
                        .to_owned(),
                )
                .await?;
            let oldest = first.first().map(|(id, _)| stream_id(id));
            // A full log whose oldest entry is past the cursor may have lost entries for us.
            let missed_some =
                length >= LOG_LENGTH && oldest.is_some_and(|oldest| oldest > stream_id(&after));
            let mut erasures = Erasures {
                missed_some,
                cursor: ErasureCursor(Some(after.clone())),
                ..Erasures::default()
            };
            for (id, fields) in entries {
                if id == after {
                    continue;
                }
                if let Some((_, hash)) = fields.into_iter().find(|(name, _)| name == "user") {
                    erasures.users.push(hash);
                }
                erasures.cursor = ErasureCursor(Some(id));
            }
            let erased = erasures.users.iter().map(String::as_str).collect();
            this.drop_erased(&erased, missed_some);
            Ok(erasures)
        })
    }
}

/// A stream entry as XRANGE answers it: its id and its fields.
type StreamEntry = (String, Vec<(String, String)>);

/// A stream entry id (`ms-seq`) as a comparable pair.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
