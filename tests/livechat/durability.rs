//! `kill -9` at any moment loses no mapping a user has seen: the real binary, a file store, and
//! SIGKILL right after the answers arrive.

use crate::support::backend::Backend;
use crate::support::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

/// Starts `tether run` and returns it with its TLS port (read from the JSON "serving" log line).
fn spawn_tether(config: &std::path::Path) -> (std::process::Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["run", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("tether exited before serving").unwrap();
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["message"] == "tether is serving" {
            let addr = event["tls_addr"].as_str().unwrap();
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_mapping() {
    let sandbox = SandboxAccounts::start(SandboxConfig::default())
        .await
        .unwrap();
    let app = Backend::start().await;
    let certs = TestCerts::new();
    let dir = certs.dir.path();
    let defaults = SandboxConfig::default();
    let config = dir.join("tether.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[tls]
cert = "{cert}"
key = "{key}"
[upstream]
url = "http://{app}"
[store]
kind = "file"
path = "{db}"
[livechat]
enabled = true
license_id = 1
organization_id = "{org}"
client_id = "{client}"
client_secret = "{secret}"
refresh_token = "{refresh}"
accounts_url = "{accounts}"
[log]
format = "json"
access_log = false
"#,
            cert = certs.cert_path.display(),
            key = certs.key_path.display(),
            app = app.addr,
            db = dir.join("data/tether.db").display(),
            org = defaults.organization_id,
            client = defaults.client_id,
            secret = defaults.client_secret,
            refresh = defaults.refresh_token,
            accounts = sandbox.url(),
        ),
    )
    .unwrap();
    let client = certs.client_builder().http1_only().build().unwrap();
    let entity_of = |port: u16, user: String| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("https://localhost:{port}/.tether/livechat/token"))
                .header("cookie", format!("session={user}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let token: serde_json::Value = response.json().await.unwrap();
            token["entityId"].as_str().unwrap().to_string()
        }
    };

    let (mut first, port) = spawn_tether(&config);
    let users: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let seen =
        futures_util::future::join_all(users.iter().map(|u| entity_of(port, u.clone()))).await;
    // SIGKILL as soon as the last answer arrived: no chance to flush anything on the way out.
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, port) = spawn_tether(&config);
    let after =
        futures_util::future::join_all(users.iter().map(|u| entity_of(port, u.clone()))).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(seen, after, "every entity id a user saw survived kill -9");
    assert_eq!(
        sandbox.customers_created(),
        50,
        "no user got a second customer"
    );
}
