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

/// Header values that HPACK cannot shrink much, so the encoded block is as large as the list.
fn noisy(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 62) as usize])
        })
        .collect()
}

#[tokio::test]
async fn h2_header_lists_over_the_limit_get_431_not_a_reset() {
    // The default limit (64 KiB); Tether advertises four times that so clients send the request.
    let (certs, backend, tether) = setup(|_| {}).await;
    let client = certs.client();
    let one_big = client
        .get(format!("{}/echo/one", tether.https))
        .header("x-big", noisy(70_000, 1));
    let mut many = client.get(format!("{}/echo/many", tether.https));
    for i in 0..30 {
        many = many.header(format!("x-h{i}"), noisy(5_000, i + 2));
    }
    // Over the advertised size too: h2 itself answers 431 for it.
    let huge = client
        .get(format!("{}/echo/huge", tether.https))
        .header("x-big", noisy(400_000, 99));
    for request in [one_big, many, huge] {
        let response = request.send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 431);
    }
    // The connection survives and a normal request on it is served.
    let fine = client
        .get(format!("{}/echo/fine", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    let forwarded =
        backend.count("/echo/one") + backend.count("/echo/many") + backend.count("/echo/huge");
    assert_eq!(forwarded, 0);
    let refused = "tether_requests_refused_total{reason=\"headers_too_large\"}";
    assert_eq!(tether.metric(refused).await, 2);
}

const SMUGGLE: &str = "POST /echo/smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
                       Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo/hidden HTTP/1.1\r\n\
                       Host: localhost\r\n\r\n";

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_closed() {
    let (certs, backend, tether) = setup(|_| {}).await;
    // Alone, in either order.
    let te_first = SMUGGLE.replace(
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "transfer-encoding: chunked\r\ncontent-length: 4",
    );
    for request in [SMUGGLE, te_first.as_str()] {
        let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
        assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
        assert!(raw.contains("connection: close"), "{raw}");
        assert!(raw.contains("ambiguous_request_length"), "{raw}");
        assert_eq!(
            raw.matches("HTTP/1.1 ").count(),
            1,
            "served after it: {raw}"
        );
    }
    // After requests of every framing on one connection: those are served, it is refused.
    let looks_like_a_head = "Content-Length: 9\r\n\r\n";
    let stream = format!(
        "GET /echo/first HTTP/1.1\r\nHost: localhost\r\n\r\n\
         POST /echo/second HTTP/1.1\r\nHost: localhost\r\nContent-Length: 26\r\n\r\n\
         Transfer-Encoding: chunked\
         POST /echo/third HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x};ext=1\r\n{looks_like_a_head}\r\n0\r\n\r\n{SMUGGLE}",
        looks_like_a_head.len()
    );
    let raw = raw_exchange(&certs, tether.tls_addr, stream.as_bytes()).await;
    // Status lines (the echoed bodies do not end in a newline, and name the version too).
    let statuses: Vec<&str> = raw
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &raw[at + 9..at + 12])
        .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(statuses, ["200", "200", "200", "400"], "{raw}");
    assert_eq!(backend.count("/echo/third"), 1);
    assert_eq!(
        backend.count("/echo/smuggle") + backend.count("/echo/hidden"),
        0
    );
    let refused = "tether_requests_refused_total{reason=\"ambiguous_length\"}";
    assert_eq!(tether.metric(refused).await, 3);
}
