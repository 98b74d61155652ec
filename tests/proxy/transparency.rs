//! Everything not under the reserved prefix reaches the app as if Tether were not there, except
//! for the deliberate changes in docs/proxy.md (hop-by-hop removal, X-Forwarded-*).

use crate::support::backend::Backend;
use crate::support::*;

async fn setup() -> (TestCerts, Backend, TestTether) {
    start_app_and_tether(|_| {}).await
}

fn head_and_body(raw: &str) -> (String, String) {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    (head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn path_and_query_are_forwarded_byte_for_byte() {
    let (certs, backend, tether) = setup().await;
    let path = "/echo/a%2Fb/%7Euser/..%2F?x=1&y=%20&z=%E2%82%AC";
    let response = certs
        .client()
        .get(format!("{}{path}", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(backend.last("/echo/a").uri, path);
}

#[tokio::test]
async fn forwarded_headers_are_set_and_client_values_overwritten() {
    let (certs, backend, tether) = setup().await;
    let response = certs
        .client()
        .get(format!("{}/echo/fwd", tether.https))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-port", "1")
        .header("x-real-ip", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6;proto=http")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = backend.last("/echo/fwd");
    assert_eq!(
        seen.all("x-real-ip"),
        ["127.0.0.1"],
        "untrusted X-Real-IP replaced"
    );
    let port = tether.tls_addr.port().to_string();
    assert_eq!(
        seen.all("x-forwarded-for"),
        ["127.0.0.1"],
        "untrusted chain replaced"
    );
    assert_eq!(seen.all("x-forwarded-proto"), ["https"]);
    assert_eq!(seen.all("x-forwarded-port"), [port.as_str()]);
    assert_eq!(
        seen.all("x-forwarded-host"),
        [format!("localhost:{port}").as_str()]
    );
    assert_eq!(
        seen.header("host"),
        Some(format!("localhost:{port}").as_str()),
        "Host passes through"
    );
    assert_eq!(
        seen.all("forwarded"),
        [format!("for=127.0.0.1;host=\"localhost:{port}\";proto=https").as_str()],
        "untrusted Forwarded replaced"
    );
}

#[tokio::test]
async fn trusted_proxy_chain_is_extended() {
    let (certs, backend, tether) =
        start_app_and_tether(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()])
            .await;
    certs
        .client()
        .get(format!("{}/echo/chain", tether.https))
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
        .header("x-real-ip", "203.0.113.7")
        .header("forwarded", "for=203.0.113.7")
        .send()
        .await
        .unwrap();
    let seen = backend.last("/echo/chain");
    assert_eq!(
        seen.all("x-forwarded-for"),
        ["203.0.113.7, 10.0.0.1, 127.0.0.1"]
    );
    assert_eq!(
        seen.all("x-real-ip"),
        ["203.0.113.7"],
        "a trusted proxy's is kept"
    );
    let port = tether.tls_addr.port();
    assert_eq!(
        seen.all("forwarded"),
        [
            format!("for=203.0.113.7, for=127.0.0.1;host=\"localhost:{port}\";proto=https")
                .as_str()
        ]
    );
}

#[tokio::test]
async fn hop_by_hop_and_connection_listed_headers_are_removed() {
    let (certs, backend, tether) = setup().await;
    let request = "GET /echo/hop HTTP/1.1\r\nHost: localhost\r\n\
        Connection: close, x-drop-me, x-forwarded-for, x-forwarded-proto\r\n\
        X-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\n\
        Proxy-Connection: keep-alive\r\nTE: gzip\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n";
    let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let seen = backend.last("/echo/hop");
    for gone in [
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "upgrade",
        "connection",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} reached the app");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
    // Connection cannot remove the headers Tether manages: it strips first, then adds its own.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test]
async fn te_trailers_survives() {
    let (certs, backend, tether) = setup().await;
    let request =
        "GET /echo/te HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\nConnection: close, te\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    // Listed in Connection, so it is removed like any other listed header.
    assert_eq!(backend.last("/echo/te").header("te"), None);
    let request =
        "GET /echo/te2 HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\nConnection: close\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert_eq!(backend.last("/echo/te2").header("te"), Some("trailers"));
}

#[tokio::test]
async fn content_length_and_chunked_request_bodies_keep_their_framing() {
    let (certs, backend, tether) = setup().await;
    let fixed = "POST /echo/cl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let raw = raw_exchange(&certs, tether.tls_addr, fixed.as_bytes()).await;
    assert!(raw.contains("\"body\":\"hello\""), "{raw}");
    let seen = backend.last("/echo/cl");
    assert_eq!(seen.header("content-length"), Some("5"));
    assert_eq!(seen.header("transfer-encoding"), None);

    let chunked = "POST /echo/te HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
    let raw = raw_exchange(&certs, tether.tls_addr, chunked.as_bytes()).await;
    assert!(raw.contains("\"body\":\"hello\""), "{raw}");
    let seen = backend.last("/echo/te");
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    assert_eq!(seen.header("content-length"), None);

    // A GET may carry a body too (RFC 9110 9.3.1 gives it no meaning, the app may): it is
    // forwarded, not dropped (hyper's client alone would send the GET without it).
    let get = "GET /echo/get HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        5\r\nhello\r\n0\r\n\r\n";
    let raw = raw_exchange(&certs, tether.tls_addr, get.as_bytes()).await;
    assert!(raw.contains("\"body\":\"hello\""), "{raw}");
    assert_eq!(
        backend.last("/echo/get").header("transfer-encoding"),
        Some("chunked")
    );

    let empty = "POST /echo/zero HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    raw_exchange(&certs, tether.tls_addr, empty.as_bytes()).await;
    assert_eq!(
        backend.last("/echo/zero").header("content-length"),
        Some("0")
    );
}

#[tokio::test]
async fn smuggling_attempt_with_both_framings_is_not_forwarded_ambiguously() {
    let (certs, backend, tether) = setup().await;
    let request = "POST /echo/smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
    assert_eq!(
        backend.count("/echo/smuggled"),
        0,
        "a smuggled request reached the app: {raw}"
    );
    for seen in backend.seen().iter().filter(|s| s.uri.contains("smuggle")) {
        assert!(
            seen.header("content-length").is_none() || seen.header("transfer-encoding").is_none(),
            "both framings forwarded: {seen:?}"
        );
    }
}

#[tokio::test]
async fn chunked_response_stays_chunked() {
    let (certs, _backend, tether) = setup().await;
    let raw = raw_exchange(
        &certs,
        tether.tls_addr,
        b"GET /chunked HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = head_and_body(&raw);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    let decoded: String = body
        .split("\r\n")
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(decoded, "alpha-beta-gamma");
}

#[tokio::test]
async fn bodyless_responses_gain_no_body() {
    let (certs, _backend, tether) = setup().await;
    let raw = raw_exchange(
        &certs,
        tether.tls_addr,
        b"HEAD /head HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = head_and_body(&raw);
    assert!(head.contains("content-length: 1234"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body, "");
    for status in ["204", "304"] {
        let request = format!(
            "GET /status/{status} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        );
        let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
        let (head, body) = head_and_body(&raw);
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(body, "", "{status} carried a body");
    }
}

#[tokio::test]
async fn http10_clients_work_with_and_without_host() {
    let (certs, backend, tether) = setup().await;
    let raw = raw_exchange(&certs, tether.tls_addr, b"GET /echo/ten HTTP/1.0\r\n\r\n").await;
    assert!(
        raw.starts_with("HTTP/1.0 200") || raw.starts_with("HTTP/1.1 200"),
        "{raw}"
    );
    assert!(raw.contains("/echo/ten"), "{raw}");
    let raw = raw_exchange(
        &certs,
        tether.tls_addr,
        b"GET /echo/ten-host HTTP/1.0\r\nHost: app.example\r\n\r\n",
    )
    .await;
    assert!(raw.contains("/echo/ten-host"), "{raw}");
    assert_eq!(
        backend.last("/echo/ten-host").header("host"),
        Some("app.example")
    );
    // A streamed (chunked) app response reaches an HTTP/1.0 client delimited by close.
    let raw = raw_exchange(&certs, tether.tls_addr, b"GET /chunked HTTP/1.0\r\n\r\n").await;
    let (head, body) = head_and_body(&raw);
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body, "alpha-beta-gamma");
}

#[tokio::test]
async fn absolute_form_request_uses_its_authority() {
    let (certs, backend, tether) = setup().await;
    let request = b"GET http://app.example/echo/abs?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n";
    let raw = raw_exchange(&certs, tether.tls_addr, request).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let seen = backend.last("/echo/abs");
    assert_eq!(seen.uri, "/echo/abs?q=1");
    assert_eq!(seen.header("host"), Some("app.example"));
}

#[tokio::test]
async fn response_hop_by_hop_and_identity_headers_are_removed() {
    let (certs, _backend, tether) = setup().await;
    let response = certs
        .client()
        .get(format!("{}/hop", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers.get("x-app").unwrap(), "kept");
    for gone in ["x-internal-hop", "keep-alive", "x-authenticated-user"] {
        assert!(headers.get(gone).is_none(), "{gone} reached the client");
    }
}

#[tokio::test]
async fn response_ended_by_eof_is_delivered_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-the-end")
                    .await;
                // Closing the connection ends the body.
            });
        }
    });
    let certs = TestCerts::new();
    let tether = TestTether::start(config_for(app, &certs)).await;
    let response = certs
        .client()
        .get(format!("{}/eof", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "until-the-end");
}

#[tokio::test]
async fn reserved_prefix_is_never_forwarded() {
    let (certs, backend, tether) = setup().await;
    let client = certs.client();
    let raw = raw_exchange(
        &certs,
        tether.tls_addr,
        b"GET /.tether/../echo HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
    for path in ["/.tether", "/.tether/", "/.tether/livechat/token"] {
        let response = client
            .get(format!("{}{path}", tether.https))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.text().await.unwrap(), r#"{"error":"not_found"}"#);
    }
    for path in [
        "/%2Etether/x",
        "/%2etether",
        "/echo/../.tether/x",
        "//.tether/x",
        "/./.tether",
        "/%252Etether",
        "/.tether;x/livechat/token",
        "/.TETHER/livechat/token",
    ] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let raw = raw_exchange(&certs, tether.tls_addr, request.as_bytes()).await;
        assert!(raw.starts_with("HTTP/1.1 400"), "{path}: {raw}");
    }
    assert!(
        backend.seen().iter().all(|s| !s.uri.contains("tether")),
        "{:?}",
        backend.seen()
    );
    let response = client
        .get(format!("{}/.tetherish", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a mere lookalike is the app's");
    assert!(tether
        .metrics()
        .await
        .contains("tether_reserved_path_rejections_total 8"));
}

#[tokio::test]
async fn plain_listener_forwards_with_http_proto() {
    let (_certs, backend, tether) = setup().await;
    let response = reqwest::get(format!("{}/echo/plain", tether.http))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        backend.last("/echo/plain").header("x-forwarded-proto"),
        Some("http")
    );
}
