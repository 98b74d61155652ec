//! The fixed app used by scripts/bench.sh: answers every request with a 13-byte body, and the
//! identity probe at /whoami (cookie `session=NAME`).
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

fn answer<B>(req: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
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
