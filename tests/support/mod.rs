//! Shared test fixtures: certificates made by rcgen, a recording app (backend), an in-process
//! Tether on 127.0.0.1:0, and clients that trust the test CA.
#![allow(dead_code)]

pub mod backend;
pub mod browser;
pub mod issuer;
pub mod redis_server;
pub mod redis_topology;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tether::config::{self, Config};

/// A test CA and a leaf for localhost/127.0.0.1, written as PEM files in a temporary directory.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCerts {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tether test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let certs = Self {
            cert_path: dir.path().join("tether.crt"),
            key_path: dir.path().join("tether.key"),
            ca_pem: ca_cert.pem(),
            dir,
            issuer,
        };
        certs.write_leaf("localhost", &certs.cert_path, &certs.key_path);
        certs
    }

    /// Issues a fresh leaf with the given common name into `cert`/`key`; returns its DER.
    pub fn write_leaf(&self, common_name: &str, cert: &Path, key: &Path) -> Vec<u8> {
        self.write_leaf_with(common_name, cert, key, |_| {})
    }

    /// `write_leaf` with `adjust` applied to the certificate's parameters (validity, say).
    pub fn write_leaf_with(
        &self,
        common_name: &str,
        cert: &Path,
        key: &Path,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Vec<u8> {
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        adjust(&mut params);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let leaf = params.signed_by(&leaf_key, &self.issuer).unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
        leaf.der().to_vec()
    }

    /// A rustls client configuration trusting the test CA, with the given ALPN protocols.
    pub fn rustls_client(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A reqwest client trusting only the test CA.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .no_proxy()
            .timeout(Duration::from_secs(60))
    }
}

/// A configuration for Tether in front of `upstream`, every listener on 127.0.0.1:0.
pub fn config_for(upstream: SocketAddr, certs: &TestCerts) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
listen_plain = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_grace = "5s"

[tls]
cert = "{cert}"
key = "{key}"
reload_interval = "50ms"

[upstream]
url = "http://{upstream}"
connect_timeout = "1s"
response_header_timeout = "2s"

[log]
access_log = false
"#,
        cert = certs.cert_path.display(),
        key = certs.key_path.display(),
    );
    let mut config =
        config::parse_str(&text, "test.toml", &|_| None).expect("test configuration is valid");
    // The suites run on either HTTP/1.1 engine (see `the_other_engine_passes_too`).
    if let Some(engine) = pinned_engine() {
        config.server.http1_engine = engine;
    }
    config
}

/// LiveChat switched on against a sandbox accounts server, with an in-memory store.
pub fn enable_livechat(config: &mut Config, sandbox: &tether_sandbox::livechat::SandboxAccounts) {
    let defaults = tether_sandbox::livechat::SandboxConfig::default();
    let livechat = &mut config.livechat;
    livechat.enabled = true;
    livechat.license_id = 12345;
    livechat.organization_id = defaults.organization_id;
    livechat.client_id = defaults.client_id;
    livechat.client_secret = tether::redact::Secret::new(defaults.client_secret);
    livechat.refresh_token = tether::redact::Secret::new(defaults.refresh_token);
    livechat.accounts_url = sandbox.url();
    livechat.api_url = sandbox.url();
    livechat.api_region_url = sandbox.region_url_template();
    livechat.request_timeout = Duration::from_secs(2);
    config.store.kind = tether::config::StoreKind::Memory;
}

/// A recording app and Tether in front of it, with `configure` applied to the configuration.
pub async fn start_app_and_tether(
    configure: impl FnOnce(&mut Config),
) -> (TestCerts, backend::Backend, TestTether) {
    let certs = TestCerts::new();
    let app = backend::Backend::start().await;
    let mut config = config_for(app.addr, &certs);
    configure(&mut config);
    let tether = TestTether::start(config).await;
    (certs, app, tether)
}

/// Tether running in this process.
pub struct TestTether {
    pub running: Option<tether::Running>,
    pub https: String,
    pub http: String,
    pub admin: String,
    pub tls_addr: SocketAddr,
}

impl TestTether {
    pub async fn start(config: Config) -> Self {
        let running = tether::start(config).await.expect("tether starts");
        Self {
            https: format!("https://localhost:{}", running.tls_addr.port()),
            http: format!("http://127.0.0.1:{}", running.plain_addr.unwrap().port()),
            admin: format!("http://127.0.0.1:{}", running.admin_addr.unwrap().port()),
            tls_addr: running.tls_addr,
            running: Some(running),
        }
    }

