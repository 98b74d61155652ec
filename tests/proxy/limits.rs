//! Limits answer with the right status codes, and slow or silent clients are cut off.

use crate::support::backend::Backend;
use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup(configure: impl FnOnce(&mut tether::Config)) -> (TestCerts, Backend, TestTether) {
    start_app_and_tether(configure).await
}

#[tokio::test]
async fn oversized_or_too_many_headers_get_431() {
    let (certs, backend, tether) = setup(|c| {
        c.limits.max_header_bytes = 16 * 1024;
        c.limits.max_headers = 20;
    })
    .await;
    let big = format!(
        "GET /echo/big HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let raw = raw_exchange(&certs, tether.tls_addr, big.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /echo/many HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
    assert_eq!(backend.count("/echo/big") + backend.count("/echo/many"), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (certs, backend, tether) = setup(|c| c.limits.max_body_bytes = 1000).await;
    let client = certs.client();
    let declared = client
        .post(format!("{}/upload", tether.https))
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert_eq!(
        backend.count("/upload"),
        0,
        "a declared oversize body must not reach the app"
    );
    let fits = client
        .post(format!("{}/upload", tether.https))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(fits.text().await.unwrap(), "1000");
    // A chunked body is counted while it streams.
    let chunks =
        futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 400])));
    let streamed = client
        .post(format!("{}/upload", tether.https))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn slow_header_senders_are_disconnected() {
    let (certs, _backend, tether) =
        setup(|c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = tls_connect(&certs, tether.tls_addr, &[b"http/1.1"]).await;
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a slowloris connection stayed open");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let (certs, _backend, tether) =
        setup(|c| c.limits.idle_timeout = Duration::from_millis(300)).await;
    let mut stream = tls_connect(&certs, tether.tls_addr, &[b"http/1.1"]).await;
    stream
        .write_all(b"GET /echo/idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "an idle keep-alive connection stayed open");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn unreachable_app_is_502_and_slow_app_is_504() {
    let certs = TestCerts::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tether = TestTether::start(config_for(closed, &certs)).await;
    let response = certs
        .client()
        .get(format!("{}/x", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"upstream_unavailable"}"#
    );

    let (certs, _backend, tether) =
        setup(|c| c.upstream.response_header_timeout = Duration::from_millis(200)).await;
    let response = certs
        .client()
        .get(format!("{}/slow?ms=3000", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let metrics = tether.metrics().await;
    assert!(
        metrics.contains(r#"tether_upstream_failures_total{kind="timeout"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn max_connections_holds_new_clients_back() {
    let (certs, _backend, tether) = setup(|c| c.limits.max_connections = 1).await;
    let mut first = tls_connect(&certs, tether.tls_addr, &[b"http/1.1"]).await;
    // The second TCP connection is accepted by the kernel but not served while the first is open.
    let connector = tokio_rustls::TlsConnector::from(certs.rustls_client(&[b"http/1.1"]));
    let tcp = tokio::net::TcpStream::connect(tether.tls_addr)
        .await
        .unwrap();
    let second = connector.connect("localhost".try_into().unwrap(), tcp);
    tokio::pin!(second);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut second)
            .await
            .is_err(),
        "a connection beyond max_connections was served"
    );
    first
        .write_all(b"GET /echo HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    first.read_to_end(&mut buf).await.unwrap();
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), second).await;
    let mut second = second
        .expect("the waiting connection was never served")
        .expect("handshake");
    second
        .write_all(b"GET /echo HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    second.read_to_end(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"));
    // Past the limit, accepting resumes: many clients one after another are all served.
    let client = certs
        .client_builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for i in 0..20 {
        let response = client
            .get(format!("{}/echo/after{i}", tether.https))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_port_already_served_is_an_error() {
    let (certs, backend, tether) = setup(|_| {}).await;
    let mut config = config_for(backend.addr, &certs);
    config.server.listen = tether.tls_addr;
    match tether::start(config).await {
        Err(tether::StartError::Bind { addr, .. }) => assert_eq!(addr, tether.tls_addr),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a second Tether shared the port"),
    }
}

#[tokio::test]
async fn response_header_timeout_starts_after_the_request_body() {
    let (certs, _backend, tether) =
        setup(|c| c.upstream.response_header_timeout = Duration::from_millis(300)).await;
    // The upload takes about 1 s, several response-header timeouts, and must still succeed.
    let chunks = futures_util::stream::unfold(0, |n| async move {
        if n == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(vec![b'x'; 1000]), n + 1))
    });
    let response = certs
        .client()
        .post(format!("{}/upload", tether.https))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "10000");
}

#[tokio::test]
async fn a_client_stalled_mid_body_is_cut_off() {
    let (certs, _backend, tether) =
        setup(|c| c.limits.idle_timeout = Duration::from_millis(300)).await;
    let mut stream = tls_connect(&certs, tether.tls_addr, &[b"http/1.1"]).await;
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly ten b",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a stalled upload kept its connection open");
}
