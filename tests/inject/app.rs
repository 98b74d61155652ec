//! The app behind Tether for the injection tests: a legacy app with no Tether code in its pages.
//! It records the `Accept-Encoding` each request arrived with. (Shared with the memory test,
//! which uses only part of it.)
#![allow(dead_code)]

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

type Body = BoxBody<Bytes, Infallible>;

/// The page most tests use (with Content-Length).
pub const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title></head>\n<body><h1>Welcome</h1><p>Products</p></body></html>\n";

pub const MALFORMED: &[u8] = b"<html><head><title>x</title><scr<ipt>if (a < b && c > d) {}</script><div class=\"unclosed><p>caf\xc3\xa9 &nbsp &bogus; <!-- no end\n</head><body><table><td>cell</body>";

pub const NONCE: &str = "r4nd0mN0nce";

/// (path, Accept-Encoding) of every request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone, Default)]
pub struct App {
    pub addr: Option<SocketAddr>,
    seen: Seen,
}

impl App {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Self {
            addr: Some(listener.local_addr().unwrap()),
            seen: Arc::default(),
        };
        let seen = app.seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let accept = request
                            .headers()
                            .get(header::ACCEPT_ENCODING)
                            .map(|v| v.to_str().unwrap().to_string());
                        seen.lock()
                            .unwrap()
                            .push((request.uri().path().to_string(), accept));
                        async move { Ok::<_, Infallible>(answer(&request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        app
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.unwrap()
    }

    /// Requests the app got for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// The Accept-Encoding the last request for `path` arrived with.
    pub fn accept_encoding(&self, path: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        let (_, accept) = seen
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .expect("requested");
        accept.clone()
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    response
}

fn html(body: impl Into<Bytes>) -> Response<Body> {
    full(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn with(mut response: Response<Body>, name: &'static str, value: &str) -> Response<Body> {
    response.headers_mut().insert(name, value.parse().unwrap());
    response
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
    writer.write_all(data).unwrap();
    drop(writer);
    out
}

/// Deterministic bytes that are not text.
pub fn image() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn query<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn answer(request: &Request<Incoming>) -> Response<Body> {
    match request.uri().path() {
        "/page" | "/excluded/page" | "/elsewhere" => with(html(PAGE), "etag", "\"v1\""),
        "/chunked" => {
            let parts = [
                "<html><head><title>chunked</title>",
                "</he",
                "ad><body>streamed</body></html>",
            ];
            let frames = parts
                .into_iter()
                .map(|p| Ok::<_, Infallible>(Frame::data(Bytes::from_static(p.as_bytes()))));
            let mut response =
                Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            response
        }
        // Apps that compress whatever the client asked for.
        "/gzip-always" => with(html(gzip(PAGE.as_bytes())), "content-encoding", "gzip"),
        "/br-always" => with(html(brotli(PAGE.as_bytes())), "content-encoding", "br"),
        "/gzip-big" => with(
            html(gzip(big_gzip_page().as_bytes())),
            "content-encoding",
            "gzip",
        ),
        "/zstd-always" => with(html(&b"(zstd frame)"[..]), "content-encoding", "zstd"),
        "/csp-nonce" => with(
            html(PAGE),
            "content-security-policy",
            &format!("script-src 'nonce-{NONCE}' 'strict-dynamic'; object-src 'none'"),
        ),
        "/csp-self" => with(
            html(PAGE),
            "content-security-policy",
            "default-src 'self'; script-src 'self' https://cdn.livechatinc.com",
        ),
        "/csp-blocked" => with(
            html(PAGE),
            "content-security-policy",
            "script-src 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
        ),
        "/csp-report-only" => with(
            html(PAGE),
            "content-security-policy-report-only",
            "script-src 'none'",
        ),
        "/meta-csp-blocked" => html(PAGE.replace(
            "<title>",
            "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\"><title>",
        )),
        "/no-transform" => with(html(PAGE), "cache-control", "public, no-transform"),
        "/attachment" => with(
            html(PAGE),
            "content-disposition",
            "attachment; filename=page.html",
        ),
        "/utf16" => full(StatusCode::OK, "text/html; charset=utf-16", PAGE),
        "/malformed" => html(MALFORMED),
        "/image" => full(StatusCode::OK, "image/png", image()),
        "/json" => full(
            StatusCode::OK,
            "application/json",
            "{\"products\": [1, 2, 3]}",
        ),
        "/not-found" => full(StatusCode::NOT_FOUND, "text/html", PAGE),
        "/not-modified" => full(StatusCode::NOT_MODIFIED, "text/html", ""),
        "/big" => big_page(
            query(request, "mib")
                .and_then(|m| m.parse().ok())
                .unwrap_or(1),
        ),
        "/whoami" => match session(request) {
            Some(user) => {
                let response = with(
                    full(StatusCode::OK, "text/plain", "ok"),
                    "x-authenticated-user",
                    &user,
                );
                with(response, "x-authenticated-name", &user)
            }
            None => full(StatusCode::UNAUTHORIZED, "text/plain", "nobody"),
        },
        // The app's own JSON "who am I", and nothing else naming the user.
        "/api/me" => match session(request) {
            Some(user) => full(
                StatusCode::OK,
                "application/json",
                serde_json::json!({"me": {"login": user, "display": format!("User {user}")}})
                    .to_string(),
            ),
            None => full(StatusCode::UNAUTHORIZED, "application/json", "{}"),
        },
        "/login" => {
            let cookie = match query(request, "user") {
                None => None,
                Some("") => Some("session=; Path=/; Max-Age=0".to_string()),
                Some(user) => Some(format!(
                    "session={user}; Path=/; HttpOnly; Secure; SameSite=Lax"
                )),
            };
            let next = query(request, "next").unwrap_or("%2Fshop");
            let next = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
            let response = with(
                full(StatusCode::SEE_OTHER, "text/plain", ""),
                "location",
                &next,
            );
            match cookie {
                Some(cookie) => with(response, "set-cookie", &cookie),
                None => response,
            }
        }
        "/start" => html(START),
        // `?identify=1`: the app names the signed-in user on its pages too, as some do.
        "/spa" => match (query(request, "identify"), session(request)) {
            (Some(_), Some(user)) => with(html(SPA), "x-authenticated-user", &user),
            _ => html(SPA),
        },
        "/with-livechat-snippet" => html(SPA.replace(
            "<!-- the page's own -->",
            &livechat_snippet(query(request, "widget").unwrap_or("")),
        )),
        "/with-liveperson-snippet" => html(SPA.replace(
            "<!-- the page's own -->",
            &liveperson_snippet(query(request, "tag").unwrap_or("")),
        )),
        "/shop" => shop(request),
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

fn session(request: &Request<Incoming>) -> Option<String> {
    let cookies = request.headers().get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|pair| pair.trim().strip_prefix("session="))
        .filter(|user| !user.is_empty())
        .map(str::to_string)
}

/// The browser tests' plan: `/start#[{"login": "alice", "page": "/shop?..."}, ...]` keeps the
/// steps in sessionStorage (the tab's own) and walks them; `login` "" logs out, no `login`
/// keeps the session. Every step goes through `/login`'s redirect. Headless Chromium under
/// virtual time stalled on a plan's second page when the session did not change (the page's
/// requests all completed in its network log, but the document never finished); plans that log
/// in at each step, and single-page plans, run.
const START: &str = r#"<!doctype html><html><head><title>start</title></head><body><script>
sessionStorage.setItem("plan", decodeURIComponent(location.hash.slice(1)));
sessionStorage.setItem("results", "[]");
next();
function next() {
  var plan = JSON.parse(sessionStorage.getItem("plan"));
  var step = plan[0], user = "login" in step ? "user=" + step.login + "&" : "";
  location.href = "/login?" + user + "next=" + encodeURIComponent(step.page);
}
</script></body></html>"#;

/// The app's shop page: no Tether code. Its own script (the test's harness, app code) waits
/// for the stand-in widgets' bubbles, records them, and goes on with the plan.
fn shop(request: &Request<Incoming>) -> Response<Body> {
    let csp_nonce = query(request, "csp") == Some("nonce");
    let nonce = if csp_nonce {
        format!(" nonce=\"{NONCE}\"")
    } else {
        String::new()
    };
    // `pad=1`: 200 KB of catalogue after the head, so a gzipped page is spliced with a long
    // tail of the app's own bytes.
    let pad = if query(request, "pad") == Some("1") {
        catalogue(200_000)
    } else {
        String::new()
    };
    let page = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1><div hidden>{pad}</div><pre id="result"></pre><script{nonce}>
var seen = function (id) {{ var el = document.getElementById(id); return el && el.getAttribute("data-state"); }};
var tries = 0;
var timer = setInterval(function () {{
  tries++;
  var lc = seen("sandbox-livechat"), lp = seen("sandbox-liveperson");
  if ((!lc || !lp) && tries < 150) return;
  clearInterval(timer);
  var results = JSON.parse(sessionStorage.getItem("results") || "[]");
  var chat = window.__sandboxLiveChat || {{}}, person = window.__sandboxLivePerson || {{}};
  results.push({{ page: location.pathname + location.search, livechat: lc, entity: chat.entity || null,
    tokens: (chat.tokens || []).map(function (t) {{ return t.accessToken; }}),
    liveperson: lp, sub: person.sub || null,
    injected: !!document.querySelector("script[src$='/inject/loader.js']") }});
  sessionStorage.setItem("results", JSON.stringify(results));
  var plan = JSON.parse(sessionStorage.getItem("plan") || "[]");
  plan.shift();
  sessionStorage.setItem("plan", JSON.stringify(plan));
  if (plan.length) {{
    var step = plan[0], user = "login" in step ? "user=" + step.login + "&" : "";
    location.href = "/login?" + user + "next=" + encodeURIComponent(step.page);
  }} else {{
    document.getElementById("result").textContent = JSON.stringify(results);
  }}
}}, 40);
</script></body></html>"#
    );
    let mut response = html(page);
    if csp_nonce {
        response = with(
            response,
            "content-security-policy",
            &format!("script-src 'nonce-{NONCE}' 'strict-dynamic'; object-src 'none'"),
        );
    }
    match query(request, "encode") {
        Some("gzip") => with(html_with(response, gzip), "content-encoding", "gzip"),
        Some("br") => with(html_with(response, brotli), "content-encoding", "br"),
        _ => response,
    }
}

/// A 150 KB page with a short head.
pub fn big_gzip_page() -> String {
    format!(
        "<!doctype html><html><head><title>big</title></head><body>{}</body></html>",
        catalogue(150_000)
    )
}

/// Product lines, varied enough that a compressor makes matches of every distance.
fn catalogue(len: usize) -> String {
    let mut out = String::with_capacity(len + 100);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(&format!(
            "<p class=\"item\">Item {} <a href=\"/shop/{}\">{}</a></p>\n",
            state % 1000,
            state >> 50,
            ["tea", "coffee", "cocoa", "juice"][(state >> 20) as usize % 4]
        ));
    }
    out
}

/// The same response with its (complete) body encoded.
fn html_with(response: Response<Body>, encode: fn(&[u8]) -> Vec<u8>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = futures_util::FutureExt::now_or_never(body.collect())
        .expect("a full body")
        .expect("infallible")
        .to_bytes();
    Response::from_parts(parts, Full::new(Bytes::from(encode(&bytes))).boxed())
}

const BIG_HEAD: &[u8] = b"<!doctype html><html><head><title>big</title></head><body>\n";
const BIG_TAIL: &[u8] = b"</body></html>\n";

fn big_chunk() -> Bytes {
    Bytes::from("<p>A long catalogue line, repeated to make a large page.</p>\n".repeat(1040))
}

/// The length of `/big?mib=N`.
pub fn big_page_len(mib: usize) -> usize {
    let chunk = big_chunk().len();
    BIG_HEAD.len() + (mib << 20) / chunk * chunk + BIG_TAIL.len()
}

/// `mib` MiB of HTML, generated as it streams (the app holds 64 KiB at a time).
fn big_page(mib: usize) -> Response<Body> {
    let chunk = big_chunk();
    let chunks = (mib << 20) / chunk.len();
    let head = Bytes::from_static(BIG_HEAD);
    let tail = Bytes::from_static(BIG_TAIL);
    let frames = std::iter::once(head)
        .chain(std::iter::repeat_n(chunk, chunks))
        .chain(std::iter::once(tail))
        .map(|data| Ok::<_, Infallible>(Frame::data(data)));
    let mut response = Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/html; charset=utf-8".parse().unwrap(),
    );
    response
}

/// A single-page app's shell. Its own script runs right after Tether's tag (which goes before
/// `</head>`) and uses LiveChat's widget API at once, as page code may.
const SPA: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>App</title></head>
<body><div id="app">app</div><script>
window.pageSaw = { api: typeof LiveChatWidget === "object" && typeof LiveChatWidget.call === "function",
  account: !!(window.__lc && (window.__lc.license || window.__lc.organizationId)) };
try { LiveChatWidget.on("ready", function () {}); LiveChatWidget.call("hide"); window.pageSaw.queue = true; }
catch (e) { window.pageSaw.queue = String(e); }
</script><!-- the page's own --></body></html>"#;

/// The page's own copy of LiveChat's snippet (written for these tests: the queue, and init()
/// loading the widget unless `__lc.asyncInit`), after Tether's tag.
fn livechat_snippet(widget: &str) -> String {
    let widget = percent_encoding::percent_decode_str(widget).decode_utf8_lossy();
    format!(
        r#"<script>window.__lc = window.__lc || {{}}; window.__lc.license = 12345;
(function (n, t) {{
  var e = {{ _q: [], _h: null, _v: "2.0",
    call: function () {{ var a = ["call", [].slice.call(arguments)]; return e._h ? e._h.apply(null, a) : e._q.push(a); }},
    init: function () {{ var s = t.createElement("script"); s.async = true; s.src = "{widget}"; t.head.appendChild(s); }} }};
  if (!n.__lc.asyncInit) e.init();
  n.LiveChatWidget = n.LiveChatWidget || e;
}})(window, document);</script>"#
    )
}

/// The page's own LivePerson bootstrap (written for these tests: an lpTag with `_tagCount`
/// whose init loads the tag), after Tether's tag.
fn liveperson_snippet(tag: &str) -> String {
    let tag = percent_encoding::percent_decode_str(tag).decode_utf8_lossy();
    format!(
        r#"<script>window.lpTag = window.lpTag || {{}};
if (typeof lpTag._tagCount === "undefined") {{
  var kept = lpTag.identities || [];
  window.lpTag = {{ site: "12345678", _tagCount: 1, identities: kept, isDom: false,
    events: {{ bind: function () {{}}, trigger: function () {{}} }},
    defer: function (fn, k) {{ (this._defL = this._defL || []).push(fn); }},
    start: function () {{ this.autoStart = true; }} }};
  document.addEventListener("DOMContentLoaded", function () {{
    lpTag.isDom = true; lpTag.events.trigger("LPT", "DOM_READY", {{}}); }});
  var s = document.createElement("script"); s.src = "{tag}"; document.head.appendChild(s);
}} else {{ lpTag._tagCount += 1; }}</script>"#
    )
}
