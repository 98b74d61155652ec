//! The fixed app used by scripts/bench.sh: answers every request with a 13-byte body, the
//! identity probe at /whoami (cookie `session=NAME`), and for the injection benchmark a 100 KiB
//! HTML page at any path ending in `/page.html`: gzip (level 6, compressed once, like nginx's
//! gzip_static) when the request accepts gzip, plain otherwise; `/dynamic/page.html` compresses
//! per request instead, like an app's compression middleware.
//! Usage: bench_backend ADDR   (e.g. 127.0.0.1:18080)

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req| async move { Ok::<_, Infallible>(answer(&req)) });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[path = "support/shop_page.rs"]
mod shop_page;

/// 100 KiB of a product listing, plain and gzipped.
fn pages() -> &'static (Bytes, Bytes) {
    static PAGES: std::sync::OnceLock<(Bytes, Bytes)> = std::sync::OnceLock::new();
    PAGES.get_or_init(|| {
        let page = shop_page::shop_page();
        let gzip = gzip(page.as_bytes());
        (Bytes::from(page), Bytes::from(gzip))
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn page<B>(req: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
    let accepts_gzip = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let (plain, gzipped) = pages();
    let body = match (accepts_gzip, req.uri().path().contains("/dynamic/")) {
        (false, _) => plain.clone(),
        (true, false) => gzipped.clone(),
        (true, true) => Bytes::from(gzip(plain)),
    };
    let mut response = hyper::Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
    headers.insert("vary", "Accept-Encoding".parse().unwrap());
    if accepts_gzip {
        headers.insert("content-encoding", "gzip".parse().unwrap());
    }
    response
}

fn answer<B>(req: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
    if req.uri().path().ends_with("/page.html") {
        return page(req);
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"Hello, world!")));
    let headers = response.headers_mut();
    headers.insert("content-type", "text/plain".parse().unwrap());
    // The identity probe: cookie `session=NAME` is logged in as NAME.
    if req.uri().path() == "/whoami" {
        let user = req
            .headers()
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("session=")))
            .and_then(|u| u.parse().ok());
        match user {
            Some(user) => {
                headers.insert("x-authenticated-user", user);
            }
            None => *response.status_mut() = hyper::StatusCode::UNAUTHORIZED,
        }
    }
    response
}
