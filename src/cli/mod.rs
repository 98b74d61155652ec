//! The `tether` command: `run`, `check`, `doctor`, `demo`, `livechat authorize`, `liveperson
//! console`, `liveperson-key`, `salesforce jwk`, `store ...`, `--version`.
//! Exit codes: 0 clean shutdown or valid configuration, 2 invalid configuration or arguments,
//! 1 any other fatal error. Each command's body lives in its own module.

mod doctor;
mod livechat;
mod liveperson;
mod liveperson_key;
mod salesforce;
mod serve;
mod store;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tether",
    version,
    about = "A TLS reverse-proxy sidecar that gives a web app a chat identity backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: terminate TLS and forward to the app.
    Run {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
    /// Validate the configuration and the files it names, then exit (0 valid, 2 invalid).
    Check {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
        /// Production-unsafe settings are errors (exit 2), not warnings.
        #[arg(long)]
        strict: bool,
    },
    /// `check`, then online: the vendors' credentials and scopes, the app's identity probe, the
    /// issuer's JWKS at its public URL. One line per check; exit 0 all good, 1 otherwise.
    Doctor {
        #[arg(long, short, value_name = "PATH")]
        config: PathBuf,
    },
    /// Connecting a LiveChat account.
    Livechat {
        #[command(subcommand)]
        command: livechat::LiveChatCommand,
    },
    /// Connecting a LivePerson account.
    Liveperson {
        #[command(subcommand)]
        command: liveperson::LivePersonCommand,
    },
    /// Connecting a Salesforce deployment.
    Salesforce {
        #[command(subcommand)]
        command: salesforce::SalesforceCommand,
    },
    /// LivePerson's signing key: print the one-line public key and `kid` for LivePerson's console,
    /// or generate a new key.
    LivepersonKey {
        /// Read `signing.key` (or `liveperson.signing_key`) from this configuration.
        #[arg(long, short, value_name = "PATH", conflicts_with_all = ["key", "generate"])]
        config: Option<PathBuf>,
        /// Read this key file (PKCS#8 PEM).
        #[arg(long, value_name = "PATH", conflicts_with = "generate")]
        key: Option<PathBuf>,
        /// Write a new 2048-bit RSA key to PATH (never overwrites), then print its public key.
        #[arg(long, value_name = "PATH")]
        generate: Option<PathBuf>,
    },
    /// The newcomer's tour: Tether + a demo app + a sandbox LiveChat accounts server.
    #[cfg(feature = "demo")]
    Demo {
        /// Where Tether listens (TLS).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
    },
    /// Move, erase and back up the user -> customer mappings.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
}

const EXIT_INVALID: u8 = 2;
const EXIT_FATAL: u8 = 1;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(EXIT_INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check { config, strict } => serve::check(&config, strict),
        Command::Run { config } => serve::run(&config),
        Command::Doctor { config } => doctor::main(&config),
        Command::Livechat { command } => livechat::main(command),
        Command::Liveperson { command } => liveperson::main(command),
        Command::Salesforce { command } => salesforce::main(command),
        #[cfg(feature = "demo")]
        Command::Demo { listen } => serve::demo(listen),
        Command::LivepersonKey {
            config,
            key,
            generate,
        } => liveperson_key::liveperson_key(config, key, generate),
        Command::Store { command } => store::main(command),
    }
}

/// The runtime the commands run on (serving cores start their own).
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("cannot start the runtime: {err}");
            ExitCode::from(EXIT_FATAL)
        })
}
