//! `tether liveperson console`: what to enter in LivePerson's console, one setting a line.

use super::EXIT_INVALID;
use crate::config;
use crate::vendors::liveperson::console;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum LivePersonCommand {
    /// Print every value to enter in LivePerson's console (issuer, JWKS URL or public key,
    /// endpoints, client id, the authentication method's name, the popup redirect notes).
    Console {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
}

pub fn main(command: LivePersonCommand) -> ExitCode {
    let LivePersonCommand::Console { config: path } = command;
    let config = match config::load_file(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if !config.liveperson.enabled {
        eprintln!("{}: [liveperson] is not enabled", path.display());
        return ExitCode::from(EXIT_INVALID);
    }
    match console::settings(&config) {
        Ok(settings) => {
            let width = settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for setting in settings {
                println!("{:width$}  {}", setting.name, setting.value);
                println!("{:width$}  ({})", "", setting.note);
            }
            ExitCode::SUCCESS
        }
        Err((key, why)) => {
            eprintln!("{}", config.origin.error_at(key, why));
            ExitCode::from(EXIT_INVALID)
        }
    }
}
