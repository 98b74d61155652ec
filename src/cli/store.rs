//! `tether store export | import | forget | backup`: argument handling and reporting; the work
//! is in `store_commands`.

use super::{current_thread_runtime, EXIT_FATAL, EXIT_INVALID};
use crate::config::{self, Config};
use crate::store_commands::{self, CommandError, ImportReport, Progress};
use clap::Subcommand;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Write every user -> customer mapping as JSON Lines on stdout.
    Export {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        /// Also the store's named values (the LiveChat agent's current OAuth tokens), so a move
        /// to a new store keeps an agent refresh token LiveChat has rotated.
        #[arg(long)]
        with_values: bool,
    },
    /// Read mappings (as `export` writes them) from FILE or stdin; insert if absent, never
    /// overwrite. Exit 0 all recorded or present, 1 conflicts, 2 invalid lines.
    Import {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        /// JSON Lines file; stdin when absent or "-".
        file: Option<PathBuf>,
    },
    /// Erase one user: their mapping, and their cached tokens on every replica.
    Forget {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        user: String,
    },
    /// Copy the embedded store, consistently, to a new store file OUT (also while Tether runs).
    Backup {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        out: PathBuf,
    },
}

pub fn main(command: StoreCommand) -> ExitCode {
    let runtime = match current_thread_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        match command {
            StoreCommand::Export {
                config,
                with_values,
            } => export(&load(&config)?, with_values).await,
            StoreCommand::Import { config, file } => import(&load(&config)?, file).await,
            StoreCommand::Forget { config, user } => forget(&load(&config)?, &user).await,
            StoreCommand::Backup { config, out } => backup(&load(&config)?, &out).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(match err {
                CommandError::Invalid(_) => EXIT_INVALID,
                CommandError::Failed(_) => EXIT_FATAL,
            })
        }
    }
}

fn load(path: &Path) -> Result<Config, CommandError> {
    config::load_file(path).map_err(|err| CommandError::Invalid(err.to_string()))
}

async fn export(config: &Config, with_values: bool) -> Result<ExitCode, CommandError> {
    let mut stdout = std::io::stdout();
    let rows = store_commands::export(config, with_values, &mut stdout).await?;
    if with_values {
        eprintln!("exported {rows} rows");
    } else {
        eprintln!("exported {rows} mappings (moving to a new store? add --with-values, so the LiveChat agent's current OAuth tokens move too)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(config: &Config, file: Option<PathBuf>) -> Result<ExitCode, CommandError> {
    let (input, source, size): (Box<dyn std::io::BufRead + Send>, String, Option<u64>) =
        match file.filter(|file| file.as_os_str() != "-") {
            Some(path) => {
                let opened = std::fs::File::open(&path)
                    .map_err(|err| CommandError::Invalid(format!("{}: {err}", path.display())))?;
                let size = opened.metadata().ok().map(|meta| meta.len());
                let reader = std::io::BufReader::with_capacity(256 * 1024, opened);
                (Box::new(reader), path.display().to_string(), size)
            }
            None => (
                Box::new(std::io::BufReader::new(std::io::stdin())),
                "stdin".into(),
                None,
            ),
        };
    let mut progress = TerminalProgress::new(size);
    let report = store_commands::import(config, input, &source, &mut progress).await?;
    progress.finish();
    let ImportReport {
        imported,
        already_present,
        conflicts,
        values_imported,
        invalid,
    } = report;
    eprintln!(
        "imported {imported} mappings and {values_imported} values; {already_present} already present; {conflicts} conflicts (kept as they were); {invalid} invalid lines"
    );
    Ok(if invalid > 0 {
        ExitCode::from(EXIT_INVALID)
    } else if conflicts > 0 {
        ExitCode::from(EXIT_FATAL)
    } else {
        ExitCode::SUCCESS
    })
}

async fn forget(config: &Config, user: &str) -> Result<ExitCode, CommandError> {
    let forgotten = store_commands::forget(config, user).await?;
    let how = if forgotten.through_running_tether {
        " (through the running Tether)"
    } else {
        ""
    };
    if forgotten.removed {
        eprintln!("erased the user's mapping and cached tokens{how}; their next login gets a new LiveChat customer");
    } else {
        eprintln!("no mapping was recorded for that user; cached tokens were dropped{how}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn backup(config: &Config, out: &Path) -> Result<ExitCode, CommandError> {
    let rows = store_commands::backup(config, out).await?;
    eprintln!("backed up {rows} rows to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr when it is a terminal; messages go above it (or plainly to stderr).
struct TerminalProgress(Option<indicatif::ProgressBar>);

impl TerminalProgress {
    fn new(size: Option<u64>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = match size {
            Some(size) => indicatif::ProgressBar::new(size).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template"),
            ),
            None => indicatif::ProgressBar::new_spinner(),
        };
        Self(Some(bar))
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Progress for TerminalProgress {
    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    fn report(&mut self, message: String) {
        match &self.0 {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }
}
