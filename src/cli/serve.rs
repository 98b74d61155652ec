//! `tether run`, `tether check` and `tether demo`.

use super::{current_thread_runtime, EXIT_FATAL, EXIT_INVALID};
use crate::config::{self, Config, ConfigError};
use crate::{logging, tls};
use std::process::ExitCode;

pub fn check(path: &std::path::Path, strict: bool) -> ExitCode {
    match config::load_file(path).and_then(|config| check_named_files(&config).map(|()| config)) {
        Ok(config) => {
            let warnings = warnings_for(&config);
            for warning in &warnings {
                eprintln!("{warning}");
            }
            if strict && !warnings.is_empty() {
                eprintln!("{} production-unsafe settings (--strict)", warnings.len());
                return ExitCode::from(EXIT_INVALID);
            }
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

/// Production-unsafe settings, and a Redis store that answers but would lose mappings (a Redis
/// that does not answer is not the file's fault: Tether starts without it).
fn warnings_for(config: &Config) -> Vec<String> {
    let mut warnings: Vec<String> = config::production_warnings(config)
        .iter()
        .map(ConfigError::as_warning)
        .collect();
    if config.store.kind == config::StoreKind::Redis {
        let durability = current_thread_runtime().ok().and_then(|runtime| {
            runtime.block_on(async {
                let store = crate::store::RedisStore::open(&config.store).ok()?;
                store.durability().await.ok().flatten()
            })
        });
        if let Some(problem) = durability {
            warnings.push(config.origin.error_at("store.url", problem).as_warning());
        }
    }
    warnings
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
    if config.signs_with_rsa() {
        crate::signing::Signer::load(config)
            .map_err(|(key, why)| config.origin.error_at(key, why))?;
    }
    if config.liveperson.enabled {
        if let Some(path) = &config.liveperson.encryption_key {
            crate::signing::keys::load_encryption_key(path)
                .map_err(|why| config.origin.error_at("liveperson.encryption_key", why))?;
        }
    }
    Ok(())
}

pub fn run(path: &std::path::Path) -> ExitCode {
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
    let runtime = match current_thread_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(serve_until_signal(config))
}

#[cfg(feature = "demo")]
pub fn demo(listen: std::net::SocketAddr) -> ExitCode {
    let runtime = match current_thread_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
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