    pub fn running(&self) -> &tether::Running {
        self.running.as_ref().unwrap()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// One unlabelled counter or gauge from /metrics.
    pub async fn metric(&self, name: &str) -> u64 {
        let metrics = self.metrics().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
            .parse()
            .unwrap()
    }
}

/// Writes a new RSA signing key (PKCS#8 PEM) into `dir`.
pub fn new_signing_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, tether::testing::signing::generate_pem().unwrap()).unwrap();
    path
}

/// Polls `condition` until it holds, failing the test after `timeout`. For conditions that have
/// no event to wait on (files on disk, another process).
pub async fn wait_until(what: &str, timeout: Duration, condition: impl AsyncFnMut() -> bool) {
    assert!(
        held_within(timeout, condition).await,
        "timed out waiting for: {what}"
    );
}

/// As `wait_until`, saying whether `condition` held in time instead of failing the test (for a
/// caller that says more about the failure).
pub async fn held_within(timeout: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Polls `find` until it gives a value (within 10 seconds), and returns it.
pub async fn wait_for<T, F, Fut>(what: &str, mut find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = find().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a TLS connection to Tether, negotiating the given ALPN protocols.
pub async fn tls_connect(
    certs: &TestCerts,
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(certs.rustls_client(alpn));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends raw bytes over TLS and reads until the server closes the connection.
pub async fn raw_exchange(certs: &TestCerts, addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tls_connect(certs, addr, &[b"http/1.1"]).await;
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Sends raw bytes over TLS and reads the response head only (for connections that stay open).
pub async fn raw_head(certs: &TestCerts, addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tls_connect(certs, addr, &[b"http/1.1"]).await;
    stream.write_all(request).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Runs the real `tether` binary: (exit code, stdout, stderr).
pub fn run_tether(args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A size from this process's /proc/self/status ("VmRSS:", "VmHWM:"), in bytes.
pub fn process_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Sends a signal to a child process (`kill -TERM`, say), without unsafe code.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The HTTP/1.1 engine the environment pins the tests to (`TETHER_TEST_HTTP1_ENGINE=tether|hyper`);
/// None: the configuration's default.
pub fn pinned_engine() -> Option<config::Http1Engine> {
    let engine = std::env::var("TETHER_TEST_HTTP1_ENGINE").ok()?;
    Some(match engine.as_str() {
        "tether" => config::Http1Engine::Tether,
        "hyper" => config::Http1Engine::Hyper,
        other => panic!("TETHER_TEST_HTTP1_ENGINE={other}: expected tether or hyper"),
    })
}

/// The engine's name as the configuration spells it.
pub fn engine_name(engine: config::Http1Engine) -> &'static str {
    match engine {
        config::Http1Engine::Tether => "tether",
        config::Http1Engine::Hyper => "hyper",
    }
}

/// For the suites that must pass on both HTTP/1.1 engines: runs this test binary again, every
/// test but `this_test`, pinned to the engine that is not the default (the run itself uses the
/// default), and fails with its output if any test fails there. A run already pinned to an engine
/// (this one's child, or a developer's `TETHER_TEST_HTTP1_ENGINE=...`) does not run it again.
pub fn the_other_engine_passes_too(this_test: &str) {
    the_other_engine_passes_too_skipping(this_test, &[]);
}

/// As `the_other_engine_passes_too`, also skipping the tests whose names contain one of `skip`
/// (the browser tests, whose Chromium speaks HTTP/2, which no HTTP/1.1 engine serves).
pub fn the_other_engine_passes_too_skipping(this_test: &str, skip: &[&str]) {
    if pinned_engine().is_some() {
        return;
    }
    let other = match config::ServerConfig::default().http1_engine {
        config::Http1Engine::Tether => config::Http1Engine::Hyper,
        config::Http1Engine::Hyper => config::Http1Engine::Tether,
    };
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--skip", this_test, "--test-threads", "2"])
        .args(skip.iter().flat_map(|name| ["--skip", name]))
        .env("TETHER_TEST_HTTP1_ENGINE", engine_name(other))
        .output()
        .expect("the test binary runs again");
    assert!(
        output.status.success(),
        "the suite fails with http1_engine = {:?}:\n{}\n{}",
        engine_name(other),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    let passed = summary
        .lines()
        .rev()
        .find(|line| line.starts_with("test result:"));
    eprintln!(
        "http1_engine = {:?}: {}",
        engine_name(other),
        passed.unwrap_or("?")
    );
}
