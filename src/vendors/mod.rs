//! The vendor interface. A chat vendor is one module that says five things: its name (its
//! config section and its path segment, `{prefix}/{name}/...`), its endpoints, its part of the
//! page loader, its readiness checks, and its metrics (registered when it is built). The
//! router, the page loader, readiness, erasure and `/metrics` know vendors only through
//! `Vendor`; adding one is a module and a line in `VENDORS`.
//!
//! Below the vendors, named by none of them: who is signed in (`identity`), the signing keys
//! and JWKS (`signing`), the store, the refusals and answers (`refusal`, `respond`).

pub mod intercom;
pub mod livechat;
pub mod liveperson;
pub mod salesforce;
pub mod zendesk;

use crate::config::Config;
use crate::health::ReadinessCheck;
use crate::identity::{Identity, IdentityResolver};
use crate::lifecycle::StartError;
use crate::metrics::Registry;
use crate::proxy::{ConnInfo, EndpointBody};
use crate::refusal::Answer;
use crate::refusal::Refusal;
use crate::signing::Signer;
use crate::store::Store;
use crate::user_key::UserKeys;
use futures_util::future::BoxFuture;
use http::{Method, Request};
use std::collections::HashSet;
use std::sync::Arc;

/// Builds a vendor from the configuration; None when its section is not enabled.
type Build = fn(&mut Setup<'_>) -> Result<Option<Arc<dyn Vendor>>, StartError>;

/// Every vendor Tether knows, in the order their page parts run.
const VENDORS: &[Build] = &[
    livechat::build,
    liveperson::build,
    zendesk::build,
    intercom::build,
    salesforce::build,
];

pub trait Vendor: Send + Sync + 'static {
    /// The config section and the path segment.
    fn name(&self) -> &'static str;

    /// Paths below the prefix, outside `/{name}/`, that this vendor serves (an OpenID
    /// provider's standard endpoints).
    fn extra_paths(&self) -> &'static [&'static str] {
        &[]
    }

    /// Answers a request for one of its paths.
    fn handle<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Answer>;

    /// What the page loader adds for this vendor on an injected page, when `[inject]` puts it
    /// there.
    fn page_part(&self) -> Option<PagePart> {
        None
    }

    /// What an injected page may know at once about its signed-in `user` for this vendor
    /// (LivePerson's `sub`, so the identity function answers without a request). It goes into
    /// the page, so nothing secret.
    fn page_visitor(&self, _user: &str) -> Option<serde_json::Value> {
        None
    }

    /// Its `/readyz` checks (credentials, scopes, keys).
    fn checks(&self) -> Vec<Arc<dyn ReadinessCheck>> {
        Vec::new()
    }

    /// Erasure: forget what this vendor keeps about `user` on this replica.
    fn forget_user<'a>(&'a self, _user: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Users erased through other replicas, named by `store::user_hash`; `everything` when some
    /// erasures are unknown (then every cached credential goes).
    fn forget_erased<'a>(
        &'a self,
        _erased: &'a HashSet<&'a str>,
        _everything: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A vendor's part of the page loader (`{prefix}/inject/loader.js`).
#[derive(Clone)]
pub struct PagePart {
    pub name: &'static str,
    /// Handed to `script` as its second argument (JSON).
    pub settings: serde_json::Value,
    /// A function expression, `function (tether, settings) { ... }`, run in the page by the
    /// loader; `tether` says who the page is for and how to add scripts (see `loader.js`).
    pub script: String,
    /// The scripts it makes the page load from other origins: the page's Content-Security-
    /// Policy must allow them.
    pub scripts: Vec<String>,
}

/// One request to a vendor's endpoint.
pub struct Call<'a> {
    pub request: Request<EndpointBody>,
    /// The path below `{prefix}/{name}` (`/token`); for an extra path, the path below the prefix.
    pub path: &'a str,
    pub conn: &'a ConnInfo,
    pub identity: &'a IdentityResolver,
}

/// Methods for `Call::only`.
pub const GET_HEAD: &[Method] = &[Method::GET, Method::HEAD];
pub const GET: &[Method] = &[Method::GET];
pub const POST: &[Method] = &[Method::POST];

impl Call<'_> {
    pub fn method(&self) -> &Method {
        self.request.method()
    }

    /// Refuses other methods (405 with `Allow`).
    pub fn only(&self, allowed: &'static [Method]) -> Result<(), Refusal> {
        crate::refusal::only(self.method(), allowed)
    }

    /// Refuses requests a third-party page made with the user's cookies.
    pub fn same_site(&self) -> Result<(), Refusal> {
        if crate::respond::is_cross_site(self.request.headers()) {
            Err(Refusal::CrossSite)
        } else {
            Ok(())
        }
    }

    /// Who is signed in, or None; a lookup that fails is a refusal (fail closed).
    pub async fn visitor(&self) -> Result<Option<Identity>, Refusal> {
        Ok(self
            .identity
            .resolve(self.request.headers(), self.conn)
            .await?)
    }

    /// The signed-in user; 401 when nobody is.
    pub async fn user(&self) -> Result<Identity, Refusal> {
        self.visitor().await?.ok_or(Refusal::NotAuthenticated)
    }
}

