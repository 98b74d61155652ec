//! The reserved prefix: `{prefix}/inject/loader.js` (the page loader), `{prefix}/jwks.json` (the
//! signing keys), and every vendor's endpoints by name, `{prefix}/{vendor}/...` (plus the extra
//! paths a vendor claims). Also assembles what the configured vendors add to the proxy
//! (`build`): the router, readiness checks, the eraser and the scripts injected pages load.

use crate::config::Config;
use crate::erasure::Eraser;
use crate::health::ReadinessCheck;
use crate::identity::{IdentityResolver, IdentityShared};
use crate::inject::PageInputs;
use crate::lifecycle::StartError;
use crate::metrics::Registry;
use crate::proxy::{BoxFuture, ConnInfo, EndpointBody, ReservedEndpoints};
use crate::refusal::Answer;
use crate::refusal::Refusal;
use crate::respond::{public_json, script, Reply};
use crate::signing::JWKS_PATH;
use crate::vendors::{Call, Vendor, GET_HEAD};
use bytes::Bytes;
use http::Request;
use std::sync::Arc;

/// Builds one core's router (each core gets its own HTTP clients; the rest is shared).
pub type EndpointsFactory = Arc<dyn Fn() -> Arc<dyn ReservedEndpoints> + Send + Sync>;

/// What the configured vendors add to the proxy.
pub struct Extensions {
    pub endpoints: EndpointsFactory,
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// Every family registered so far (the vendors', the store's); the proxy adds its own.
    pub registry: Registry,
    /// The eraser (and through it the store), when a vendor uses a store: for the admin store
    /// endpoints and the erasure log.
    pub eraser: Option<Arc<Eraser>>,
    /// What `[inject]` puts on pages for the vendors, when it puts any.
    pub page: Option<PageInputs>,
}

impl Extensions {
    /// No vendor: everything under the prefix is 404.
    pub fn none() -> Self {
        Self {
            endpoints: Arc::new(|| {
                Arc::new(crate::proxy::NoEndpoints) as Arc<dyn ReservedEndpoints>
            }),
            checks: Vec::new(),
            registry: Registry::with_prefix("tether"),
            eraser: None,
            page: None,
        }
    }
}

/// Assembles the vendors the configuration enables.
pub async fn build(config: &Config) -> Result<Extensions, StartError> {
    let mut registry = Registry::with_prefix("tether");
    let vendors = crate::vendors::build(config, &mut registry)?;
    let mut checks: Vec<Arc<dyn ReadinessCheck>> = Vec::new();
    if let Some(store) = &vendors.store {
        checks.push(Arc::new(StoreReady(store.clone())));
        // Say at once whether the store answers (a shared store is connected on first use).
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.ping().await {
                tracing::error!(error = %err, "the store does not answer; identity endpoints answer 503 and /readyz fails until it does");
            }
        });
    }
    for vendor in &vendors.list {
        checks.extend(vendor.checks());
    }
    let eraser = vendors.store.clone().map(|store| {
        Arc::new(Eraser::new(
            store,
            vendors.list.clone(),
            registry.sub_registry_with_prefix("store"),
        ))
    });
    let parts: Vec<_> = if config.inject.enabled {
        vendors.list.iter().filter_map(|v| v.page_part()).collect()
    } else {
        Vec::new()
    };
    let loader = (!parts.is_empty()).then(|| crate::inject::loader::render(config, &parts));
    let page = match (&loader, &vendors.user_keys) {
        (Some(_), Some(user_keys)) => Some(PageInputs {
            scripts: std::iter::once(loader_path(config))
                .chain(parts.iter().flat_map(|part| part.scripts.iter().cloned()))
                .collect(),
            user_keys: user_keys.clone(),
            visitor_data: visitor_data(&vendors.list),
        }),
        _ => None,
    };
    let shared = Arc::new(Shared {
        vendors: vendors.list,
        loader,
        signer: vendors.signer,
    });
    let identity = IdentityShared::new(config, &mut registry);
    checks.extend(identity.checks());
    let config = config.clone();
    let endpoints: EndpointsFactory = Arc::new(move || {
        Arc::new(Router(Arc::new(PerCore {
            shared: shared.clone(),
            identity: IdentityResolver::new(&config, &identity),
        }))) as Arc<dyn ReservedEndpoints>
    });
    Ok(Extensions {
        endpoints,
        checks,
        registry,
        eraser,
        page,
    })
}

