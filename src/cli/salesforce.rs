//! `tether salesforce jwk`: the signing key as one JWK with `x5c`, for Salesforce's "uploaded
//! keys" keyset (Setup > Enhanced Chat User Verification).

use super::EXIT_INVALID;
use crate::config;
use crate::signing::Signer;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum SalesforceCommand {
    /// Print the signing key as one JWK (with x5c, a certificate valid for two years) to upload
    /// to Salesforce's keyset, instead of giving it the JWKS URL.
    Jwk {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
}

pub fn main(command: SalesforceCommand) -> ExitCode {
    let SalesforceCommand::Jwk { config: path } = command;
    let config = match config::load_file(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let jwk = Signer::load(&config)
        .map_err(|(key, why)| config.origin.error_at(key, why).to_string())
        .and_then(|signer| signer.active_jwk());
    match jwk {
        Ok(jwk) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&jwk).expect("a JWK serialises")
            );
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("{why}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
