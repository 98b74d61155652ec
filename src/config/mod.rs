//! The configuration file: its shape (this module), its units (`units`) and how it is read,
//! with `${ENV}` substitution and errors located at file:line:col (`load`).
//!
//! Key names are part of Tether's public interface (see the README); unknown keys are errors.

mod advice;
mod chat;
mod identity;
mod inject;
mod liveperson;
mod load;
pub mod sdes;
pub mod units;
mod validate;

pub use advice::production_warnings;
pub use chat::{IntercomConfig, IntercomMode, SalesforceConfig, SigningConfig, ZendeskConfig};
pub use identity::{IdentityConfig, IdentitySource, JwtKeys, JwtPreset, JwtSettings};
pub use inject::{AppEncoding, InjectConfig, InjectPosition};
pub use liveperson::{
    is_web_url, JweEnc, LivePersonConfig, PageFlow, RedirectUris, SubjectKind, LIVEPERSON_REDIRECT,
    MAX_CODE_TTL,
};
pub use load::{load_file, parse_str, ConfigError, ConfigOrigin};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use units::{de_duration, de_size};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub reserved: ReservedConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub livechat: LiveChatConfig,
    #[serde(default)]
    pub liveperson: LivePersonConfig,
    #[serde(default)]
    pub inject: InjectConfig,
    #[serde(default)]
    pub signing: SigningConfig,
    #[serde(default)]
    pub zendesk: ZendeskConfig,
    #[serde(default)]
    pub intercom: IntercomConfig,
    #[serde(default)]
    pub salesforce: SalesforceConfig,
    /// Where this configuration was read from (for errors about the files it names).
    #[serde(skip)]
    pub origin: ConfigOrigin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// TLS listener.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener, for use behind a TLS-terminating balancer.
    pub listen_plain: Option<SocketAddr>,
    /// Admin listener (/healthz, /readyz, /metrics); keep it on loopback or a private interface.
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token for the admin listener's store endpoints (erase a user, export, backup);
    /// without one those endpoints are off.
    pub admin_token: Option<crate::redact::Secret>,
    /// Peers whose X-Forwarded-For chain (and, in header mode, identity headers) are trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// How long /readyz reports "draining" before the listeners close, so balancers notice first.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_delay: Duration,
    /// Serving threads (one runtime, listener and upstream pool each); 0 = one per CPU core.
    pub worker_threads: usize,
    /// Which code serves HTTP/1.1: "tether", its own forwarding path for plain keep-alive
    /// traffic (anything else on the connection goes to hyper from then on), or "hyper" for all.
    pub http1_engine: Http1Engine,
}

/// The HTTP/1.1 serving code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Http1Engine {
    Tether,
    Hyper,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            listen_plain: None,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9901))),
            admin_token: None,
            trusted_proxies: Vec::new(),
            shutdown_grace: Duration::from_secs(20),
            shutdown_delay: Duration::ZERO,
            worker_threads: 0,
            http1_engine: Http1Engine::Tether,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Create a development pair at `cert`/`key` when they are missing.
    pub self_signed: bool,
    /// Names put in a generated development certificate.
    pub self_signed_names: Vec<String>,
    pub min_version: TlsVersion,
    /// How often the certificate files are checked for a change (a symlink swap counts).
    #[serde(deserialize_with = "de_duration")]
    pub reload_interval: Duration,
    /// /readyz warns (without failing) when the certificate expires sooner than this.
    #[serde(deserialize_with = "de_duration")]
    pub expiry_warning: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::from("certs/tether.crt"),
            key: PathBuf::from("certs/tether.key"),
            self_signed: false,
            self_signed_names: vec!["localhost".into(), "127.0.0.1".into()],
            min_version: TlsVersion::Tls12,
            reload_interval: Duration::from_secs(2),
            expiry_warning: Duration::from_secs(14 * 86400),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The app, as `http://host:port` (no path).
    #[serde(deserialize_with = "de_upstream_url")]
    pub url: http::uri::Authority,
    #[serde(
        default = "defaults::connect_timeout",
        deserialize_with = "de_duration"
    )]
    pub connect_timeout: Duration,
    #[serde(
        default = "defaults::response_header_timeout",
        deserialize_with = "de_duration"
    )]
    pub response_header_timeout: Duration,
    #[serde(default = "defaults::yes")]
    pub websockets: bool,
    /// Idle pooled connections to the app are closed after this long.
    #[serde(
        default = "defaults::pool_idle_timeout",
        deserialize_with = "de_duration"
    )]
    pub pool_idle_timeout: Duration,
    /// Idle keep-alive connections kept to the app by each serving core (0: none, every request
    /// opens its own connection).
    #[serde(default = "defaults::pool_max_idle")]
    pub pool_max_idle: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request head (HTTP/1) or header list (HTTP/2); larger gets 431.
    #[serde(deserialize_with = "de_size")]
    pub max_header_bytes: u64,
    /// Most header fields in one HTTP/1 request; more gets 431.
    pub max_headers: usize,
    /// Largest request body; larger gets 413. 0 = unlimited (streamed).
    #[serde(deserialize_with = "de_size")]
    pub max_body_bytes: u64,
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// A connection (or WebSocket tunnel) with no bytes moving for this long is closed.
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub h2_max_concurrent_streams: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 << 10,
            max_headers: 100,
            max_body_bytes: 0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            h2_max_concurrent_streams: 250,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReservedConfig {
    #[serde(deserialize_with = "de_prefix")]
    pub prefix: String,
}

