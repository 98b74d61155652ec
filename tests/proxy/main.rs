//! End-to-end tests of the proxy: Tether in-process on 127.0.0.1:0 with rcgen certificates, a
//! recording app behind it, and real clients in front.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod app_connections;
mod config_errors;
mod h2;
mod identity;
mod limits;
mod reload;
mod shutdown;
mod transparency;
mod websocket;
