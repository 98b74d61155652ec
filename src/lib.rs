//! Tether: a TLS-terminating reverse-proxy sidecar that gives an existing web app a chat identity
//! backend.
//!
//! The library is the product; `main.rs` only calls `cli::main`. Its public surface is what an
//! embedder or a test needs to run Tether: the configuration (`config`, `redact::Secret`),
//! `start` and the handle it returns. The internals the test suites drive below that are in
//! `testing`, behind the `testing` feature.
//!
//! Where things live, from the top down (dependencies point down only):
//! - `cli`: the `tether` command, one module per command; `demo`: the newcomer's tour.
//! - `server`: listeners, TLS handshakes, HTTP/1.1 and HTTP/2 connections, graceful shutdown.
//! - `router`: the reserved prefix (`{prefix}/{vendor}/...`, the page loader, the JWKS).
//! - `vendors`: the vendor interface and one module per chat vendor (`vendors::livechat`,
//!   `vendors::liveperson`).
//! - `admin` (and `admin_store`), `erasure`, `store_commands`: operations.
//! - `identity`: who is signed in; `signing`: keys, JWKS, JOSE; `store`: durable mappings,
//!   one-time codes, leases.
//! - `proxy`: the request path (`Proxy::handle`: identity hygiene, the reserved prefix, then
//!   `Proxy::forward` to the app through `proxy::upstream`); `inject`: the snippets on pages.
//! - `refusal` and `respond`: every answer Tether writes itself.
//! - `config`, `tls`, `metrics`, `logging`, `redact`, `lifecycle`, `clock`, `io`, `random`:
//!   shared below the rest.

mod admin;
mod admin_store;
mod cli;
mod clock;
pub mod config;
#[cfg(feature = "demo")]
mod demo;
mod doctor;
mod erasure;
mod health;
mod hex;
mod identity;
mod inject;
mod io;
mod lifecycle;
mod logging;
mod metrics;
mod proxy;
mod random;
pub mod redact;
mod refusal;
mod respond;
mod router;
mod server;
mod shared_limit;
mod signing;
mod store;
mod store_commands;
mod throttle;
mod tls;
mod user_key;
mod vendors;

#[cfg(feature = "testing")]
pub mod testing;

pub use cli::main;
pub use config::Config;
pub use server::{start, start_proxy_only, Running, ShutdownReport, StartError};
