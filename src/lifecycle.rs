//! How a run starts and stops: the error that prevents start-up, and the stop signal every
//! listener and background task waits on. Below the server, the admin listener and TLS.

use crate::config::ConfigError;
use std::net::SocketAddr;
use tokio::sync::watch;

/// Why Tether could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration, or a file it names, is invalid (exit code 2).
    Config(ConfigError),
    /// A listener could not be bound (exit code 1).
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// Anything else that stops start-up (exit code 1).
    Fatal(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(err) => err.fmt(f),
            Self::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            Self::Fatal(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StartError {}

/// Resolves once shutdown has begun. (Not `wait_for` inline in a select: its guard is not Send.)
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
