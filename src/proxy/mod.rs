//! The request path. Every request on the public listeners comes through `Proxy::handle`: the
//! reserved prefix goes to Tether's endpoints, anything else is forwarded to the app with the
//! header policy of `headers` applied.

pub mod body;
pub mod engine;
pub mod framing;
pub mod headers;
pub mod reserved;
mod upstream;

pub use body::{full, EndpointBody, ResponseBody};
pub use engine::{AppFetcher, Fetched, GetRequest};
pub use upstream::{AppBody, ForwardError, RequestBody, Upstream};

use crate::config::{Config, IdentitySource};
use crate::inject::Injector;
use crate::metrics::{EdgeRefusal, Metrics, UpstreamFailure};
use crate::refusal::Refusal;
use crate::respond::Reply;
use headers::IdentityHeaders;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use ipnet::IpNet;
use reserved::Route;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Whether a response's `Content-Length` fields say one length (ignored beside a coding).
fn lengths_agree(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || framing::content_length(
            headers
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .map(|value| value.as_bytes()),
        )
        .is_ok()
}

/// What Tether knows about the client connection a request arrived on.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer is in `server.trusted_proxies`.
    pub trusted_peer: bool,
    peer_ip: HeaderValue,
    /// `for=<peer>` as RFC 7239 writes it (an IPv6 address quoted and bracketed), made once per
    /// connection for the `Forwarded` header.
    forwarded_for: Box<str>,
    proto: HeaderValue,
    local_port: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, local: SocketAddr, tls: bool, trusted_proxies: &[IpNet]) -> Self {
        let ip = peer.ip().to_canonical();
        let forwarded_for = match ip {
            std::net::IpAddr::V4(v4) => format!("for={v4}"),
            std::net::IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
        };
        Self {
            peer,
            tls,
            trusted_peer: trusted_proxies.iter().any(|net| net.contains(&ip)),
            peer_ip: HeaderValue::from_str(&ip.to_string())
                .expect("an IP address is a valid header value"),
            forwarded_for: forwarded_for.into(),
            proto: HeaderValue::from_static(if tls { "https" } else { "http" }),
            local_port: HeaderValue::from(local.port()),
        }
    }

    /// The client's address: the peer's, or for a trusted proxy the address it says it was
    /// called from (the last entry of its `X-Forwarded-For`).
    pub fn client_ip(&self, headers: &http::HeaderMap) -> std::net::IpAddr {
        let peer = self.peer.ip().to_canonical();
        if !self.trusted_peer {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|chain| chain.rsplit(',').next())
            .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
            .map_or(peer, |ip| ip.to_canonical())
    }
}

pub use crate::io::BoxFuture;

/// Tether's own endpoints under the reserved prefix. Identity headers have already been removed
/// from the request (or, in header mode from a trusted gateway, kept exactly as configured).
pub trait ReservedEndpoints: Send + Sync + 'static {
    /// `subpath` is the path below the prefix: "" or "/...".
    fn handle(
        &self,
        request: Request<EndpointBody>,
        subpath: String,
        conn: Arc<ConnInfo>,
    ) -> BoxFuture<Reply>;
}

/// The endpoints when no vendor is configured: everything under the prefix is 404.
pub struct NoEndpoints;

impl ReservedEndpoints for NoEndpoints {
    fn handle(&self, _: Request<EndpointBody>, _: String, _: Arc<ConnInfo>) -> BoxFuture<Reply> {
        Box::pin(async { Refusal::NotFound.into_reply() })
    }
}

pub struct Proxy {
    prefix: String,
    identity: IdentityHeaders,
    /// Identity comes from a trusted gateway's headers (`identity.source = "header"`).
    gateway_identity: bool,
    strip_identity_from_responses: bool,
    max_body_bytes: u64,
    max_header_bytes: u64,
    upstream: Upstream,
    endpoints: Arc<dyn ReservedEndpoints>,
    /// `[inject]`: the snippets on the app's pages, when on.
    injector: Option<Injector>,
    metrics: Arc<Metrics>,
    access_log: bool,
    /// Tether's own HTTP/1.1 path, when `server.http1_engine = "tether"`.
    engine: Option<engine::Engine>,
}

