//! `tether store export`: every mapping as JSON Lines, streamed (a million mappings need the
//! memory of a few).

use super::{finish_reading, start_reading, CommandError};
use crate::config::Config;
use std::io::Write;
use tokio::sync::mpsc;

/// Writes every mapping (and the named values with `with_values`) to `out`; the number of rows.
pub async fn export(
    config: &Config,
    with_values: bool,
    out: &mut (dyn Write + Send),
) -> Result<u64, CommandError> {
    let (sink, mut rows) = mpsc::channel(1024);
    let reader = start_reading(config, with_values, sink)?;
    let mut count = 0;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Some(row) = rows.recv().await {
        out.write_all(row.to_line().as_bytes())?;
        count += 1;
    }
    // A reader that failed midway must not pass for a complete export.
    finish_reading(reader).await?;
    out.flush()?;
    Ok(count)
}
