//! `tether store import`: JSON Lines (as `export` writes them) into any store kind, insert if
//! absent. A user already mapped to another customer is reported and kept, never overwritten; a
//! second run of the same file changes nothing.

use super::{memory_store_refused, open_redis, CommandError};
use crate::config::{Config, StoreKind};
use crate::store::{FileStore, Row, Store};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::io::BufRead;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Writes in flight at once: enough to fill the file store's group commits (one fsync per batch)
/// and Redis' pipeline. (256 took 52 s for a million mappings into the file store.)
const IN_FLIGHT: usize = 4096;

/// What an import did, line by line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Mappings recorded by this run.
    pub imported: u64,
    /// Mappings already recorded with the same customer, and values already set.
    pub already_present: u64,
    /// Users already recorded with another customer: kept as they were.
    pub conflicts: u64,
    /// Named values recorded (values already set are kept).
    pub values_imported: u64,
    /// Lines that are not mappings (each reported with its position).
    pub invalid: u64,
}

/// Where messages and progress go (a terminal's progress bar, or nothing).
pub trait Progress: Send {
    /// One more line read (`bytes` long, newline included).
    fn advance(&mut self, bytes: u64);
    /// A message for the operator (conflicts, invalid lines).
    fn report(&mut self, message: String);
}

/// `input` is read on its own thread; `source` names it in messages.
pub async fn import(
    config: &Config,
    input: Box<dyn BufRead + Send>,
    source: &str,
    progress: &mut dyn Progress,
) -> Result<ImportReport, CommandError> {
    let store: Arc<dyn Store> = match config.store.kind {
        StoreKind::Memory => return Err(memory_store_refused()),
        StoreKind::File => Arc::new(FileStore::open(&config.store.path)?),
        StoreKind::Redis => Arc::new(open_redis(config).await?),
    };
    let (sink, mut lines) = mpsc::channel::<std::io::Result<(u64, String)>>(1024);
    let reader = std::thread::spawn(move || read_lines(input, &sink));
    let mut report = ImportReport::default();
    let mut in_flight = FuturesUnordered::new();
    while let Some(line) = lines.recv().await {
        let (line_no, text) =
            line.map_err(|err| CommandError::Failed(format!("{source}: {err}")))?;
        progress.advance(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        match Row::from_line(&text) {
            Err((column, why)) => {
                report.invalid += 1;
                progress.report(format!("{source}:{line_no}:{column}: {why}"));
            }
            Ok(row) => in_flight.push(apply(store.clone(), line_no, row)),
        }
        if in_flight.len() >= IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                tally(done?, source, &mut report, progress);
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        tally(done?, source, &mut report, progress);
    }
    let _ = reader.join();
    Ok(report)
}

fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    sink: &mpsc::Sender<std::io::Result<(u64, String)>>,
) {
    let mut line_no = 0;
    loop {
        let mut text = String::new();
        let read = input.read_line(&mut text);
        line_no += 1;
        let item = match read {
            Ok(0) => return,
            Ok(_) => Ok((line_no, text.trim_end_matches(['\n', '\r']).to_string())),
            Err(err) => Err(err),
        };
        let failed = item.is_err();
        if sink.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

/// How one row fared.
enum Applied {
    Imported,
    Present,
    Conflict {
        line_no: u64,
        user: String,
        kept: String,
        offered: String,
    },
    ValueImported,
    ValuePresent,
}

async fn apply(store: Arc<dyn Store>, line_no: u64, row: Row) -> Result<Applied, CommandError> {
    match row {
        Row::Customer { user, record } => {
            // One round trip: the store says whether this call inserted, so a second run
            // counts what it finds as present, not as imported.
            let (winner, inserted) = store
                .insert_customer_reporting(&user, record.clone())
                .await?;
            Ok(if inserted {
                Applied::Imported
            } else if winner.entity_id == record.entity_id {
                Applied::Present
            } else {
                Applied::Conflict {
                    line_no,
                    user,
                    kept: winner.entity_id,
                    offered: record.entity_id,
                }
            })
        }
        // Values (the agent's OAuth tokens) are set only where none is: an import never rolls
        // back a token the destination already rotated.
        Row::Value { name, data } => {
            if store.value(&name).await?.is_some() {
                return Ok(Applied::ValuePresent);
            }
            store.set_value(&name, data).await?;
            Ok(Applied::ValueImported)
        }
    }
}

fn tally(applied: Applied, source: &str, report: &mut ImportReport, progress: &mut dyn Progress) {
    match applied {
        Applied::Imported => report.imported += 1,
        Applied::Present | Applied::ValuePresent => report.already_present += 1,
        Applied::ValueImported => report.values_imported += 1,
        Applied::Conflict {
            line_no,
            user,
            kept,
            offered,
        } => {
            report.conflicts += 1;
            progress.report(format!(
                "{source}:{line_no}: user {user:?} is already mapped to customer {kept}; kept it (the line says {offered})"
            ));
        }
    }
}