impl Proxy {
    /// Whether HTTP/1.1 connections go to Tether's own engine first.
    pub fn has_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// `page`: what `[inject]` puts on pages for the vendors (see `Injector::new`).
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        endpoints: Arc<dyn ReservedEndpoints>,
        page: Option<&crate::inject::PageInputs>,
    ) -> Self {
        let identity = &config.identity;
        Self {
            prefix: config.reserved.prefix.clone(),
            identity: IdentityHeaders::new(
                &identity.identity_headers(),
                &identity.protected_headers,
            ),
            gateway_identity: identity.source == IdentitySource::Header,
            strip_identity_from_responses: identity.strip_from_responses,
            max_body_bytes: config.limits.max_body_bytes,
            max_header_bytes: config.limits.max_header_bytes,
            upstream: Upstream::new(&config.upstream, &config.limits),
            endpoints,
            injector: Injector::new(config, metrics.clone(), page),
            metrics,
            access_log: config.log.access_log,
            engine: (config.server.http1_engine == crate::config::Http1Engine::Tether)
                .then(|| engine::Engine::new(config)),
        }
    }

    /// Answers one request: hyper's service (it owns what it uses, and never fails).
    /// `ambiguous_length`: the connection's framing follower found that this HTTP/1 request
    /// carried both `Content-Length` and `Transfer-Encoding` (see `framing`).
    ///
    /// The routing is inline, not an `async fn` of its own: each level of async call keeps its
    /// own copies of the request and is copied whole into its caller's state when it starts, and
    /// HTTP/2 allocates this future per stream (`memmove` was a tenth of an HTTP/2 request's CPU
    /// time; this level was 840 bytes of each stream's task).
    pub async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        conn: Arc<ConnInfo>,
        ambiguous_length: bool,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let logged = self.access_log.then(|| {
            (
                request.method().clone(),
                request.uri().path().to_owned(),
                request.version(),
                Instant::now(),
            )
        });
        // Identity hygiene comes before anything else reads the request.
        let from_gateway = self.gateway_identity && conn.trusted_peer;
        let removed = self.identity.strip(request.headers_mut(), from_gateway);
        if removed > 0 {
            self.metrics.spoofed_identity_header(removed as u64);
        }
        let response = if ambiguous_length {
            self.refuse_ambiguous_length()
        } else if request.version() == Version::HTTP_2
            && header_list_size(&request) > self.max_header_bytes
        {
            self.metrics.refused(EdgeRefusal::HeadersTooLarge);
            refuse(Refusal::HeadersTooLarge)
        } else {
            match reserved::classify(&self.prefix, request.uri().path()) {
                Route::App => self.forward(request, &conn).await,
                Route::Reserved(subpath) => {
                    let subpath = subpath.to_owned();
                    self.reserved(request, subpath, &conn).await
                }
                Route::Disguised => {
                    self.metrics.reserved_path_rejected();
                    refuse(Refusal::DisguisedReservedPath)
                }
            }
        };
        self.metrics.response(response.status().as_u16());
        if let Some((method, path, version, started)) = logged {
            tracing::info!(
                target: "tether::access",
                peer = %conn.peer,
                %method,
                path,
                version = ?version,
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
            );
        }
        Ok(response)
    }

    /// The answer to an HTTP/1 request that carried both `Content-Length` and
    /// `Transfer-Encoding` (see `framing`): refused before anything reads its body, and the
    /// connection closed, because where its body ends is exactly what is in doubt.
    fn refuse_ambiguous_length(&self) -> Response<ResponseBody> {
        self.metrics.refused(EdgeRefusal::AmbiguousLength);
        refuse(Refusal::AmbiguousLength)
    }

    /// A request under the reserved prefix, for Tether's own endpoints.
    async fn reserved(
        &self,
        mut request: Request<Incoming>,
        subpath: String,
        conn: &Arc<ConnInfo>,
    ) -> Response<ResponseBody> {
        // Endpoints read the Host header; HTTP/2 carries it in the authority.
        if !request.headers().contains_key(header::HOST) {
            if let Some(host) = request
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                request.headers_mut().insert(header::HOST, host);
            }
        }
        let request = request.map(EndpointBody::streaming);
        let reply = self.endpoints.handle(request, subpath, conn.clone()).await;
        with_private_headers(reply).map(ResponseBody::own)
    }

    async fn forward(
        &self,
        mut request: Request<Incoming>,
        conn: &ConnInfo,
    ) -> Response<ResponseBody> {
        if self.max_body_bytes > 0
            && content_length(request.headers()).is_some_and(|n| n > self.max_body_bytes)
        {
            return refuse(Refusal::BodyTooLarge);
        }
        let upgrade = self.upgrade_token(&request);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let page = headers::prepare_request(&mut parts, conn, upgrade.as_ref(), |parts| {
            let injector = self.injector.as_ref()?;
            let from_gateway = self.gateway_identity && conn.trusted_peer;
            let scheme = page_scheme(&parts.headers, conn);
            injector.candidate(parts, from_gateway, scheme)
        });
        parts.uri = match self.upstream.target_for(&parts.uri) {
            Ok(uri) => uri,
            Err(_) => return refuse(Refusal::BadRequestTarget),
        };
        parts.version = Version::HTTP_11;
        // hyper's client sends a GET whose body length it does not know without the body (GET
        // "almost never" has one); the app gets the body the client sent, framed explicitly.
        if parts.method == http::Method::GET
            && !http_body::Body::is_end_stream(&body)
            && !parts.headers.contains_key(header::CONTENT_LENGTH)
        {
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }

        let sent = Instant::now();
        let (body, body_sent) = RequestBody::new(body, self.max_body_bytes);
        let result = self
            .upstream
            .send(
                Request::from_parts(parts, body),
                body_sent,
                upgrade.is_some(),
            )
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(err) => return self.forward_error(err),
        };
        self.metrics.upstream_latency.observe(sent.elapsed());
        if !lengths_agree(response.headers()) {
            // hyper checks them only where it reads a body (not for HEAD, 204, 304).
            tracing::warn!("the app's answer has Content-Length fields that disagree");
            self.metrics.upstream_failure(UpstreamFailure::Other);
            return refuse(Refusal::UpstreamError);
        }

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return match (upgrade, client_upgrade) {
                (Some(token), Some(client_upgrade)) if upgrade_matches(&response, &token) => {
                    let app_upgrade = hyper::upgrade::on(&mut response);
                    self.upstream.spawn_tunnel(client_upgrade, app_upgrade);
                    self.metrics.websocket_tunnel();
                    self.switching_protocols(response, token)
                }
                _ => {
                    tracing::warn!(
                        "the app answered 101 to a request that did not ask for that upgrade"
                    );
                    refuse(Refusal::UnexpectedUpgrade)
                }
            };
        }
        if let (Some(injector), Some(page)) = (&self.injector, page) {
            match injector.respond(page, response) {
                Ok(mut injected) => {
                    self.clean_response_headers(injected.headers_mut());
                    return injected.map(ResponseBody::injected);
                }
                Err(unchanged) => response = *unchanged,
            }
        }
        self.clean_response_headers(response.headers_mut());
        // Tether answers in its own HTTP version, whatever the app's was (RFC 9110 2.5): an
        // HTTP/1.0 status line would make a client drop a connection Tether keeps open.
        *response.version_mut() = Version::HTTP_11;
        response.map(ResponseBody::app)
    }

    /// The `Upgrade` token when this is an HTTP/1.1 upgrade request Tether will tunnel.
    fn upgrade_token(&self, request: &Request<Incoming>) -> Option<HeaderValue> {
        if !self.upstream.websockets || request.version() != Version::HTTP_11 {
            return None;
        }
        let token = request.headers().get(header::UPGRADE)?;
        headers::connection_has(request.headers(), "upgrade").then(|| token.clone())
    }

    fn switching_protocols(
        &self,
        mut response: Response<AppBody>,
        token: HeaderValue,
    ) -> Response<ResponseBody> {
        self.clean_response_headers(response.headers_mut());
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, token);
        response.map(|_| ResponseBody::own(Full::default()))
    }

    fn clean_response_headers(&self, headers: &mut http::HeaderMap) {
        // A length beside a transfer coding is not the body's (RFC 9112 6.3): hyper read the
        // body by its coding, and the length must not reach the client.
        if headers.contains_key(http::header::TRANSFER_ENCODING) {
            headers.remove(http::header::CONTENT_LENGTH);
        }
        headers::strip_hop_by_hop(headers);
        if self.strip_identity_from_responses {
            self.identity.strip(headers, false);
        }
    }

    fn forward_error(&self, err: ForwardError) -> Response<ResponseBody> {
        let refusal = match &err {
            err if err.is_connect() => {
                self.metrics.upstream_failure(UpstreamFailure::Connect);
                Refusal::UpstreamUnavailable
            }
            ForwardError::Timeout => {
                self.metrics.upstream_failure(UpstreamFailure::Timeout);
                Refusal::UpstreamTimeout
            }
            ForwardError::BodyTooLarge => Refusal::BodyTooLarge,
            ForwardError::ClientBody(_) => Refusal::BadRequestBody,
            _ => {
                self.metrics.upstream_failure(UpstreamFailure::Other);
                Refusal::UpstreamError
            }
        };
        tracing::warn!(error = %crate::io::ErrorChain(&err), status = refusal.status().as_u16(), "forwarding failed");
        refuse(refusal)
    }
}

