//! TLS termination: loading the PEM pair, creating a development pair, and swapping in a new pair
//! when the files change on disk (including a Kubernetes-style symlink swap), keeping the last good
//! pair when a reload fails.

use crate::config::{TlsConfig, TlsVersion};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A problem with the certificate or key files.
#[derive(Debug)]
pub struct TlsError {
    /// Which config key the problem belongs to (`tls.cert` or `tls.key`).
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for TlsError {}

fn cert_error(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError {
        key: "tls.cert",
        message: format!("{}: {what}", path.display()),
    }
}

fn key_error(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError {
        key: "tls.key",
        message: format!("{}: {what}", path.display()),
    }
}

/// Reads a PEM chain and private key and checks that they belong together.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|err| cert_error(cert_path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| cert_error(cert_path, err))?;
    if chain.is_empty() {
        return Err(cert_error(cert_path, "no PEM certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|err| key_error(key_path, err))?;
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|err| key_error(key_path, err))?;
    let pair = CertifiedKey::new(chain, signer);
    pair.keys_match().map_err(|err| {
        key_error(
            key_path,
            format!(
                "does not match the certificate in {}: {err}",
                cert_path.display()
            ),
        )
    })?;
    Ok(pair)
}

/// Writes a self-signed development pair when neither file exists. Returns whether it did.
pub fn ensure_self_signed(config: &TlsConfig) -> Result<bool, TlsError> {
    if config.cert.exists() || config.key.exists() {
        return Ok(false);
    }
    let generated = rcgen::generate_simple_self_signed(config.self_signed_names.clone())
        .map_err(|err| cert_error(&config.cert, format!("cannot generate: {err}")))?;
    for path in [&config.cert, &config.key] {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| cert_error(dir, err))?;
        }
    }
    write_private(
        &config.key,
        generated.signing_key.serialize_pem().as_bytes(),
    )
    .map_err(|err| key_error(&config.key, err))?;
    std::fs::write(&config.cert, generated.cert.pem())
        .map_err(|err| cert_error(&config.cert, err))?;
    Ok(true)
}

/// Creates a file readable by its owner only (private keys).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

/// What identifies the current version of a file: its resolved path (a symlink swap changes it),
/// inode, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileVersion {
    resolved: PathBuf,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileVersion {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let resolved = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&resolved).ok()?;
        Some(Self {
            resolved,
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// The certificate currently served; rustls asks it on every handshake.
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
    seen: std::sync::Mutex<(Option<FileVersion>, Option<FileVersion>)>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair named by the configuration (creating it first when `self_signed` asks).
    pub fn load(config: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        if config.self_signed {
            ensure_self_signed(config)?;
        }
        let seen = (FileVersion::of(&config.cert), FileVersion::of(&config.key));
        let pair = load_pair(&config.cert, &config.key)?;
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(pair),
            cert_path: config.cert.clone(),
            key_path: config.key.clone(),
            seen: std::sync::Mutex::new(seen),
        }))
    }

    /// Reloads the pair if either file changed. Returns None when nothing changed.
    /// On failure the previous pair stays in service.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = (
            FileVersion::of(&self.cert_path),
            FileVersion::of(&self.key_path),
        );
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == now {
            return None;
        }
        // Remember this version even if it fails, so a broken file is reported once, not every tick.
        *seen = now;
        drop(seen);
        Some(
            load_pair(&self.cert_path, &self.key_path)
                .map(|pair| self.current.store(Arc::new(pair))),
        )
    }

    /// When the certificate in service expires (the leaf's notAfter), in Unix seconds.
    pub fn not_after(&self) -> Option<i64> {
        let chain = self.current.load();
        let leaf = chain.cert.first()?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(parsed.validity().not_after.timestamp())
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.load_full())
    }
}

/// Seconds from now until `not_after` (negative once it has passed).
fn seconds_until(not_after: i64) -> i64 {
    not_after.saturating_sub(i64::try_from(crate::clock::now_secs()).unwrap_or(i64::MAX))
}

/// The certificate's expiry for /metrics: when, and the days left (read at scrape time).
pub fn register_metrics(store: &Arc<CertStore>, registry: &mut crate::metrics::Registry) {
    let certs = store.clone();
    crate::metrics::gauge_fn(
        registry,
        "tls_certificate_expiry_seconds",
        "When the served certificate expires (notAfter), Unix time.",
        move || certs.not_after(),
    );
    let certs = store.clone();
    crate::metrics::gauge_fn(
        registry,
        "tls_certificate_days_left",
        "Days until the served certificate expires.",
        move || {
            certs.not_after().map(|not_after| {
                (seconds_until(not_after) as f64 / 86400.0 * 100.0).round() / 100.0
            })
        },
    );
}

/// /readyz warns (under `warnings`, without failing) when the certificate expires within
/// `tls.expiry_warning`: Tether keeps serving it, but someone should renew it.
pub struct ExpiryWarning {
    pub store: Arc<CertStore>,
    pub threshold: std::time::Duration,
}

impl crate::health::ReadinessCheck for ExpiryWarning {
    fn name(&self) -> &'static str {
        "certificate"
    }

    fn advisory(&self) -> bool {
        true
    }

    fn check(&self) -> crate::io::BoxFuture<Result<(), String>> {
        let left = self.store.not_after().map(seconds_until);
        let threshold = i64::try_from(self.threshold.as_secs()).unwrap_or(i64::MAX);
        Box::pin(async move {
            match left {
                Some(left) if left <= 0 => Err("the certificate has expired".into()),
                Some(left) if left < threshold => Err(format!(
                    "the certificate expires in {:.1} days",
                    left as f64 / 86400.0
                )),
                _ => Ok(()),
            }
        })
    }
}

/// The rustls server configuration: TLS 1.2+ (or 1.3 only), ALPN h2 and http/1.1.
pub fn server_config(store: Arc<CertStore>, min_version: TlsVersion) -> rustls::ServerConfig {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(store)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// Polls the certificate files and swaps in a changed pair until `stop` fires.
pub async fn watch(
    store: Arc<CertStore>,
    interval: std::time::Duration,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(std::time::Duration::from_millis(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = crate::lifecycle::stopped(&mut stop) => return,
        }
        let checked = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.reload_if_changed()).await
        };
        match checked {
            Ok(Some(Ok(()))) => {
                metrics.cert_reload(true);
                tracing::info!(cert = %store.cert_path.display(), "reloaded the TLS certificate");
            }
            Ok(Some(Err(err))) => {
                metrics.cert_reload(false);
                tracing::warn!(error = %err, "certificate reload failed; keeping the previous pair");
            }
            Ok(None) | Err(_) => {}
        }
    }
}
