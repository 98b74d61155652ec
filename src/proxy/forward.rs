//! The connection to the app: a pooled HTTP/1.1 client with connect and response-header timeouts,
//! and the WebSocket tunnel used after an upgrade.

use super::body::RequestBody;
use crate::config::{LimitsConfig, UpstreamConfig};
use crate::io::{Activity, ActivityIo};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::time::Duration;

/// Why the app gave no response.
#[derive(Debug)]
pub enum ForwardError {
    /// No connection could be made (refused, unreachable, connect timeout).
    Connect(String),
    /// The app did not send response headers within `response_header_timeout`.
    Timeout,
    /// The client's body passed `limits.max_body_bytes`.
    BodyTooLarge,
    /// The client stopped sending its body (disconnect or malformed chunking).
    ClientBody(String),
    Other(String),
}

pub struct Upstream {
    client: Client<HttpConnector, RequestBody>,
    authority: Authority,
    response_header_timeout: Duration,
    pub websockets: bool,
    tunnel_idle_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig, limits: &LimitsConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle)
            .http1_writev(false)
            .build(connector);
        Self {
            client,
            authority: config.url.clone(),
            response_header_timeout: config.response_header_timeout,
            websockets: config.websockets,
            tunnel_idle_timeout: limits.idle_timeout,
        }
    }

    /// The app's URI for a request's path and query, byte for byte.
    pub fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let path_and_query = path_and_query
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// Sends the request. `body_sent` resolves when the request body is complete: the
    /// response-header timeout runs from then, so a long upload is not cut off (proxy.md 13).
    pub async fn send(
        &self,
        request: Request<RequestBody>,
        body_sent: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<Response<Incoming>, ForwardError> {
        let timeout = self.response_header_timeout;
        let deadline = async move {
            // A body that fails drops its sender; the request then fails on its own.
            match body_sent.await {
                Ok(()) => tokio::time::sleep(timeout).await,
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            result = self.client.request(request) => result.map_err(classify),
            () = deadline => Err(ForwardError::Timeout),
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

fn classify(err: hyper_util::client::legacy::Error) -> ForwardError {
    if err.is_connect() {
        return ForwardError::Connect(error_chain(&err));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(body_error) = current.downcast_ref::<super::body::RequestBodyError>() {
            return match body_error {
                super::body::RequestBodyError::TooLarge => ForwardError::BodyTooLarge,
                super::body::RequestBodyError::Client(inner) => {
                    ForwardError::ClientBody(inner.to_string())
                }
            };
        }
        source = current.source();
    }
    ForwardError::Other(error_chain(&err))
}

/// "outer: inner: innermost", for logs.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
