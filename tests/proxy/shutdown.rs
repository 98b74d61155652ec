//! SIGTERM on the real binary: readiness fails, listeners close, in-flight requests finish.

use crate::support::backend::Backend;
use crate::support::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let certs = TestCerts::new();
    let backend = Backend::start().await;
    let config_path = certs.dir.path().join("tether.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace = "10s"
[tls]
cert = "{}"
key = "{}"
[upstream]
url = "http://{}"
[log]
format = "json"
"#,
            certs.cert_path.display(),
            certs.key_path.display(),
            backend.addr
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["run", "--config"])
        .arg(&config_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The "serving" log line tells where the listeners are.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let serving: serde_json::Value = loop {
        let line = lines.next().expect("tether exited before serving").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["message"] == "tether is serving" {
            break event;
        }
    };
    let tls_port: u16 = serving["tls_addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let admin = serving["admin_addr"]
        .as_str()
        .unwrap()
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_string();
    std::thread::spawn(move || lines.for_each(drop)); // keep draining the log pipe

    let client = certs.client();
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let request = client
                .get(format!("https://localhost:{tls_port}/slow?ms=1500&n={i}"))
                .send();
            tokio::spawn(request)
        })
        .collect();
    wait_until(
        "the app has all five requests",
        Duration::from_secs(10),
        || async { backend.count("/slow") == 5 },
    )
    .await;
    crate::support::signal(child.id(), "TERM");

    wait_until(
        "readiness fails while draining",
        Duration::from_secs(5),
        || async {
            let response = reqwest::get(format!("http://{admin}/readyz"))
                .await
                .unwrap();
            response.status() == 503
        },
    )
    .await;
    for request in in_flight {
        let response = request.await.unwrap().expect("in-flight request completed");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "slow");
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean shutdown exits 0");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
            .await
            .is_err(),
        "listener still open"
    );
}