impl Default for ReservedConfig {
    fn default() -> Self {
        Self {
            prefix: "/.tether".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: "info", "debug", "tether=debug,hyper=info", ...; RUST_LOG overrides it.
    pub level: String,
    pub format: LogFormat,
    /// One line per request (method, path without query, status, timings, peer).
    pub access_log: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
            access_log: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In memory only: mappings are lost on restart (tests, demos).
    Memory,
    /// Embedded and durable on local disk (the default).
    File,
    /// Shared between replicas.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// file: the database file (created with its directory if missing).
    pub path: PathBuf,
    /// redis: the server URL (`redis://`, `rediss://` for TLS, `redis+unix://`); it may hold a
    /// password, so it is a secret.
    pub url: Option<crate::redact::Secret>,
    /// redis: every key starts with this, so several deployments can share one server.
    pub prefix: String,
    /// redis: the longest a connection attempt or a command may take before the request that
    /// needed it is answered 503.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// redis, Sentinel instead of `url`: the sentinels' URLs (their credentials are used for
    /// the primary too) and the primary's name.
    pub sentinels: Vec<crate::redact::Secret>,
    pub sentinel_master: String,
    /// redis, Cluster instead of `url`: seed nodes.
    pub cluster: Vec<crate::redact::Secret>,
    /// redis: a new mapping is acknowledged only once this many replicas have it (WAIT).
    pub min_replica_acks: u32,
    /// redis: how long to wait for those replicas before answering 503.
    #[serde(deserialize_with = "de_duration")]
    pub replica_ack_timeout: Duration,
    /// redis: how many mappings each replica keeps in memory (read-through).
    pub mapping_cache_capacity: u64,
}

/// How Tether reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisTopology {
    Single,
    Sentinel,
    Cluster,
}

impl StoreConfig {
    pub fn redis_topology(&self) -> RedisTopology {
        if !self.sentinels.is_empty() {
            RedisTopology::Sentinel
        } else if !self.cluster.is_empty() {
            RedisTopology::Cluster
        } else {
            RedisTopology::Single
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::File,
            path: PathBuf::from("data/tether.db"),
            url: None,
            prefix: "tether:".into(),
            timeout: Duration::from_secs(1),
            sentinels: Vec::new(),
            sentinel_master: String::new(),
            cluster: Vec::new(),
            min_replica_acks: 0,
            replica_ack_timeout: Duration::from_millis(500),
            mapping_cache_capacity: 100_000,
        }
    }
}

/// Where customer tokens are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenCache {
    /// In each replica's memory (the default): the fastest, and one accounts call per user and
    /// replica.
    Replica,
    /// Also in the shared store (redis) with the token's remaining lifetime, so a user's token is
    /// fetched from LiveChat once for all replicas.
    Shared,
}

