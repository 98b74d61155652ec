//! The `tether` command: `run`, `check`, `demo`, `liveperson-key`, `--version`. Exit codes: 0 clean shutdown or valid
//! configuration, 2 invalid configuration or arguments, 1 any other fatal error.

use crate::config::{self, Config, ConfigError};
use crate::{logging, tls};
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
    },
    /// LivePerson's signing key: print the one-line public key and `kid` for LivePerson's console,
    /// or generate a new key.
    LivepersonKey {
        /// Read `liveperson.signing_key` from this configuration.
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
    Demo {
        /// Where Tether listens (TLS).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
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
        Command::Check { config } => check(&config),
        Command::Run { config } => run(&config),
        Command::Demo { listen } => demo(listen),
        Command::LivepersonKey {
            config,
            key,
            generate,
        } => liveperson_key(config, key, generate),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load_file(path).and_then(|config| check_named_files(&config).map(|()| config)) {
        Ok(config) => {
            println!(
                "{}: ok (TLS on {}, app at http://{})",
                path.display(),
                config.server.listen,
                config.upstream.url
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The checks that read other files or need more than one key: certificate pair, log filter.
pub fn check_named_files(config: &Config) -> Result<(), ConfigError> {
    tracing_subscriber::EnvFilter::try_new(&config.log.level).map_err(|err| {
        config.origin.error_at(
            "log.level",
            format!("expected a log filter such as \"info\" or \"tether=debug\": {err}"),
        )
    })?;
    let will_generate =
        config.tls.self_signed && !config.tls.cert.exists() && !config.tls.key.exists();
    if !will_generate {
        tls::load_pair(&config.tls.cert, &config.tls.key)
            .map_err(|err| config.origin.error_at(err.key, err.message))?;
    }
    if config.liveperson.enabled {
        crate::liveperson::keys::load(&config.liveperson)
            .map_err(|(key, why)| config.origin.error_at(key, why))?;
    }
    Ok(())
}

fn liveperson_key(
    config: Option<PathBuf>,
    key: Option<PathBuf>,
    generate: Option<PathBuf>,
) -> ExitCode {
    use crate::liveperson::keys;
    let path = match (config, key, generate) {
        (Some(config), _, _) => match config::load_file(&config) {
            Ok(config) => config.liveperson.signing_key,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        (None, Some(key), _) => key,
        (None, None, Some(path)) => {
            if let Err(err) = keys::generate_pem().and_then(|pem| write_new_key(&path, &pem)) {
                eprintln!("cannot write {}: {err}", path.display());
                return ExitCode::from(EXIT_FATAL);
            }
            eprintln!("wrote a new signing key to {}", path.display());
            path
        }
        (None, None, None) => {
            eprintln!("expected --config PATH, --key PATH or --generate PATH");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let described = keys::load_signing_key(&path).and_then(|key| {
        Ok(format!(
            "kid: {}\npublic key (LivePerson console, \"JWT public key\"):\n{}",
            key.kid,
            keys::console_public_key(&key)?
        ))
    });
    match described {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Creates `path` readable by its owner only; refuses to replace an existing key.
fn write_new_key(path: &std::path::Path, pem: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    file.write_all(pem.as_bytes()).map_err(|e| e.to_string())
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match config::load_file(path)
        .and_then(|config| check_named_files(&config).map(|()| config))
    {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    logging::init(&config.log);
    // The control plane (signals, admin, certificate reloads); serving cores run their own runtimes.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    runtime.block_on(serve_until_signal(config))
}

fn demo(listen: std::net::SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match runtime.block_on(crate::demo::run(listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

async fn serve_until_signal(config: Config) -> ExitCode {
    let running = match crate::start(config).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            eprintln!("{err}");
            return ExitCode::from(match err {
                crate::StartError::Config(_) => EXIT_INVALID,
                crate::StartError::Bind { .. } | crate::StartError::Fatal(_) => EXIT_FATAL,
            });
        }
    };
    if let Err(err) = shutdown_signal().await {
        eprintln!("cannot listen for signals: {err}");
        return ExitCode::from(EXIT_FATAL);
    }
    let report = running.shutdown().await;
    if report.drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FATAL)
    }
}

async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
