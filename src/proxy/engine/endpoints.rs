//! Tether's own endpoints (the reserved prefix) served on the engine: the parsed head becomes
//! the `http::Request` the router takes, its body read whole first (endpoint bodies are small),
//! and the router's answer is written as bytes (`write::answer`). A connection that asks for
//! tokens so stays on the engine instead of going to hyper for the rest of its life.

use super::head::{Framing, Head};
use super::{relay, write, AccessLine, Asked, Buffers, Engine};
use crate::proxy::{ConnInfo, EndpointBody, Proxy};
use bytes::Buf;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Largest request body the engine reads for an endpoint (the OAuth endpoints read 16 KiB at
/// most); a request with a larger one, or a chunked one, is hyper's, which streams it.
const BODY_LIMIT: u64 = 64 * 1024;

/// An endpoint request with its head parsed; its body is still on the connection.
pub struct EndpointRequest {
    request: Request<()>,
    /// The path below the prefix.
    subpath: String,
    body_length: usize,
    asked: Asked,
}

impl EndpointRequest {
    /// The request for the endpoint at `subpath`, or None when it is hyper's: a chunked or
    /// large body, or a head `http` would not take as it is.
    pub fn new(head: &Head, buf: &[u8], subpath: &str, framing: Framing) -> Option<Self> {
        let body_length = match framing {
            Framing::None => 0,
            Framing::Length(n) if n <= BODY_LIMIT => usize::try_from(n).ok()?,
            _ => return None,
        };
        let mut request = Request::new(());
        *request.method_mut() = Method::from_bytes(head.bytes(buf, &head.first)).ok()?;
        *request.uri_mut() = Uri::try_from(head.bytes(buf, &head.second)).ok()?;
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        headers.reserve(head.headers.len());
        for (name, value) in &head.headers {
            headers.append(
                HeaderName::from_bytes(&buf[name.clone()]).ok()?,
                HeaderValue::from_bytes(&buf[value.clone()]).ok()?,
            );
        }
        Some(Self {
            request,
            subpath: subpath.to_owned(),
            body_length,
            asked: Asked::of(head, buf),
        })
    }
}

impl Proxy {
    /// Answers one endpoint request; whether the client's connection stays open.
    pub(super) async fn serve_endpoint<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        engine: &Engine,
        client: &mut I,
        buffers: &mut Buffers,
        call: EndpointRequest,
        conn: &Arc<ConnInfo>,
    ) -> bool {
        let logged = self
            .access_log
            .then(|| AccessLine::new(&buffers.head, &buffers.client));
        let EndpointRequest {
            mut request,
            subpath,
            body_length,
            asked,
        } = call;
        // Identity hygiene first, as on the hyper path.
        let from_gateway = self.gateway_identity && conn.trusted_peer;
        let removed = self.identity.strip(request.headers_mut(), from_gateway);
        if removed > 0 {
            self.metrics.spoofed_identity_header(removed as u64);
        }
        buffers.client.advance(buffers.head.len);
        while buffers.client.len() < body_length {
            let read = relay::read_more(client, &mut buffers.client, engine.idle_timeout).await;
            if read.is_err() {
                // The client went away or stalled mid-body: nobody to answer.
                return false;
            }
        }
        let body = buffers.client.split_to(body_length).freeze();
        let request = request.map(|()| EndpointBody::read(body));
        let reply = self.endpoints.handle(request, subpath, conn.clone()).await;
        let reply = crate::proxy::with_private_headers(reply);
        let status = reply.status().as_u16();
        buffers.response.clear();
        write::answer(reply, asked, &mut buffers.response);
        let written = relay::write_within(engine.idle_timeout, client, &buffers.response).await;
        self.metrics.response(status);
        if let Some(line) = logged {
            line.write(conn, status);
        }
        written && !asked.client_close
    }
}
