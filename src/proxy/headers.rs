//! Header policy for forwarded traffic: identity-header hygiene, hop-by-hop removal and the
//! X-Forwarded-* set. Order matters: identity headers are stripped first (`IdentityHeaders::strip`,
//! in `Proxy::handle`, before anything reads the request), then `prepare_request` applies the
//! rest in one fixed order: hop-by-hop removal, then Tether's own headers, so nothing a client
//! writes in `Connection` can remove a header Tether manages or bring back one it stripped.

use super::ConnInfo;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one connection, not the message (RFC 9110 7.6.1 plus legacy names).
fn fixed_hop_by_hop() -> [&'static HeaderName; 9] {
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
    ]
}

/// Folds a header-name byte the way some frameworks do when they map headers to variables
/// (CGI, WSGI, Rack, PHP): case-insensitive, `_` and `.` read as `-`.
fn fold(byte: u8) -> u8 {
    match byte {
        b'_' | b'.' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

fn folded_eq(name: &[u8], folded: &[u8]) -> bool {
    name.len() == folded.len() && name.iter().zip(folded).all(|(&a, &b)| fold(a) == b)
}

struct Protected {
    canonical: HeaderName,
    folded: Vec<u8>,
    /// Whether a trusted gateway may set this header (identity headers in `header` mode).
    gateway_may_set: bool,
}

/// The set of header names that carry identity and must never come from an untrusted client.
pub struct IdentityHeaders {
    protected: Vec<Protected>,
}

impl IdentityHeaders {
    /// `identity`: headers a trusted gateway may set; `always`: stripped from every request.
    pub fn new(identity: &[HeaderName], always: &[HeaderName]) -> Self {
        let entry = |name: &HeaderName, gateway_may_set| Protected {
            canonical: name.clone(),
            folded: name.as_str().bytes().map(fold).collect(),
            gateway_may_set,
        };
        let mut protected: Vec<Protected> = Vec::new();
        for (name, gateway) in identity
            .iter()
            .map(|n| (n, true))
            .chain(always.iter().map(|n| (n, false)))
        {
            match protected.iter_mut().find(|p| p.canonical == name) {
                Some(existing) => existing.gateway_may_set &= gateway,
                None => protected.push(entry(name, gateway)),
            }
        }
        Self { protected }
    }

    fn find(&self, name: &HeaderName) -> Option<&Protected> {
        let bytes = name.as_str().as_bytes();
        self.protected.iter().find(|p| folded_eq(bytes, &p.folded))
    }

    /// Removes every header whose folded name is protected. With `from_trusted_gateway`, a header
    /// spelled exactly as configured and carrying exactly one value survives (header mode).
    /// Returns how many fields were removed.
    pub fn strip(&self, headers: &mut HeaderMap, from_trusted_gateway: bool) -> usize {
        let mut doomed: Vec<HeaderName> = Vec::new();
        for name in headers.keys() {
            let Some(protected) = self.find(name) else {
                continue;
            };
            let keep = from_trusted_gateway
                && protected.gateway_may_set
                && *name == protected.canonical
                && headers.get_all(name).iter().count() == 1;
            if !keep {
                doomed.push(name.clone());
            }
        }
        let mut removed = 0;
        for name in doomed {
            if let header::Entry::Occupied(entry) = headers.entry(name) {
                removed += entry.remove_entry_mult().1.count();
            }
        }
        removed
    }
}

/// How a header name read off the wire is protected (the HTTP/1 engine's view of `strip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Open,
    /// Removed from every request.
    Strip,
    /// Kept only from a trusted gateway in header mode, and only with exactly one value.
    GatewayMaySet,
}

impl IdentityHeaders {
    /// `strip`'s decision for one name as it was written (any case).
    pub fn protection(&self, name: &[u8]) -> Protection {
        let Some(protected) = self.protected.iter().find(|p| folded_eq(name, &p.folded)) else {
            return Protection::Open;
        };
        if protected.gateway_may_set
            && name.eq_ignore_ascii_case(protected.canonical.as_str().as_bytes())
        {
            Protection::GatewayMaySet
        } else {
            Protection::Strip
        }
    }
}

/// Whether `name` (any case) is one of the fixed hop-by-hop headers.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    fixed_hop_by_hop()
        .iter()
        .any(|fixed| name.eq_ignore_ascii_case(fixed.as_str().as_bytes()))
}