/// `grant = "..."` in the file; the code reads `LiveChatConfig::grant`, which carries what
/// each grant needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveChatGrant {
    /// Tether holds one agent OAuth token (scope customers:own) and mints customer tokens with it.
    AgentToken,
    /// Tether keeps each customer's __lc_cid/__lc_cst cookies and presents them itself.
    Cookie,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveChatConfig {
    pub enabled: bool,
    pub license_id: u64,
    pub organization_id: String,
    pub client_id: String,
    pub grant: LiveChatGrant,
    pub accounts_url: String,
    /// Agent Chat API base, for customer name/email updates.
    pub api_url: String,
    /// The Chat API's regional host, `{region}` replaced by the region LiveChat names in a
    /// `misdirected_request`.
    pub api_region_url: String,
    /// Where `tether livechat authorize` receives the authorization code (a loopback URL on the
    /// app's list in LiveChat's Developer Console).
    pub authorize_redirect_uri: String,
    /// Never serve a cached token with less life left than this (the widget re-issues at 1 h).
    #[serde(deserialize_with = "de_duration")]
    pub refresh_margin: Duration,
    pub client_secret: crate::redact::Secret,
    pub refresh_token: crate::redact::Secret,
    pub redirect_uri: String,
    /// One accounts call: connect + answer.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Attempts for retryable failures (network, 5xx, 429), with jittered backoff.
    pub max_attempts: u32,
    /// Keep the customer's name and email in LiveChat in step with the app's identity headers.
    pub sync_customer_profile: bool,
    /// Most users whose tokens are cached in memory.
    pub token_cache_capacity: u64,
    /// "replica" (each replica's memory) or "shared" (also in the redis store).
    pub token_cache: TokenCache,
}

impl Default for LiveChatConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            license_id: 0,
            organization_id: String::new(),
            client_id: String::new(),
            grant: LiveChatGrant::AgentToken,
            accounts_url: "https://accounts.livechat.com".into(),
            api_url: "https://api.livechatinc.com".into(),
            api_region_url: "https://api-{region}.livechatinc.com".into(),
            authorize_redirect_uri: "http://127.0.0.1:8788/callback".into(),
            refresh_margin: Duration::from_secs(65 * 60),
            client_secret: Default::default(),
            refresh_token: Default::default(),
            redirect_uri: String::new(),
            request_timeout: Duration::from_secs(10),
            max_attempts: 3,
            sync_customer_profile: true,
            token_cache_capacity: 1_000_000,
            token_cache: TokenCache::Replica,
        }
    }
}

/// How Tether gets customer tokens from LiveChat, with what that grant needs (validated: every
/// field is set).
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// One agent OAuth token (scope `customers:own`), kept fresh with the app's credentials.
    AgentToken {
        client_secret: &'a crate::redact::Secret,
        refresh_token: &'a crate::redact::Secret,
    },
    /// Each customer's `__lc_cid`/`__lc_cst` cookies, presented by Tether itself.
    Cookie {
        organization_id: &'a str,
        redirect_uri: &'a str,
    },
}

/// LiveChat's customer tokens live 8 hours unless the license says otherwise.
pub const LIVECHAT_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The widget re-issues a token with an hour or less left: a cached one needs more than that.
pub const LIVECHAT_REISSUE_AT: Duration = Duration::from_secs(3600);

impl LiveChatConfig {
    /// The regional Chat API host for `region`.
    pub fn region_url(&self, region: &str) -> String {
        // A region is a short name ("fra"); anything else stays out of the URL.
        let region: String = region
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.api_region_url.replace("{region}", &region)
    }

    pub fn grant(&self) -> Grant<'_> {
        match self.grant {
            LiveChatGrant::AgentToken => Grant::AgentToken {
                client_secret: &self.client_secret,
                refresh_token: &self.refresh_token,
            },
            LiveChatGrant::Cookie => Grant::Cookie {
                organization_id: &self.organization_id,
                redirect_uri: &self.redirect_uri,
            },
        }
    }
}

mod defaults {
    use std::time::Duration;
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn response_header_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn pool_idle_timeout() -> Duration {
        Duration::from_secs(90)
    }
    pub fn pool_max_idle() -> usize {
        256
    }
    pub fn yes() -> bool {
        true
    }
}

fn de_upstream_url<'de, D: Deserializer<'de>>(de: D) -> Result<http::uri::Authority, D::Error> {
    let text = String::deserialize(de)?;
    let fail = |why: &str| {
        serde::de::Error::custom(format!(
            "expected the app's URL as \"http://host:port\", {why} in {text:?}"
        ))
    };
    let uri: http::Uri = text.parse().map_err(|_| fail("could not parse it"))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail("only http:// is supported"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(fail("a path or query is not allowed"));
    }
    let authority = uri.authority().ok_or_else(|| fail("no host"))?;
    if authority.as_str().contains('@') {
        return Err(fail("credentials are not allowed"));
    }
    Ok(authority.clone())
}

fn de_prefix<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let text = String::deserialize(de)?;
    let valid_segment = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let ok = text.len() > 1 && text.starts_with('/') && text[1..].split('/').all(valid_segment);
    if ok {
        Ok(text)
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a path prefix such as \"/.tether\" (leading slash, no trailing slash, \
             unreserved characters only), found {text:?}"
        )))
    }
}