/// Says on an answer whose page key the signed-in user has (the page script compares it with
/// the user its widget last knew); nothing until the store has the key's secret.
/// `key`: `UserKeys::header_for`, or a value kept from it.
pub fn tag_user_key(reply: &mut crate::respond::Reply, key: Option<http::HeaderValue>) {
    if let Some(key) = key {
        reply.headers_mut().insert("x-tether-user-key", key);
    }
}

/// `https://<host>{prefix}` from the request's authority (HTTP/2) or Host header: the issuer of
/// tokens when the configuration names none (development only: replicas behind other names
/// would sign with other issuers).
pub fn issuer_from_host(request: &Request<EndpointBody>, prefix: &str) -> Result<String, Refusal> {
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str().to_string()),
        None => request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<http::uri::Authority>().ok())
            .map(|authority| authority.as_str().to_string()),
    };
    let host = host.ok_or(Refusal::InvalidHost)?;
    Ok(format!("https://{host}{prefix}"))
}

/// What vendors share while they are built: the configuration, the metrics registry, and the
/// store and signing key, opened for the first vendor that asks.
pub struct Setup<'a> {
    pub config: &'a Config,
    registry: &'a mut Registry,
    store: Option<Arc<dyn Store>>,
    signer: Option<Arc<Signer>>,
    user_keys: Option<Arc<UserKeys>>,
}

impl Setup<'_> {
    /// The page keys of users (a keyed hash, its secret in the store).
    pub fn user_keys(&mut self) -> Result<Arc<UserKeys>, StartError> {
        if let Some(keys) = &self.user_keys {
            return Ok(keys.clone());
        }
        let keys = UserKeys::from_store(self.store()?);
        self.user_keys = Some(keys.clone());
        Ok(keys)
    }

    /// The one store (it owns the database file).
    pub fn store(&mut self) -> Result<Arc<dyn Store>, StartError> {
        if let Some(store) = &self.store {
            return Ok(store.clone());
        }
        let store = open_store(self.config)?;
        crate::store::register_metrics(&store, self.registry.sub_registry_with_prefix("store"));
        self.store = Some(store.clone());
        Ok(store)
    }

    /// The RSA key Tether signs with, and the JWKS it publishes.
    pub fn signer(&mut self) -> Result<Arc<Signer>, StartError> {
        if let Some(signer) = &self.signer {
            return Ok(signer.clone());
        }
        let signer = Arc::new(
            Signer::load(self.config)
                .map_err(|(key, why)| StartError::Config(self.config.origin.error_at(key, why)))?,
        );
        self.signer = Some(signer.clone());
        Ok(signer)
    }

    /// The registry a vendor registers its families on (`tether_{vendor}_...`).
    pub fn metrics(&mut self, vendor: &str) -> &mut Registry {
        self.registry.sub_registry_with_prefix(vendor)
    }
}

/// The vendors the configuration enables, and the shared pieces they opened.
pub struct Vendors {
    pub list: Vec<Arc<dyn Vendor>>,
    pub store: Option<Arc<dyn Store>>,
    pub signer: Option<Arc<Signer>>,
    /// When a vendor or `[inject]` needs them.
    pub user_keys: Option<Arc<UserKeys>>,
}

/// Builds every enabled vendor; vendors register their metrics on `registry`.
pub fn build(config: &Config, registry: &mut Registry) -> Result<Vendors, StartError> {
    let mut setup = Setup {
        config,
        registry,
        store: None,
        signer: None,
        user_keys: None,
    };
    let mut list = Vec::new();
    for build in VENDORS {
        if let Some(vendor) = build(&mut setup)? {
            list.push(vendor);
        }
    }
    if config.inject.enabled && !list.is_empty() {
        // The injected tag says whose page it is by this key.
        setup.user_keys()?;
    }
    Ok(Vendors {
        list,
        store: setup.store,
        signer: setup.signer,
        user_keys: setup.user_keys,
    })
}

fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let key = match config.store.kind {
        crate::config::StoreKind::Redis => "store.url",
        _ => "store.path",
    };
    crate::store::open(config)
        .map_err(|err| StartError::Config(config.origin.error_at(key, err.to_string())))
}