/// Removes hop-by-hop headers: every name listed in `Connection`, then the fixed list.
/// `te: trailers` survives. `Host` and `Content-Length` cannot be removed through `Connection`
/// (that would change the message, not the connection).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none (`Connection` is itself one): one pass over the names decides,
    // instead of a lookup per name.
    let hop_by_hop = fixed_hop_by_hop();
    if !headers.keys().any(|name| hop_by_hop.contains(&name)) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .filter(|name| *name != header::HOST && *name != header::CONTENT_LENGTH)
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    let trailers_only = headers
        .get(header::TE)
        .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in hop_by_hop {
        headers.remove(name);
    }
    if trailers_only {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The request's headers on their way to the app, after the identity strip, in the one order
/// that keeps a client from undoing them (`docs/proxy.md`, "Transparency"):
///
/// 1. hop-by-hop headers and every name `Connection` lists go;
/// 2. `Host` from the authority (HTTP/2, absolute-form), or as the client sent it;
/// 3. an HTTP/2 client's cookie fields joined into one;
/// 4. `page`: the `[inject]` step, which asks the app for a page uncompressed;
/// 5. `X-Forwarded-*`, `Forwarded`, `X-Real-IP`;
/// 6. for a tunnelled upgrade, `Connection: upgrade` and its `Upgrade` token again.
pub fn prepare_request<T>(
    parts: &mut http::request::Parts,
    conn: &ConnInfo,
    upgrade: Option<&HeaderValue>,
    page: impl FnOnce(&mut http::request::Parts) -> T,
) -> T {
    // Absolute-form (HTTP/1.1) and HTTP/2 requests carry the host in the URI.
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    strip_hop_by_hop(&mut parts.headers);
    if let Some(host) = &host {
        parts.headers.insert(header::HOST, host.clone());
    }
    if parts.version == http::Version::HTTP_2 {
        join_cookies(&mut parts.headers);
    }
    let page = page(parts);
    set_forwarded(&mut parts.headers, conn, host);
    if let Some(token) = upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, token.clone());
    }
    page
}

