//! Connecting a LiveChat account with the real binary: `tether livechat authorize` (the
//! authorization-code grant, against the sandbox's consent page and token endpoint) and
//! `tether doctor`, before and after, with and without a running Tether holding the store.

use crate::support::backend::Backend;
use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tether_sandbox::livechat::{SandboxAccounts, SandboxConfig};

struct Setup {
    certs: TestCerts,
    _app: Backend,
    sandbox: SandboxAccounts,
    config: std::path::PathBuf,
}

/// A free loopback port (bound, then let go), for a redirect URI the test registers.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sandbox registers `redirect`; the configuration names no refresh token.
async fn setup(redirect: &str, sandbox: SandboxConfig, extra: &str) -> Setup {
    let sandbox = SandboxAccounts::start(SandboxConfig {
        redirect_uris: vec![redirect.to_string()],
        ..sandbox
    })
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
admin_token = "admin-secret-for-tests"
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
accounts_url = "{accounts}"
api_url = "{accounts}"
authorize_redirect_uri = "{redirect}"
request_timeout = "2s"
{extra}
[log]
format = "json"
access_log = false
"#,
            cert = certs.cert_path.display(),
            key = certs.key_path.display(),
            app = app.addr,
            db = dir.join("tether.db").display(),
            org = defaults.organization_id,
            client = defaults.client_id,
            secret = defaults.client_secret,
            accounts = sandbox.url(),
        ),
    )
    .unwrap();
    Setup {
        certs,
        _app: app,
        sandbox,
        config,
    }
}

fn tether(args: &[&str], config: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command.args(args).arg("--config").arg(config);
    command
}

