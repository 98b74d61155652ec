//! The app behind Tether in tests: records what reached it and answers by path.
//!
//! - `/echo...`: 200 with a JSON summary of the request (method, uri, version, headers, body size)
//! - `/chunked`: a body streamed in three chunks (no Content-Length)
//! - `/status/N`: an empty response with status N
//! - `/head`: Content-Length 1234 (for HEAD)
//! - `/hop`: a response carrying hop-by-hop and identity headers
//! - `/download?bytes=N`: N bytes streamed in 64 KiB chunks
//! - `/upload`: reads the whole body, answers its length
//! - `/slow?ms=N`: answers after N ms
//! - `/ws`: a WebSocket echo server
//! - `/page/sdk.html`, `/page/lp.html`: the browser checks of the LiveChat and LivePerson scripts
//! - `/whoami`: the identity probe: cookie `session=NAME` is logged in as NAME (with an email and a
//!   display name, and profile fields for LivePerson); `session=__500` answers 500, `session=__dup` sends two user values,
//!   `session=__slow` answers after 3 s; no session is 401
//! - `/api/me`: the app's own JSON "who am I" (`{"user": {"id", "email", "name"}}`) for
//!   `session=NAME`; `__int` has the id 42, `__float` 4.2, `__list` a list, `__null` a null
//!   user, `__missing` no user member, `__text` answers plain text, `__big` 100 KiB of JSON;
//!   no session is 401

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the app saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub version: http::Version,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = Self {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
        };
        let seen = backend.seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(answer(req, &seen).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        backend
    }

    /// Everything the app has seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request whose URI contains `needle`.
    pub fn last(&self, needle: &str) -> Seen {
        self.seen()
            .into_iter()
            .rev()
            .find(|s| s.uri.contains(needle))
            .unwrap_or_else(|| panic!("the app never saw a request for {needle}"))
    }

    pub fn count(&self, needle: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.uri.contains(needle))
            .count()
    }
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

fn query_number(req: &Request<Incoming>, key: &str) -> u64 {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn stream_of(chunks: impl Iterator<Item = Bytes> + Send + Sync + 'static) -> Body {
    let frames =
        futures_util::stream::iter(chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
    BodyExt::boxed(StreamBody::new(frames))
}

async fn answer(mut req: Request<Incoming>, seen: &Mutex<Vec<Seen>>) -> Response<Body> {
    let record = Seen {
        method: req.method().to_string(),
        uri: req.uri().to_string(),
        version: req.version(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    seen.lock().unwrap().push(record.clone());
    let path = req.uri().path().to_string();
    if path == "/ws" {
        return websocket_echo(&mut req);
    }
    if path == "/whoami" {
        return whoami(&req).await;
    }
    if path == "/api/me" {
        return api_me(&req);
    }
    if let Some(page) = path.strip_prefix("/page/") {
        return test_file("tests/pages", page, "text/html; charset=utf-8");
    }
    if path == "/vendor/customer-sdk.js" {
        // LiveChat's own customer SDK, installed from npm by .ci/run (tests/browser).
        return test_file(
            "tests/browser/node_modules/@livechat/customer-sdk/dist",
            "customer-sdk.js",
            "application/javascript; charset=utf-8",
        );
    }
    if let Some(status) = path.strip_prefix("/status/") {
        return full(status.parse().unwrap(), Bytes::new());
    }
    match path.as_str() {
        "/chunked" => {
            let chunks = ["alpha-", "beta-", "gamma"]
                .into_iter()
                .map(|s: &'static str| Bytes::from_static(s.as_bytes()));
            Response::new(stream_of(chunks))
        }
        "/head" => {
            let mut response = full(200, Bytes::new());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, "1234".parse().unwrap());
            response
        }
        "/hop" => {
            let mut response = full(200, "hop");
            let headers = response.headers_mut();
            headers.insert("connection", "x-internal-hop".parse().unwrap());
            headers.insert("x-internal-hop", "secret".parse().unwrap());
            headers.insert("keep-alive", "timeout=5".parse().unwrap());
            headers.insert("x-authenticated-user", "internal-42".parse().unwrap());
            headers.insert("x-app", "kept".parse().unwrap());
            response
        }
        "/download" => {
            let total = query_number(&req, "bytes");
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let mut left = total;
            let chunks = std::iter::from_fn(move || {
                let n = left.min(chunk.len() as u64);
                left -= n;
                (n > 0).then(|| chunk.slice(..n as usize))
            });
            let mut response = Response::new(stream_of(chunks));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, total.to_string().parse().unwrap());
            response
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut total: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => total += frame.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => return full(400, "broken body"),
                }
            }
            full(200, total.to_string())
        }
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(query_number(&req, "ms"))).await;
            full(200, "slow")
        }
        _ => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let summary = serde_json::json!({
                "method": record.method,
                "uri": record.uri,
                "version": format!("{:?}", record.version),
                "headers": record.headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut response = full(200, summary.to_string());
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
        }
    }
}

