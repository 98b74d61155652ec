//! What happens to each kind of response (no browser).

use crate::app::{self, PAGE};
use crate::{injected, World, TAG};
use sha2::{Digest, Sha256};
use std::io::Read;

fn gunzip(data: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(data)
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn unbrotli(data: &[u8]) -> String {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &data[..], &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn pages_get_the_loader_and_the_app_is_asked_for_them_uncompressed() {
    let world = World::start(|_| {}).await;
    let response = world.navigate("/page", "identity").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers.get("content-length").is_none());
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(headers["etag"], "W/\"v1\"");
    assert_eq!(headers["vary"], "Accept-Encoding");
    assert_eq!(response.text().await.unwrap(), injected(PAGE));
    assert_eq!(
        world.app.accept_encoding("/page").as_deref(),
        Some("identity")
    );

    // Chunked pages too, with `</head>` split across chunks.
    let response = world.navigate("/chunked", "identity").await;
    assert_eq!(
        response.text().await.unwrap(),
        injected("<html><head><title>chunked</title></head><body>streamed</body></html>")
    );
    assert_eq!(world.tether.metric("tether_inject_pages_total").await, 2);
}

#[tokio::test]
async fn compressed_for_the_client_whatever_the_app_sends() {
    let world = World::start(|_| {}).await;
    let browser = "gzip, deflate, br, zstd";
    for path in ["/page", "/gzip-always", "/br-always"] {
        let response = world.navigate(path, browser).await;
        assert_eq!(response.headers()["content-encoding"], "gzip", "{path}");
        let body = response.bytes().await.unwrap();
        assert_eq!(gunzip(&body), injected(PAGE), "{path}");
    }
    let response = world.navigate("/page", "br").await;
    assert_eq!(response.headers()["content-encoding"], "br");
    assert_eq!(unbrotli(&response.bytes().await.unwrap()), injected(PAGE));
    // A coding Tether cannot undo: passed as it came, counted.
    let response = world.navigate("/zstd-always", browser).await;
    assert_eq!(response.headers()["content-encoding"], "zstd");
    assert_eq!(&response.bytes().await.unwrap()[..], b"(zstd frame)");
    assert_eq!(world.skipped("encoding").await, 1);
}

#[tokio::test]
async fn a_gzipped_page_is_spliced_not_compressed_again() {
    let world = World::start(|_| {}).await;
    let page = app::big_gzip_page();
    let apps = app::gzip(page.as_bytes());
    let response = world.navigate("/gzip-big", "gzip, br").await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response.bytes().await.unwrap();
    assert_eq!(gunzip(&body), injected(&page));
    // Past the first window after the head, the stream is the app's own bytes (the trailer
    // aside, corrected for the tag); re-compressing would have changed them all.
    let copied = apps.len() * 3 / 4;
    assert_eq!(
        body[body.len() - copied..body.len() - 8],
        apps[apps.len() - copied..apps.len() - 8]
    );
    assert_eq!(world.tether.metric("tether_inject_pages_total").await, 1);
}

#[tokio::test]
async fn app_encoding_gzip_asks_the_app_for_gzip_when_the_client_takes_it() {
    let world = World::start(|config| {
        config.inject.app_encoding = tether::config::AppEncoding::Gzip;
    })
    .await;
    world.navigate("/page", "gzip, br").await;
    assert_eq!(world.app.accept_encoding("/page").as_deref(), Some("gzip"));
    world.navigate("/page", "br").await;
    assert_eq!(
        world.app.accept_encoding("/page").as_deref(),
        Some("identity")
    );
}

async fn sha256(response: reqwest::Response) -> Vec<u8> {
    Sha256::digest(response.bytes().await.unwrap()).to_vec()
}

#[tokio::test]
async fn everything_else_passes_byte_for_byte() {
    let world = World::start(|config| config.inject.paths = vec!["/".into()]).await;
    let client = world.certs.client();
    let url = |path: &str| format!("{}{path}", world.tether.https);
    let page_hash = Sha256::digest(PAGE.as_bytes()).to_vec();

    // Not navigations: fetches, frames, API calls, POST; and HEAD.
    let not_navigations = [
        (reqwest::Method::GET, "sec-fetch-dest", "empty"),
        (reqwest::Method::GET, "sec-fetch-dest", "iframe"),
        (reqwest::Method::GET, "accept", "application/json"),
        (reqwest::Method::POST, "accept", "text/html"),
    ];
    for (method, name, value) in not_navigations {
        let response = client
            .request(method.clone(), url("/page"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            sha256(response).await,
            page_hash,
            "{method} {name}: {value}"
        );
    }
    let head = client
        .head(url("/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], PAGE.len().to_string());

    // Navigations whose answers are not pages to touch.
    let image = world.navigate("/image", "identity").await;
    assert_eq!(image.headers()["content-length"], "100000");
    assert_eq!(sha256(image).await, Sha256::digest(app::image()).to_vec());
    for (path, status) in [("/not-found", 404), ("/not-modified", 304)] {
        let response = world.navigate(path, "identity").await;
        assert_eq!(response.status(), status);
        let body = response.bytes().await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains(TAG), "{path}");
    }
    let excluded = world.navigate("/excluded/page", "identity").await;
    assert_eq!(sha256(excluded).await, page_hash);
    for (path, reason) in [
        ("/no-transform", "no_transform"),
        ("/attachment", "attachment"),
    ] {
        let response = world.navigate(path, "gzip").await;
        assert!(
            response.headers().get("content-encoding").is_none(),
            "{path}"
        );
        assert_eq!(sha256(response).await, page_hash, "{path}");
        assert_eq!(world.skipped(reason).await, 1, "{path}");
    }
    // A charset the rewriter cannot read: unchanged (compressed, as Tether asked for it plain).
    let response = world.navigate("/utf16", "gzip").await;
    assert_eq!(gunzip(&response.bytes().await.unwrap()), PAGE);
    assert_eq!(world.skipped("charset").await, 1);
    assert_eq!(world.tether.metric("tether_inject_pages_total").await, 0);
}

#[tokio::test]
async fn json_navigations_are_compressed_but_unchanged() {
    let world = World::start(|_| {}).await;
    let response = world.navigate("/json", "gzip").await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(
        gunzip(&response.bytes().await.unwrap()),
        "{\"products\": [1, 2, 3]}"
    );
}

#[tokio::test]
async fn content_security_policy() {
    let world = World::start(|_| {}).await;
    // A nonce: the tag carries it.
    let page = world
        .navigate("/csp-nonce", "identity")
        .await
        .text()
        .await
        .unwrap();
    let tagged = TAG.replace(
        "\"></script>",
        &format!("\" nonce=\"{}\"></script>", app::NONCE),
    );
    assert_eq!(
        page,
        PAGE.replacen("</head>", &format!("{tagged}</head>"), 1)
    );
    // 'self' and the widget's host: the plain tag works.
    let page = world
        .navigate("/csp-self", "identity")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page, injected(PAGE));
    // A report-only policy blocks nothing.
    let page = world
        .navigate("/csp-report-only", "identity")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page, injected(PAGE));
    // Policies that would block the tag, in a header or in a <meta>: unchanged, counted.
    let page = world
        .navigate("/csp-blocked", "identity")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page, PAGE);
    let response = world.navigate("/meta-csp-blocked", "identity").await;
    let page = response.text().await.unwrap();
    assert!(!page.contains(TAG) && page.contains("script-src 'none'"));
    assert_eq!(world.skipped("csp").await, 2);
    assert_eq!(world.tether.metric("tether_inject_pages_total").await, 3);
}