/// (exit code, stdout, stderr) of a finished command. Waited for on a blocking thread: the
/// sandbox and the app it calls answer on this test's runtime.
async fn finish(mut command: Command) -> (Option<i32>, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `tether run` child, killed when the test ends (also when it fails).
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tether run`, and its TLS and admin ports once it serves.
fn spawn_run(config: &std::path::Path) -> (Run, u16, u16) {
    let mut child = tether(&["run"], config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port_of = |event: &serde_json::Value, field: &str| -> u16 {
        // "127.0.0.1:8443", or Debug's "Some(127.0.0.1:9901)".
        let addr = event[field].as_str().unwrap().trim_end_matches(')');
        addr.rsplit(':').next().unwrap().parse().unwrap()
    };
    let (tls, admin) = loop {
        let line = lines.next().expect("tether exited before serving").unwrap();
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["message"] == "tether is serving" {
            break (port_of(&event, "tls_addr"), port_of(&event, "admin_addr"));
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Run(child), tls, admin)
}

/// The admin listener's port is chosen at start: the configuration must name it for the
/// commands that ask the running Tether.
fn pin_admin_port(config: &std::path::Path, port: u16) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(config, text).unwrap();
}

async fn token_status(setup: &Setup, port: u16, user: &str) -> reqwest::Response {
    setup
        .certs
        .client()
        .get(format!("https://localhost:{port}/.tether/livechat/token"))
        .header("cookie", format!("session={user}"))
        .send()
        .await
        .unwrap()
}

/// The whole first hour: doctor says LiveChat is not connected and how to connect it;
/// `authorize` prints LiveChat's consent URL, receives the code on the loopback redirect,
/// exchanges it and keeps the grant; `tether run` then mints customer tokens with it, and
/// doctor is all good.
#[tokio::test]
async fn authorize_on_the_loopback_redirect_connects_tether_run() {
    let redirect = format!("http://127.0.0.1:{}/livechat/callback", free_port());
    let setup = setup(&redirect, SandboxConfig::default(), "").await;

    let (code, out, _) = finish(tether(&["doctor"], &setup.config)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  livechat: LiveChat is not connected")
            && out.contains("tether livechat authorize"),
        "{out}"
    );

    let mut authorize = tether(&["livechat", "authorize"], &setup.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(authorize.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let consent = url::Url::parse(url.trim()).unwrap();
    assert!(url.starts_with(&setup.sandbox.url()), "{url}");
    let query: std::collections::HashMap<_, _> = consent.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], SandboxConfig::default().client_id);
    assert_eq!(query["redirect_uri"], redirect);
    assert!(query["state"].len() >= 20, "an unguessable state");

    // The Owner's browser: LiveChat's consent page sends it to the loopback redirect.
    let page = reqwest::get(url.trim()).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("You can close this tab"));
    let (status, rest, errors) = tokio::task::spawn_blocking(move || {
        let status = authorize.wait().unwrap();
        let (mut rest, mut errors) = (String::new(), String::new());
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        std::io::Read::read_to_string(&mut authorize.stderr.take().unwrap(), &mut errors).unwrap();
        (status, rest, errors)
    })
    .await
    .unwrap();
    assert!(status.success(), "{rest}{errors}");
    assert!(
        rest.contains("scopes granted: customers:own,customers:rw"),
        "{rest}"
    );
    assert_eq!(
        setup
            .sandbox
            .counters()
            .codes_exchanged
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let (run, port, _) = spawn_run(&setup.config);
    let response = token_status(&setup, port, "alice").await;
    assert_eq!(response.status(), 200, "tether run uses the kept grant");
    drop(run);

    let (code, out, _) = finish(tether(&["doctor"], &setup.config)).await;
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "ok    upstream",
        "ok    store",
        "ok    livechat",
        "ok    identity",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
}

/// A redirect that is not this machine: authorize prints the URL and how to finish; the code
/// pasted with --code is exchanged through the running Tether that holds the store (its admin
/// listener), which serves tokens at once without a restart. A code is good once.
#[tokio::test]
async fn a_pasted_code_connects_a_running_tether() {
    let redirect = "https://www.example.com/livechat/callback";
    let setup = setup(redirect, SandboxConfig::default(), "").await;
    let (_run, port, admin) = spawn_run(&setup.config);
    pin_admin_port(&setup.config, admin);

    let refused = token_status(&setup, port, "alice").await;
    assert_eq!(refused.status(), 503, "not connected yet");
    assert!(refused.headers().contains_key("retry-after"));
    let (code, out, _) = finish(tether(&["doctor"], &setup.config)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  livechat: LiveChat is not connected"),
        "asked the running Tether: {out}"
    );

    let (code, out, err) = finish(tether(&["livechat", "authorize"], &setup.config)).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--code"), "{err}");
    // The Owner signs in; LiveChat sends the browser to the brand's page with the code.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = no_redirects.get(out.trim()).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(redirect));
    let pasted = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();

    let (code, out, err) = finish(tether(
        &["livechat", "authorize", "--code", &pasted],
        &setup.config,
    ))
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let served = token_status(&setup, port, "alice").await;
    assert_eq!(served.status(), 200, "the running Tether adopted the grant");
    // Readiness re-reads a failing vendor check once a second.
    let readyz = format!("http://127.0.0.1:{admin}/readyz");
    wait_until(
        "readiness sees the grant",
        Duration::from_secs(5),
        || async { reqwest::get(&readyz).await.unwrap().status() == 200 },
    )
    .await;
    let (code, out, _) = finish(tether(&["doctor"], &setup.config)).await;
    assert_eq!(code, Some(0), "{out}");

    let (code, _, err) = finish(tether(
        &["livechat", "authorize", "--code", &pasted],
        &setup.config,
    ))
    .await;
    assert_eq!(code, Some(1), "a code is good once: {err}");
    assert!(err.contains("invalid_grant"), "{err}");
}

/// An app without customers:rw while profile sync is on: authorize keeps the grant (customer
/// tokens work) but fails, naming the scope and where to add it; doctor says the same.
#[tokio::test]
async fn a_grant_without_the_profile_scope_is_named() {
    let redirect = "https://www.example.com/livechat/callback";
    let sandbox = SandboxConfig {
        agent_scope: "customers:own".into(),
        ..SandboxConfig::default()
    };
    let setup = setup(redirect, sandbox, "sync_customer_profile = true").await;
    let (_, out, _) = finish(tether(&["livechat", "authorize"], &setup.config)).await;
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(out.trim())
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(n, _)| n == "code").unwrap().1;
    let (status, out, err) = finish(tether(
        &["livechat", "authorize", "--code", &code],
        &setup.config,
    ))
    .await;
    assert_eq!(status, Some(1), "{out}{err}");
    assert!(
        err.contains("lacks customers:rw") && err.contains("Developer Console"),
        "{err}"
    );

    let (status, out, _) = finish(tether(&["doctor"], &setup.config)).await;
    assert_eq!(status, Some(1), "{out}");
    assert!(
        out.contains("ok    livechat\n"),
        "customers:own is there: {out}"
    );
    assert!(out.contains("FAIL  livechat_profiles"), "{out}");
    assert!(out.contains("-> add the customers:rw scope"), "{out}");
}
