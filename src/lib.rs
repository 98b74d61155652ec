//! Tether: a TLS-terminating reverse-proxy sidecar that gives an existing web app a chat identity
//! backend.
//!
//! Where things live:
//! - `config`: the TOML file, its units, and file:line:col errors.
//! - `server`: listeners, TLS handshakes, HTTP/1.1 and HTTP/2 connections, graceful shutdown.
//! - `proxy`: the request path: reserved prefix routing (`proxy::reserved`), header policy
//!   (`proxy::headers`), forwarding and WebSocket tunnels (`proxy::forward`).
//! - `livechat`: LiveChat's Custom Identity Provider (per-user customer tokens).
//! - `liveperson`: LivePerson's authenticated consumers (an OpenID Connect provider).
//! - `inject`: the widget and its identity put on the app's HTML pages as they stream through.
//! - `identity`: who is logged in (asks the app); `store`: durable mappings and one-time codes.
//! - `endpoints`: the reserved-prefix router; `respond`: the answers every endpoint gives.
//! - `erasure`: forgetting one user; `store_commands`: `tether store export|import|forget|backup`.
//! - `tls`: certificates, development pairs, hot reload.
//! - `admin` (and `admin_store`), `metrics`, `logging`, `redact`: operations.
//! - `lifecycle` (start-up error, stop signal), `clock`, `io`: shared helpers below the rest.
//! - `cli`: the `tether` command, one module per command.

pub mod admin;
pub mod admin_store;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod endpoints;
pub mod erasure;
pub mod identity;
pub mod inject;
pub mod io;
pub mod lifecycle;
pub mod livechat;
pub mod liveperson;
pub mod logging;
pub mod metrics;
pub mod proxy;
mod random;
pub mod redact;
pub mod respond;
pub mod server;
pub mod store;
pub mod store_commands;
pub mod throttle;
pub mod tls;
pub mod user_key;

pub use config::Config;
pub use server::{start, start_proxy_only, start_with, Running, ShutdownReport, StartError};
