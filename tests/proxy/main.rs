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

/// Every test above, run again on the HTTP/1.1 engine that is not the default.
#[test]
fn every_proxy_test_passes_on_the_other_http1_engine() {
    support::the_other_engine_passes_too("every_proxy_test_passes_on_the_other_http1_engine");
}
