//! Tether's own HTTP/1.1 forwarding path (`[server] http1_engine = "tether"`), for the common
//! case: keep-alive requests to the app with no body, a length or a chunked body, and their
//! responses. The head is parsed once (`head`), the edits of `docs/proxy.md` are written
//! straight from it as bytes (`write`), bodies are relayed by their framing (`relay`, `chunks`),
//! and the client's connection drives its app connection (`app`) with no task or channel in
//! between.
//!
//! Tether's own endpoints are served here too (`endpoints`): the router gets an `http::Request`
//! with the (small) body already read, and its answer is written as bytes.
//!
//! Anything else goes to the hyper path, chosen before any byte of that request is forwarded:
//! endpoint requests with a chunked or large body, `[inject]` pages, upgrades, `Expect`,
//! HTTP/1.0, absolute-form or asterisk targets, `CONNECT`, ambiguous or unusual framing, heads
//! hyper would refuse. From then on the connection is hyper's, starting with the bytes already
//! read (`Handoff::Hyper`).

mod app;
mod chunks;
mod date;
mod endpoints;
mod fetch;
mod head;
mod relay;
mod write;

pub use fetch::{AppFetcher, Fetched, GetRequest};

use super::{reserved, ConnInfo, Proxy};
use crate::metrics::UpstreamFailure;
use crate::refusal::Refusal;
use app::{AppConnections, ConnectError};
use bytes::{Buf, BytesMut};
use head::{Framing, Head, HeadError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Most header fields the engine parses; a head with more goes to hyper, which applies
/// `limits.max_headers`.
const MAX_HEADERS: usize = 128;
const BUFFER: usize = 16 * 1024;

/// The engine's state for one serving core.
pub struct Engine {
    apps: AppConnections,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    response_header_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
}

impl Engine {
    pub fn new(config: &crate::config::Config) -> Self {
        let upstream = &config.upstream;
        let limits = &config.limits;
        Self {
            apps: AppConnections::new(
                &upstream.url,
                upstream.connect_timeout,
                upstream.pool_idle_timeout,
                upstream.pool_max_idle,
            ),
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            response_header_timeout: upstream.response_header_timeout,
            max_header_bytes: usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX),
            max_headers: limits.max_headers.min(MAX_HEADERS),
        }
    }
}

/// How the engine left a connection.
pub enum Handoff<I> {
    /// Finished (closed by either side, idle, shutting down, or failed).
    Closed,
    /// The rest is hyper's: the stream, and what was read of it and not yet answered.
    Hyper(I, BytesMut),
}

/// What the request asked of its answer.
#[derive(Debug, Clone, Copy)]
struct Asked {
    /// A HEAD: the answer has no body.
    head_request: bool,
    /// `Connection: close`: the answer is the connection's last.
    client_close: bool,
}

/// What the engine does with a request.
enum Handling {
    /// Forward it to the app; the body has this framing.
    Forward(Framing),
    /// Serve it from Tether's own endpoints.
    Endpoint(Box<endpoints::EndpointRequest>),
    /// Leave it, and the rest of the connection, to hyper.
    Hyper,
}

impl Asked {
    fn of(head: &Head, buf: &[u8]) -> Self {
        Self {
            head_request: head.bytes(buf, &head.first) == b"HEAD",
            client_close: head.connection_has(buf, "close"),
        }
    }
}

/// An access log line (`[log] access_log`): what is known of the request before it is answered.
struct AccessLine {
    method: String,
    path: String,
    at: Instant,
}

impl AccessLine {
    fn new(head: &Head, buf: &[u8]) -> Self {
        let target = String::from_utf8_lossy(head.bytes(buf, &head.second));
        Self {
            method: String::from_utf8_lossy(head.bytes(buf, &head.first)).into_owned(),
            path: target.split('?').next().unwrap_or("").to_string(),
            at: Instant::now(),
        }
    }

    fn write(self, conn: &ConnInfo, status: u16) {
        tracing::info!(
            target: "tether::access",
            peer = %conn.peer,
            method = %self.method,
            path = self.path,
            version = "HTTP/1.1",
            status,
            elapsed_us = self.at.elapsed().as_micros() as u64,
        );
    }
}

/// What reading a request head came to.
enum Read {
    Head,
    Closed,
    Hyper,
}

/// One connection's buffers, reused from request to request.
struct Buffers {
    client: BytesMut,
    app: BytesMut,
    request: Vec<u8>,
    response: Vec<u8>,
    head: Head,
    app_head: Head,
}

