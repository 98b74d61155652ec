//! The connection to the app: HTTP/1.1 keep-alive connections kept per serving core and driven
//! by the task serving the request (`pool`, `app_body`), connect and response-header timeouts,
//! and the WebSocket tunnel used after an upgrade.

mod app_body;
mod pool;
mod request_body;

pub use app_body::AppBody;
pub use request_body::{BodySent, RequestBody, RequestBodyError};

use crate::config::{LimitsConfig, UpstreamConfig};
use crate::io::{Activity, ActivityIo};
use http::uri::Authority;
use http::{header, HeaderValue, Request, Response, Uri};
use hyper::client::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use pool::{AppConnection, Pool};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// Why the app gave no response.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection could be made within `connect_timeout`.
    #[error("connecting to the app timed out")]
    ConnectTimeout,
    /// No connection could be made (refused, unreachable).
    #[error("cannot connect to the app")]
    Connect(#[source] std::io::Error),
    /// The HTTP/1.1 handshake on a new connection failed.
    #[error("cannot start HTTP/1.1 with the app")]
    Handshake(#[source] hyper::Error),
    /// The app did not send response headers within `response_header_timeout`.
    #[error("the app did not send response headers within response_header_timeout")]
    Timeout,
    /// The client's body passed `limits.max_body_bytes`.
    #[error("the request body exceeds limits.max_body_bytes")]
    BodyTooLarge,
    /// The client stopped sending its body (disconnect or malformed chunking).
    #[error("the client's body broke off")]
    ClientBody(#[source] hyper::Error),
    /// The exchange with the app failed.
    #[error("the exchange with the app failed")]
    Other(#[source] hyper::Error),
}

impl ForwardError {
    /// No connection to the app at all (as opposed to a failed exchange on one).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout | Self::Connect(_) | Self::Handshake(_)
        )
    }
}

pub struct Upstream {
    pool: Arc<Pool>,
    handshake: http1::Builder,
    authority: Authority,
    /// The authority as a Host header, for requests that came without one (HTTP/1.0).
    default_host: HeaderValue,
    connect_timeout: Duration,
    response_header_timeout: Duration,
    pub websockets: bool,
    tunnel_idle_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig, limits: &LimitsConfig) -> Self {
        let mut handshake = http1::Builder::new();
        // Head and a small body in one write.
        handshake.writev(false);
        Self {
            pool: Pool::new(config.pool_idle_timeout, config.pool_max_idle),
            handshake,
            authority: config.url.clone(),
            default_host: HeaderValue::from_str(config.url.as_str())
                .expect("an authority is a valid header value"),
            connect_timeout: config.connect_timeout,
            response_header_timeout: config.response_header_timeout,
            websockets: config.websockets,
            tunnel_idle_timeout: limits.idle_timeout,
        }
    }

    /// The request target sent to the app: origin-form (`/path?query`, byte for byte), or `*`.
    /// The client's absolute-form or HTTP/2 authority has already become the Host header.
    pub fn target_for(&self, uri: &Uri) -> Result<Uri, http::Error> {
        if uri.scheme().is_none() && uri.authority().is_none() {
            return Ok(uri.clone());
        }
        match uri.path_and_query() {
            Some(path_and_query) => Ok(Uri::from(path_and_query.clone())),
            None => Uri::builder().path_and_query("/").build(),
        }
    }

    /// Sends the request on one of this core's idle connections, or a new one. `body_sent`
    /// resolves when the request body is complete: the response-header timeout runs from then,
    /// so a long upload is not cut off (`docs/proxy.md`, "Limits"). A request on an idle
    /// connection that turns out closed before the request was written goes again on a new
    /// connection; so does a bodiless GET or HEAD whose reused connection closed under it after
    /// it was written (as nginx's `proxy_next_upstream` does): those are safe to send twice,
    /// anything else is not.
    pub async fn send(
        &self,
        mut request: Request<RequestBody>,
        body_sent: BodySent,
        upgrade: bool,
    ) -> Result<Response<AppBody>, ForwardError> {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.default_host.clone());
        }
        let timeout = self.response_header_timeout;
        let deadline = async move {
            body_sent.wait().await;
            tokio::time::sleep(timeout).await
        };
        let mut deadline = std::pin::pin!(deadline);
        let mut fresh_only = false;
        loop {
            let pooled = match fresh_only {
                true => None,
                false => std::future::poll_fn(|cx| Poll::Ready(self.pool.take(cx))).await,
            };
            let reused = pooled.is_some();
            let connection = match pooled {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            let replay = (reused && !upgrade && replayable(&request)).then(|| head_of(&request));
            let exchange = match upgrade {
                true => {
                    self.exchange_upgrade(connection, request, deadline.as_mut())
                        .await
                }
                false => self.exchange(connection, request, deadline.as_mut()).await,
            };
            match exchange {
                Err(Unsent(unsent, _)) if reused => {
                    request = unsent;
                    fresh_only = true;
                }
                Err(Unsent(_, err)) => return Err(classify(err)),
                Ok(Err(ForwardError::Other(err))) if replay.is_some() && closed_under(&err) => {
                    request = Request::from_parts(replay.expect("checked"), RequestBody::empty());
                    fresh_only = true;
                }
                Ok(result) => return result,
            }
        }
    }

    /// Opens a connection to the app within the connect timeout.
    async fn connect(&self) -> Result<AppConnection, ForwardError> {
        let host = self.authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = self.authority.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| ForwardError::ConnectTimeout)?
        .map_err(ForwardError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, driver) = self
            .handshake
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ForwardError::Handshake)?;
        Ok(AppConnection {
            sender,
            driver: Box::new(driver),
        })
    }

    /// One request on `connection`, which this task drives until the response head is in; the
    /// response body then carries the connection on (`AppBody`).
    async fn exchange(
        &self,
        mut connection: AppConnection,
        request: Request<RequestBody>,
        mut deadline: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Result<Response<AppBody>, ForwardError>, Unsent> {
        let mut response = std::pin::pin!(connection.sender.try_send_request(request));
        let mut driving = true;
        let result = std::future::poll_fn(|cx| {
            if driving && connection.drive(cx).is_ready() {
                driving = false; // closed or failed: the response future says why
            }
            if let Poll::Ready(result) = response.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match result {
            None => Ok(Err(ForwardError::Timeout)),
            Some(Ok(response)) => Ok(Ok(match driving {
                true => response.map(|body| AppBody::new(body, connection, self.pool.clone())),
                false => response.map(AppBody::detached),
            })),
            Some(Err(mut err)) => match err.take_message() {
                Some(request) => Err(Unsent(request, err.into_error())),
                None => Ok(Err(classify(err.into_error()))),
            },
        }
    }

    /// An upgrade request: its connection is driven by a task of its own, which hands the
    /// socket to the tunnel if the app switches protocols; it is never reused.
    async fn exchange_upgrade(
        &self,
        connection: AppConnection,
        request: Request<RequestBody>,
        deadline: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Result<Response<AppBody>, ForwardError>, Unsent> {
        let AppConnection { mut sender, driver } = connection;
        tokio::spawn(async move {
            if let Err(err) = (*driver).with_upgrades().await {
                tracing::debug!(error = %err, "upgrade connection to the app failed");
            }
        });
        tokio::select! {
            result = sender.try_send_request(request) => match result {
                Ok(response) => Ok(Ok(response.map(AppBody::detached))),
                Err(mut err) => match err.take_message() {
                    Some(request) => Err(Unsent(request, err.into_error())),
                    None => Ok(Err(classify(err.into_error()))),
                },
            },
            () = deadline => Ok(Err(ForwardError::Timeout)),
        }
    }

    /// Joins the client's and the app's upgraded connections until either side closes or nothing
    /// moves for the idle timeout.
    pub fn spawn_tunnel(&self, client: OnUpgrade, app: OnUpgrade) {
        let idle_timeout = self.tunnel_idle_timeout;
        tokio::spawn(async move {
            let (client, app) = match tokio::try_join!(client, app) {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::debug!(error = %err, "upgrade did not complete");
                    return;
                }
            };
            let activity = Activity::new();
            let mut client = ActivityIo::new(TokioIo::new(client), activity.clone());
            let mut app = ActivityIo::new(TokioIo::new(app), activity.clone());
            tokio::select! {
                result = tokio::io::copy_bidirectional(&mut client, &mut app) => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "websocket tunnel ended with an error");
                    }
                }
                _ = activity.idle(idle_timeout) => {
                    tracing::debug!("websocket tunnel closed after the idle timeout");
                }
            }
        });
    }
}

/// GET and HEAD without a body: safe to send again.
fn replayable(request: &Request<RequestBody>) -> bool {
    use http_body::Body;
    matches!(*request.method(), http::Method::GET | http::Method::HEAD)
        && request.body().is_end_stream()
}

/// The request's head, to send it again without its (empty) body.
fn head_of(request: &Request<RequestBody>) -> http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy.into_parts().0
}

/// The app closed (or reset) the connection after the request was written and before any
/// answer: it was idle on the app's side and timed out at that instant.
fn closed_under(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = current.source();
    }
    false
}

/// A request that was not written to its connection (the connection had closed), returned so
/// it can go on another.
struct Unsent(Request<RequestBody>, hyper::Error);

fn classify(err: hyper::Error) -> ForwardError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(body_error) = current.downcast_ref::<RequestBodyError>() {
            return match body_error {
                RequestBodyError::TooLarge => ForwardError::BodyTooLarge,
                RequestBodyError::Client(_) => ForwardError::ClientBody(err),
            };
        }
        source = current.source();
    }
    ForwardError::Other(err)
}