/// A refusal as the proxy answers it.
fn refuse(refusal: Refusal) -> Response<ResponseBody> {
    refusal.into_reply().map(ResponseBody::own)
}

/// The scheme the browser used for the page: this listener's, or a trusted balancer's
/// `X-Forwarded-Proto` in front of the plain listener.
fn page_scheme(headers: &http::HeaderMap, conn: &ConnInfo) -> &'static str {
    let forwarded_https = conn.trusted_peer
        && headers
            .get("x-forwarded-proto")
            .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    if conn.tls || forwarded_https {
        "https"
    } else {
        "http"
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An HTTP/2 request's header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113
/// section 6.5.2: name, value and 32 octets per field, pseudo-header fields included).
fn header_list_size(request: &Request<Incoming>) -> u64 {
    let uri = request.uri();
    let pseudo = [
        (":method", request.method().as_str().len()),
        (":scheme", uri.scheme_str().map_or(0, str::len)),
        (
            ":authority",
            uri.authority().map_or(0, |a| a.as_str().len()),
        ),
        (
            ":path",
            uri.path_and_query().map_or(1, |p| p.as_str().len()),
        ),
    ];
    let pseudo: usize = pseudo
        .iter()
        .map(|(name, value)| name.len() + value + 32)
        .sum();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    (pseudo + fields) as u64
}

fn upgrade_matches(response: &Response<AppBody>, token: &HeaderValue) -> bool {
    response
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|answered| answered.as_bytes().eq_ignore_ascii_case(token.as_bytes()))
}

/// Responses from Tether's own endpoints are private to the caller unless the endpoint said
/// otherwise (a public JWKS may set its own Cache-Control).
pub(crate) fn with_private_headers<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