#[tokio::test]
async fn malformed_html_is_unharmed() {
    let world = World::start(|_| {}).await;
    let body = world
        .navigate("/malformed", "identity")
        .await
        .bytes()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches(TAG).count(), 1);
    let without: Vec<u8> = text.replacen(TAG, "", 1).into_bytes();
    assert!(without == app::MALFORMED, "the malformed page changed");
}

#[tokio::test]
async fn the_loader_is_served_with_the_settings() {
    let world = World::start(|config| config.inject.livechat_group = Some(7)).await;
    let response = world
        .certs
        .client()
        .get(format!("{}/.tether/inject/loader.js", world.tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let script = response.text().await.unwrap();
    assert!(script.contains("\"license\":12345"));
    assert!(script.contains("\"group\":7"));
    assert!(script.contains("https://cdn.livechatinc.com/tracking.js"));
    assert!(script.contains("TetherLiveChat"));
    assert!(!script.contains("{{"), "an unfilled placeholder");
}

#[tokio::test]
async fn check_locates_injection_errors() {
    let text =
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[inject]\nenabled = true\nlivechat = true\n";
    let err = tether::config::parse_str(text, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.toml:5:12: inject.livechat:"), "{err}");
    let text = "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[inject]\nenabled = true\npaths = [\"shop\"]\n";
    let err = tether::config::parse_str(text, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.toml:5:"), "{err}");
    assert!(err.contains("path prefixes"), "{err}");
}