impl Proxy {
    /// Serves an HTTP/1.1 connection with the engine for as long as its requests are ones the
    /// engine handles.
    pub async fn serve_http1<I>(
        &self,
        mut client: I,
        conn: &Arc<ConnInfo>,
        mut stop: watch::Receiver<bool>,
    ) -> Handoff<I>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let engine = self
            .engine
            .as_ref()
            .expect("serve_http1 is called with an engine");
        let mut buffers = Buffers {
            client: BytesMut::with_capacity(BUFFER),
            app: BytesMut::with_capacity(BUFFER),
            request: Vec::with_capacity(1024),
            response: Vec::with_capacity(BUFFER),
            head: Head::default(),
            app_head: Head::default(),
        };
        loop {
            match self
                .read_request_head(engine, &mut client, &mut buffers, &mut stop)
                .await
            {
                Read::Head => {}
                Read::Closed => return Handoff::Closed,
                Read::Hyper => return self.handoff(client, buffers),
            }
            let keep = match self.handling(&buffers.head, &buffers.client) {
                Handling::Forward(framing) => {
                    self.exchange(engine, &mut client, &mut buffers, framing, conn)
                        .await
                }
                Handling::Endpoint(request) => {
                    self.serve_endpoint(engine, &mut client, &mut buffers, *request, conn)
                        .await
                }
                Handling::Hyper => return self.handoff(client, buffers),
            };
            if !keep || *stop.borrow() {
                let _ = client.shutdown().await;
                return Handoff::Closed;
            }
        }
    }

    fn handoff<I>(&self, client: I, buffers: Buffers) -> Handoff<I> {
        self.metrics.http1_handoff();
        Handoff::Hyper(client, buffers.client)
    }

    /// Reads until a whole head is in the buffer. Waiting for a request's first byte ends on
    /// the idle timeout or shutdown; a started head must complete within the header timeout.
    async fn read_request_head<I: AsyncRead + Unpin>(
        &self,
        engine: &Engine,
        client: &mut I,
        buffers: &mut Buffers,
        stop: &mut watch::Receiver<bool>,
    ) -> Read {
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if !buffers.client.is_empty() {
                let mut scratch = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match buffers
                    .head
                    .request(&buffers.client, &mut scratch[..engine.max_headers])
                {
                    Ok(Some(())) if buffers.head.len <= engine.max_header_bytes => {
                        return Read::Head
                    }
                    Ok(Some(())) | Err(HeadError::Invalid | HeadError::TooMany) => {
                        return Read::Hyper
                    }
                    Ok(None) if buffers.client.len() > engine.max_header_bytes => {
                        return Read::Hyper
                    }
                    Ok(None) => {}
                }
                deadline.get_or_insert_with(|| {
                    tokio::time::Instant::now() + engine.header_read_timeout
                });
            }
            buffers.client.reserve(BUFFER);
            let read = async {
                match deadline {
                    Some(at) => tokio::time::timeout_at(at, client.read_buf(&mut buffers.client))
                        .await
                        .ok(),
                    None => tokio::select! {
                        read = tokio::time::timeout(
                            engine.idle_timeout,
                            client.read_buf(&mut buffers.client),
                        ) => read.ok(),
                        _ = stop.changed() => None,
                    },
                }
            };
            match read.await {
                Some(Ok(n)) if n > 0 => {}
                _ => return Read::Closed,
            }
        }
    }

    /// What the engine does with the request whose head is in `buf`; decided before any of it
    /// is answered or forwarded.
    fn handling(&self, head: &Head, buf: &[u8]) -> Handling {
        let method = head.bytes(buf, &head.first);
        let Some(target) = std::str::from_utf8(head.bytes(buf, &head.second)).ok() else {
            return Handling::Hyper;
        };
        if head.minor != 1 || method == b"CONNECT" || !target.starts_with('/') {
            return Handling::Hyper;
        }
        // A target hyper's URI parser would refuse or change (a fragment it drops, a byte it
        // does not take) goes to hyper, which answers it as it always has.
        if !head::plain_target(target)
            && http::uri::PathAndQuery::try_from(target)
                .map_or(true, |parsed| parsed.as_str() != target)
        {
            return Handling::Hyper;
        }
        if head.values(buf, "host").count() != 1
            || head.values(buf, "upgrade").next().is_some()
            || head.values(buf, "expect").next().is_some()
            || head.connection_has(buf, "upgrade")
        {
            return Handling::Hyper;
        }
        let Some(framing) = head::request_framing(head, buf) else {
            return Handling::Hyper;
        };
        // A HEAD with a body (a smuggling shape: what reads it and what does not disagree on
        // where the next request starts) is hyper's, which sends it on without the body.
        if method == b"HEAD" && framing != Framing::None {
            return Handling::Hyper;
        }
        let path = target.split('?').next().unwrap_or(target);
        match reserved::classify(&self.prefix, path) {
            reserved::Route::App => {}
            reserved::Route::Reserved(subpath) => {
                return endpoints::EndpointRequest::new(head, buf, subpath, framing)
                    .map_or(Handling::Hyper, |request| {
                        Handling::Endpoint(Box::new(request))
                    })
            }
            reserved::Route::Disguised => return Handling::Hyper,
        }
        if let Some(injector) = &self.injector {
            if method == b"GET" && injector.may_inject(path) {
                return Handling::Hyper;
            }
        }
        let over_limit = match framing {
            _ if self.max_body_bytes == 0 => false,
            Framing::Length(n) => n > self.max_body_bytes,
            Framing::Chunked => true,
            _ => false,
        };
        if over_limit {
            Handling::Hyper
        } else {
            Handling::Forward(framing)
        }
    }

    /// Forwards one request and its response; whether the client's connection stays open.
    async fn exchange<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        engine: &Engine,
        client: &mut I,
        buffers: &mut Buffers,
        framing: Framing,
        conn: &Arc<ConnInfo>,
    ) -> bool {
        let head = &buffers.head;
        let logged = self
            .access_log
            .then(|| AccessLine::new(head, &buffers.client));
        let asked = Asked::of(head, &buffers.client);
        let bodiless_read = framing == Framing::None
            && matches!(head.bytes(&buffers.client, &head.first), b"GET" | b"HEAD");
        buffers.request.clear();
        let policy = write::RequestPolicy {
            identity: &self.identity,
            from_gateway: self.gateway_identity && conn.trusted_peer,
            conn,
        };
        let removed = write::request_head(
            head,
            &buffers.client,
            framing,
            &policy,
            &mut buffers.request,
        );
        if removed > 0 {
            self.metrics.spoofed_identity_header(removed as u64);
        }
        let head_len = head.len;
        buffers.client.advance(head_len);
        let sent = Instant::now();
        let outcome = self
            .send_request(engine, client, buffers, framing, bodiless_read)
            .await;
        let (status, keep) = match outcome {
            Ok(app) => {
                self.metrics.upstream_latency.observe(sent.elapsed());
                relay::respond(self, engine, client, buffers, app, asked)
                    .await
                    .unwrap_or((0, false))
            }
            // The client went away or stalled mid-body: nobody to answer.
            Err(None) => (0, false),
            Err(Some(refusal)) => {
                let status = refusal.status().as_u16();
                let close = asked.client_close || status == 400;
                buffers.response.clear();
                let asked = Asked {
                    client_close: close,
                    ..asked
                };
                write::answer(refusal.into_reply(), asked, &mut buffers.response);
                let written =
                    relay::write_within(engine.idle_timeout, client, &buffers.response).await;
                // A body the request still had on the way is not read: the connection ends.
                let read_whole = relay::body_ready(framing, &buffers.client).1;
                (status, written && !close && read_whole)
            }
        };
        if status != 0 {
            self.metrics.response(status);
        }
        if let Some(line) = logged {
            line.write(conn, status);
        }
        keep
    }

    /// Sends the request (head, then body) on an idle app connection or a new one; the
    /// connection and whether it was reused, or the refusal to answer (None: the client went
    /// away or stalled mid-body, and the connection just closes). A reused connection the app
    /// had closed is replaced: before anything was written, for any request; after, only for a
    /// bodiless GET or HEAD (that is `relay::respond`'s part).
    async fn send_request<I: AsyncRead + Unpin>(
        &self,
        engine: &Engine,
        client: &mut I,
        buffers: &mut Buffers,
        framing: Framing,
        bodiless_read: bool,
    ) -> Result<relay::AppExchange, Option<Refusal>> {
        // The body bytes already read go out with the head.
        let (ready, complete) = relay::body_ready(framing, &buffers.client);
        relay::copy_ready_body(framing, &buffers.client[..ready], &mut buffers.request);
        let mut fresh_only = false;
        loop {
            let (mut app, reused) = match engine.apps.take().filter(|_| !fresh_only) {
                Some(app) => (app, true),
                None => (self.connect(engine).await.map_err(Some)?, false),
            };
            let written =
                tokio::time::timeout(engine.idle_timeout, app.write_all(&buffers.request));
            if let Err(err) = written
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            {
                if reused {
                    fresh_only = true;
                    continue;
                }
                tracing::warn!(error = %err, "writing a request to the app failed");
                return Err(Some(
                    self.failed(UpstreamFailure::Other, Refusal::UpstreamError),
                ));
            }
            buffers.client.advance(ready);
            if !complete {
                relay::rest_of_request_body(
                    client,
                    &mut app,
                    buffers,
                    framing,
                    ready,
                    engine.idle_timeout,
                )
                .await
                .map_err(|failure| match failure {
                    relay::BodyFailure::ClientGone => None,
                    relay::BodyFailure::Malformed => Some(Refusal::BadRequestBody),
                    relay::BodyFailure::AppFailed => {
                        Some(self.failed(UpstreamFailure::Other, Refusal::UpstreamError))
                    }
                })?;
            }
            return Ok(relay::AppExchange {
                stream: app,
                reused,
                replayable: bodiless_read,
                deadline: tokio::time::Instant::now() + engine.response_header_timeout,
            });
        }
    }

    async fn connect(&self, engine: &Engine) -> Result<TcpStream, Refusal> {
        engine.apps.connect().await.map_err(|err| {
            match err {
                ConnectError::Timeout => tracing::warn!("connecting to the app timed out"),
                ConnectError::Failed(err) => {
                    tracing::warn!(error = %err, "cannot connect to the app")
                }
            }
            self.failed(UpstreamFailure::Connect, Refusal::UpstreamUnavailable)
        })
    }

    fn failed(&self, kind: UpstreamFailure, refusal: Refusal) -> Refusal {
        self.metrics.upstream_failure(kind);
        refusal
    }
}