fn websocket_echo(req: &mut Request<Incoming>) -> Response<Body> {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    let Some(key) = req.headers().get("sec-websocket-key") else {
        return full(400, "not a websocket request");
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                break;
            }
            if socket.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut response = full(101, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, "upgrade".parse().unwrap());
    headers.insert(header::UPGRADE, "websocket".parse().unwrap());
    headers.insert("sec-websocket-accept", accept.parse().unwrap());
    response
}

fn session(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("session=").map(str::to_string))
}

/// A file of the repository's tests (a page, a vendor's script), or 404.
fn test_file(dir: &str, name: &str, content_type: &'static str) -> Response<Body> {
    let safe = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.');
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name);
    match std::fs::read(&path).ok().filter(|_| safe) {
        Some(bytes) => {
            let mut response = full(200, bytes);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            response
        }
        None => full(404, "no such test file"),
    }
}

fn api_me(req: &Request<Incoming>) -> Response<Body> {
    let Some(user) = session(req) else {
        return full(401, r#"{"error": "not signed in"}"#);
    };
    let body = match user.as_str() {
        "__int" => serde_json::json!({"user": {"id": 42, "email": "int@example.com"}}),
        "__float" => serde_json::json!({"user": {"id": 4.2}}),
        "__list" => serde_json::json!({"user": {"id": ["alice", "mallory"]}}),
        "__null" => serde_json::json!({"user": null}),
        "__missing" => serde_json::json!({"signed_in": false}),
        "__text" => return full(200, "alice"),
        "__big" => serde_json::json!({"user": {"id": "big", "pad": "x".repeat(100 * 1024)}}),
        _ => serde_json::json!({"user": {
            "id": user,
            "email": format!("{user}@example.com"),
            "name": format!("User {user}"),
        }}),
    };
    let mut response = full(200, body.to_string());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
}

async fn whoami(req: &Request<Incoming>) -> Response<Body> {
    let Some(user) = session(req) else {
        return full(401, "not logged in");
    };
    match user.as_str() {
        "__500" => return full(500, "broken"),
        "__slow" => tokio::time::sleep(std::time::Duration::from_secs(3)).await,
        _ => {}
    }
    let mut response = full(200, "ok");
    let headers = response.headers_mut();
    if user == "__dup" {
        headers.append("x-authenticated-user", "alice".parse().unwrap());
        headers.append("x-authenticated-user", "mallory".parse().unwrap());
        return response;
    }
    headers.insert("x-authenticated-user", user.parse().unwrap());
    headers.insert(
        "x-authenticated-email",
        format!("{user}@example.com").parse().unwrap(),
    );
    headers.insert(
        "x-authenticated-name",
        format!("User {user}").parse().unwrap(),
    );
    // Profile fields for LivePerson's claims and lp_sdes (mapped in tests via [identity.claims]).
    for (name, value) in [
        ("x-user-given-name", format!("Given-{user}")),
        ("x-user-phone", "+15550100".to_string()),
        ("x-user-gender", "female".to_string()),
        ("x-user-balance", "12.50".to_string()),
        ("x-user-since", "2020-05-17".to_string()),
        ("x-user-birth", "1990-11-23".to_string()),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    response
}
