//! Secrets never reach the logs, at any level: every crate logs at TRACE here while requests carry
//! cookies, credentials and identity headers over HTTP/1.1 and HTTP/2, and the app sets cookies.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use support::*;

const SECRET: &str = "s3cr3t-value-9f2c";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_is_logged_even_at_trace() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let (certs, _app, tether) = start_app_and_tether(|c| c.log.access_log = true).await;
    let h2 = certs.client();
    let h1 = certs.client_builder().http1_only().build().unwrap();
    for client in [&h1, &h2] {
        for path in [
            "/echo/a?token=",
            "/hop?code=",
            "/.tether/livechat/token?x=",
            "/%2Etether/y?z=",
        ] {
            let response = client
                .get(format!("{}{path}{SECRET}", tether.https))
                .header("cookie", format!("session={SECRET}"))
                .header("authorization", format!("Bearer {SECRET}"))
                .header("proxy-authorization", format!("Basic {SECRET}"))
                .header("x-authenticated-user", SECRET)
                .send()
                .await
                .unwrap();
            let _ = response.bytes().await;
        }
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("tether::access"),
        "the access log ran:\n{logs}"
    );
    assert!(logs.lines().count() > 50, "trace logging ran");
    let leaks: Vec<&str> = logs.lines().filter(|line| line.contains(SECRET)).collect();
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}