/// Whether `Connection` lists `token` (case-insensitive).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Sets X-Forwarded-For/Proto/Host/Port, `Forwarded` (RFC 7239) and `X-Real-IP`. A client's
/// chains (`X-Forwarded-For`, `Forwarded`) and `X-Real-IP` are kept only when the peer is a
/// trusted proxy; otherwise what the peer sent is replaced, so an app reading any of them sees
/// the real peer.
pub fn set_forwarded(headers: &mut HeaderMap, conn: &ConnInfo, host: Option<HeaderValue>) {
    set_rfc7239_forwarded(headers, conn, host.as_ref());
    if !(conn.trusted_peer && headers.contains_key(&X_REAL_IP)) {
        headers.insert(X_REAL_IP.clone(), conn.peer_ip.clone());
    }
    let chain = if conn.trusted_peer {
        join_values(headers, &X_FORWARDED_FOR)
    } else {
        None
    };
    let xff = match chain {
        Some(chain) if !chain.is_empty() => {
            let mut joined = chain;
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(conn.peer_ip.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| conn.peer_ip.clone())
        }
        _ => conn.peer_ip.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    headers.insert(X_FORWARDED_PROTO.clone(), conn.proto.clone());
    headers.insert(X_FORWARDED_PORT.clone(), conn.local_port.clone());
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

/// Tether's own `Forwarded` element: `for=<peer>;host="<host>";proto=<proto>` (both HTTP/1.1
/// paths write it with this).
pub(crate) fn write_forwarded_element(out: &mut Vec<u8>, conn: &ConnInfo, host: Option<&[u8]>) {
    out.extend_from_slice(conn.forwarded_for.as_bytes());
    if let Some(host) = host {
        // A quoted-string (RFC 7230 section 3.2.6): `"` and `\` only as quoted pairs.
        out.extend_from_slice(b";host=\"");
        for &byte in host {
            if byte == b'"' || byte == b'\\' {
                out.push(b'\\');
            }
            out.push(byte);
        }
        out.push(b'"');
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(conn.proto.as_bytes());
}

/// `Forwarded: for=<peer>;host="<host>";proto=<proto>`, after a trusted peer's own elements.
fn set_rfc7239_forwarded(headers: &mut HeaderMap, conn: &ConnInfo, host: Option<&HeaderValue>) {
    let earlier = if conn.trusted_peer {
        join_values(headers, &header::FORWARDED)
    } else {
        None
    };
    let mut value = earlier.unwrap_or_default();
    value.reserve(64 + host.map_or(0, |host| host.len()));
    if !value.is_empty() {
        value.extend_from_slice(b", ");
    }
    write_forwarded_element(&mut value, conn, host.map(HeaderValue::as_bytes));
    // Handed over, not copied again.
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        Ok(value) => headers.insert(header::FORWARDED, value),
        Err(_) => headers.remove(header::FORWARDED),
    };
}

/// All values of a header joined with ", " (None when absent).
fn join_values(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for value in values {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    Some(joined)
}

/// HTTP/2 splits cookies into several fields; an HTTP/1.1 app expects one, joined with "; ".
pub fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn policy() -> IdentityHeaders {
        IdentityHeaders::new(
            &[HeaderName::from_static("x-authenticated-user")],
            &[HeaderName::from_static("x-internal-role")],
        )
    }

    #[test]
    fn strips_every_spelling() {
        for name in [
            "x-authenticated-user",
            "X-AUTHENTICATED-USER",
            "x_authenticated_user",
            "x.authenticated.user",
            "X_Authenticated.User",
            "x-internal_role",
        ] {
            let mut headers = map(&[(name, "mallory"), ("accept", "*/*")]);
            assert_eq!(policy().strip(&mut headers, false), 1, "{name}");
            assert_eq!(headers.len(), 1, "{name} survived");
        }
    }

    #[test]
    fn trusted_gateway_keeps_exact_single_identity_header_only() {
        let mut headers = map(&[
            ("x-authenticated-user", "alice"),
            ("x_authenticated_user", "mallory"),
            ("x-internal-role", "admin"),
        ]);
        assert_eq!(policy().strip(&mut headers, true), 2);
        assert_eq!(headers["x-authenticated-user"], "alice");
        let mut duplicated = map(&[
            ("x-authenticated-user", "alice"),
            ("x-authenticated-user", "mallory"),
        ]);
        assert_eq!(policy().strip(&mut duplicated, true), 2);
        assert!(duplicated.is_empty());
    }

    #[test]
    fn hop_by_hop_and_connection_listed_names_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, x-secret, content-length, host"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("content-length", "3"),
            ("host", "example.com"),
            ("proxy-authorization", "Basic eA=="),
        ]);
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-length", "host", "te"]);
        let mut gzip_te = map(&[("te", "gzip")]);
        strip_hop_by_hop(&mut gzip_te);
        assert!(gzip_te.is_empty());
    }

    #[test]
    fn cookies_are_joined() {
        let mut headers = map(&[("cookie", "a=1"), ("cookie", "b=2")]);
        join_cookies(&mut headers);
        assert_eq!(headers.get_all("cookie").iter().count(), 1);
        assert_eq!(headers["cookie"], "a=1; b=2");
    }

    #[test]
    fn forwarded_names_an_ipv6_peer_in_brackets_and_replaces_untrusted_values() {
        let conn = ConnInfo::new(
            "[2001:db8::7]:5000".parse().unwrap(),
            "[::1]:8443".parse().unwrap(),
            true,
            &[],
        );
        let mut headers = map(&[("forwarded", "for=evil"), ("x-real-ip", "6.6.6.6")]);
        set_forwarded(
            &mut headers,
            &conn,
            Some(HeaderValue::from_static("brand.example")),
        );
        assert_eq!(
            headers["forwarded"],
            "for=\"[2001:db8::7]\";host=\"brand.example\";proto=https"
        );
        assert_eq!(headers["x-real-ip"], "2001:db8::7");
    }

    #[test]
    fn a_host_with_quotes_or_backslashes_stays_one_quoted_string() {
        let conn = ConnInfo::new(
            "192.0.2.1:5000".parse().unwrap(),
            "127.0.0.1:8443".parse().unwrap(),
            true,
            &[],
        );
        let mut headers = HeaderMap::new();
        set_forwarded(
            &mut headers,
            &conn,
            Some(HeaderValue::from_static("a\\\";for=evil")),
        );
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.1;host=\"a\\\\\\\";for=evil\";proto=https"
        );
    }

    /// The order of `prepare_request`: a client naming Tether's own headers (and the page
    /// step's) in `Connection` removes its own copies, never what Tether sets afterwards.
    #[test]
    fn the_request_steps_run_in_their_order() {
        let conn = ConnInfo::new(
            "192.0.2.1:5000".parse().unwrap(),
            "127.0.0.1:8443".parse().unwrap(),
            false,
            &[],
        );
        let (mut parts, ()) = http::Request::get("https://brand.example/page")
            .version(http::Version::HTTP_2)
            .header(
                "connection",
                "x-forwarded-for, accept-encoding, forwarded, upgrade",
            )
            .header("x-forwarded-for", "6.6.6.6")
            .header("accept-encoding", "gzip")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(())
            .unwrap()
            .into_parts();
        let token = HeaderValue::from_static("websocket");
        let seen = prepare_request(&mut parts, &conn, Some(&token), |parts| {
            // The page step sees the hop-by-hop strip and the joined cookies, not the
            // forwarding headers yet.
            let seen = (
                parts.headers.get("accept-encoding").cloned(),
                parts.headers["cookie"].clone(),
                parts.headers.contains_key("x-forwarded-for"),
                parts.headers["host"].clone(),
            );
            parts
                .headers
                .insert("accept-encoding", HeaderValue::from_static("identity"));
            seen
        });
        assert_eq!(
            seen,
            (
                None,
                HeaderValue::from_static("a=1; b=2"),
                false,
                HeaderValue::from_static("brand.example")
            )
        );
        let headers = &parts.headers;
        assert_eq!(headers["x-forwarded-for"], "192.0.2.1");
        assert_eq!(headers["x-forwarded-host"], "brand.example");
        assert_eq!(headers["accept-encoding"], "identity");
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert!(headers["forwarded"]
            .to_str()
            .unwrap()
            .starts_with("for=192.0.2.1"));
    }
}