/// What each vendor's page part may know about a signed-in user.
fn visitor_data(vendors: &[Arc<dyn Vendor>]) -> crate::inject::VisitorData {
    let vendors = vendors.to_vec();
    Arc::new(move |user: &str| {
        vendors
            .iter()
            .filter_map(|vendor| Some((vendor.name(), vendor.page_visitor(user)?.to_string())))
            .collect()
    })
}

/// Where the page loader is served.
pub fn loader_path(config: &Config) -> String {
    format!("{}/inject/loader.js", config.reserved.prefix)
}

/// What every core's router shares.
struct Shared {
    vendors: Vec<Arc<dyn Vendor>>,
    /// `{prefix}/inject/loader.js`, when `[inject]` puts a vendor on pages.
    loader: Option<Bytes>,
    /// Its `{prefix}/jwks.json`, when a vendor signs with Tether's key.
    signer: Option<Arc<crate::signing::Signer>>,
}

struct PerCore {
    shared: Arc<Shared>,
    identity: IdentityResolver,
}

/// One core's router for the reserved prefix.
#[derive(Clone)]
struct Router(Arc<PerCore>);

impl ReservedEndpoints for Router {
    fn handle(
        &self,
        request: Request<EndpointBody>,
        subpath: String,
        conn: Arc<ConnInfo>,
    ) -> BoxFuture<Reply> {
        let this = self.clone();
        Box::pin(async move {
            let answer = this.route(request, &subpath, &conn).await;
            answer.unwrap_or_else(Refusal::into_reply)
        })
    }
}

impl Router {
    async fn route(
        &self,
        request: Request<EndpointBody>,
        subpath: &str,
        conn: &ConnInfo,
    ) -> Answer {
        let shared = &self.0.shared;
        match (subpath, &shared.loader, &shared.signer) {
            // The loader is the same for every visitor: browsers may keep it a few minutes.
            ("/inject/loader.js", Some(loader), _) => {
                crate::refusal::only(request.method(), GET_HEAD)?;
                return Ok(script(loader.clone(), "public, max-age=300"));
            }
            (JWKS_PATH, _, Some(signer)) => {
                crate::refusal::only(request.method(), GET_HEAD)?;
                return Ok(public_json(signer.jwks()));
            }
            _ => {}
        }
        let (vendor, path) = self.vendor_for(subpath).ok_or(Refusal::NotFound)?;
        let call = Call {
            request,
            path,
            conn,
            identity: &self.0.identity,
        };
        vendor.handle(call).await
    }

    /// The vendor serving `subpath`, and the path it sees.
    fn vendor_for<'p>(&self, subpath: &'p str) -> Option<(&Arc<dyn Vendor>, &'p str)> {
        let vendors = &self.0.shared.vendors;
        let segment = subpath.strip_prefix('/')?;
        let (name, rest) = match segment.find('/') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if let Some(vendor) = vendors.iter().find(|v| v.name() == name) {
            return Some((vendor, rest));
        }
        vendors
            .iter()
            .find(|v| v.extra_paths().contains(&subpath))
            .map(|vendor| (vendor, subpath))
    }
}

/// /readyz: the store answers (a shared store can be unreachable; the in-process ones always do).
struct StoreReady(Arc<dyn crate::store::Store>);

impl ReadinessCheck for StoreReady {
    fn name(&self) -> &'static str {
        "store"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let ping = self.0.ping();
        Box::pin(async move { ping.await.map_err(|err| err.to_string()) })
    }
}
