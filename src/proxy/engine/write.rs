//! The edited heads as bytes, written straight from the parsed client or app head: the same
//! policy `headers::prepare_request` and `Proxy::clean_response_headers` apply to a `HeaderMap`
//! on the hyper path (`docs/proxy.md`, "Transparency"), without building one.

use super::head::{trim, Framing, Head};
use crate::proxy::headers::{is_hop_by_hop, write_forwarded_element, IdentityHeaders, Protection};
use crate::proxy::ConnInfo;

/// Names listed in a head's `Connection` values (they go with it), lowercase.
fn connection_listed(head: &Head, buf: &[u8]) -> Vec<Vec<u8>> {
    head.values(buf, "connection")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(|token| trim(token).to_ascii_lowercase())
        .filter(|token| !token.is_empty() && token != b"host" && token != b"content-length")
        .collect()
}

fn named(name: &[u8], wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted.as_bytes())
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What the request head needs besides itself.
pub struct RequestPolicy<'a> {
    pub identity: &'a IdentityHeaders,
    /// From a trusted gateway in header mode: its identity headers may stay.
    pub from_gateway: bool,
    pub conn: &'a ConnInfo,
}

/// Writes the request head for the app; returns how many identity fields were removed.
pub fn request_head(
    head: &Head,
    buf: &[u8],
    framing: Framing,
    policy: &RequestPolicy<'_>,
    out: &mut Vec<u8>,
) -> usize {
    let conn = policy.conn;
    let listed = connection_listed(head, buf);
    let mut removed = 0;
    let mut te_trailers = false;
    let mut host: Option<&[u8]> = None;
    let mut xff_chain: Vec<&[u8]> = Vec::new();
    let mut forwarded_chain: Vec<&[u8]> = Vec::new();
    let mut real_ip_kept = false;
    out.extend_from_slice(head.bytes(buf, &head.first));
    out.push(b' ');
    out.extend_from_slice(head.bytes(buf, &head.second));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        let (name, value) = (&buf[name.clone()], &buf[value.clone()]);
        match policy.identity.protection(name) {
            Protection::Open => {}
            Protection::Strip => {
                removed += 1;
                continue;
            }
            Protection::GatewayMaySet => {
                let once = head
                    .headers
                    .iter()
                    .filter(|(other, _)| buf[other.clone()].eq_ignore_ascii_case(name))
                    .count()
                    == 1;
                // Any spelling of the same name counts as a second value (`strip` sees one
                // header map entry per lowercase name).
                if !(policy.from_gateway && once) {
                    removed += 1;
                    continue;
                }
            }
        }
        if listed.iter().any(|token| name.eq_ignore_ascii_case(token)) {
            continue;
        }
        if is_hop_by_hop(name) {
            // `te: trailers` survives (unless `Connection` lists it).
            if named(name, "te") && trim(value).eq_ignore_ascii_case(b"trailers") {
                te_trailers = true;
            }
            continue;
        }
        if named(name, "x-forwarded-for") {
            if conn.trusted_peer {
                xff_chain.push(value);
            }
            continue;
        }
        if named(name, "forwarded") {
            if conn.trusted_peer {
                forwarded_chain.push(value);
            }
            continue;
        }
        if named(name, "x-real-ip") {
            if conn.trusted_peer {
                real_ip_kept = true;
                field(out, name, value);
            }
            continue;
        }
        if named(name, "x-forwarded-proto")
            || named(name, "x-forwarded-host")
            || named(name, "x-forwarded-port")
        {
            continue;
        }
        if named(name, "host") {
            host = Some(value);
        }
        field(out, name, value);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if te_trailers {
        out.extend_from_slice(b"te: trailers\r\n");
    }
    forwarded(out, &forwarded_chain, conn, host);
    if !real_ip_kept {
        field(out, b"x-real-ip", conn.peer_ip.as_bytes());
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for earlier in &xff_chain {
        out.extend_from_slice(earlier);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(conn.peer_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    field(out, b"x-forwarded-proto", conn.proto.as_bytes());
    field(out, b"x-forwarded-port", conn.local_port.as_bytes());
    if let Some(host) = host {
        field(out, b"x-forwarded-host", host);
    }
    out.extend_from_slice(b"\r\n");
    removed
}

/// `Forwarded`, the earlier elements then Tether's (as `headers::set_rfc7239_forwarded`).
fn forwarded(out: &mut Vec<u8>, earlier: &[&[u8]], conn: &ConnInfo, host: Option<&[u8]>) {
    out.extend_from_slice(b"forwarded: ");
    for value in earlier {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    write_forwarded_element(out, conn, host);
    out.extend_from_slice(b"\r\n");
}

/// What a response is to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    KeepAlive,
    /// The connection's last response.
    Close,
}

/// Writes the response head for the client: hop-by-hop fields and the names `Connection`
/// lists go (and identity fields with `identity`); the framing is written again, with
/// `connection: close` on the connection's last response and `date` when the app gave none.
pub fn response_head(
    head: &Head,
    buf: &[u8],
    framing: Framing,
    head_request: bool,
    identity: Option<&IdentityHeaders>,
    ending: Ending,
    out: &mut Vec<u8>,
) {
    let listed = connection_listed(head, buf);
    let coded = head.values(buf, "transfer-encoding").next().is_some();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(head.status).as_slice());
    out.push(b' ');
    if head.second.is_empty() {
        let reason = http::StatusCode::from_u16(head.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("");
        out.extend_from_slice(reason.as_bytes());
    } else {
        out.extend_from_slice(head.bytes(buf, &head.second));
    }
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in &head.headers {
        let (name, value) = (&buf[name.clone()], &buf[value.clone()]);
        if is_hop_by_hop(name) || listed.iter().any(|token| name.eq_ignore_ascii_case(token)) {
            continue;
        }
        if identity.is_some_and(|identity| identity.protection(name) != Protection::Open) {
            continue;
        }
        // No length beside a transfer coding (RFC 9112 6.3) or chunked framing, nor on answers
        // that never have a body; a 304's length stays only for a HEAD (as hyper writes them:
        // the two engines answer alike).
        if named(name, "content-length")
            && (matches!(framing, Framing::Chunked | Framing::Close)
                || coded
                || matches!(head.status, 100..=199 | 204)
                || (head.status == 304 && !head_request))
        {
            continue;
        }
        has_date |= named(name, "date");
        field(out, name, value);
    }
    // A body the app ends by closing goes to the client chunked, so the client's connection
    // outlives the app's (as hyper and nginx do).
    if matches!(framing, Framing::Chunked | Framing::Close) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if ending == Ending::Close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        super::date::write_now(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn itoa3(status: u16) -> [u8; 3] {
    [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

/// An answer Tether wrote itself (an endpoint's, or a refusal) as HTTP/1.1 bytes: status, its
/// headers, `content-length`, `date`, the body; what hyper's server writes for the same
/// `Response`. `asked`: no body for a HEAD, `connection: close` when it is the connection's last.
/// 1xx, 204 and 304 answers have no body and so no length (RFC 9110 8.6).
pub fn answer(reply: crate::respond::Reply, asked: super::Asked, out: &mut Vec<u8>) {
    let (parts, mut body) = reply.into_parts();
    // A `Full` body is one frame, ready at once.
    let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::frame(&mut body))
        .flatten()
        .and_then(|frame| frame.ok()?.into_data().ok())
        .unwrap_or_default();
    let status = parts.status.as_u16();
    let bodiless = status < 200 || status == 204 || status == 304;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH {
            field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !bodiless {
        use std::io::Write;
        let _ = write!(out, "content-length: {}\r\n", body.len());
    }
    if asked.client_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"date: ");
    super::date::write_now(out);
    out.extend_from_slice(b"\r\n\r\n");
    if !asked.head_request && !bodiless {
        out.extend_from_slice(&body);
    }
}
