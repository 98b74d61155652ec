//! HTTP/2 clients reach the HTTP/1.1 app.

use crate::support::*;

#[tokio::test]
async fn h2_client_reaches_h1_app_with_host_and_joined_cookies() {
    let (certs, backend, tether) = start_app_and_tether(|_| {}).await;
    let client = certs.client();
    let response = client
        .post(format!("{}/echo/h2?x=%20y", tether.https))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let seen = backend.last("/echo/h2");
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.uri, "/echo/h2?x=%20y");
    let port = tether.tls_addr.port();
    assert_eq!(
        seen.header("host"),
        Some(format!("localhost:{port}").as_str())
    );
    assert_eq!(seen.all("cookie"), ["a=1; b=2"]);
    assert!(response.text().await.unwrap().contains("payload"));
}

#[tokio::test]
async fn many_concurrent_streams_on_one_connection() {
    let (certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    let client = certs.client();
    // One request first, so the client knows the server speaks h2 before it multiplexes.
    client
        .get(format!("{}/echo/first", tether.https))
        .send()
        .await
        .unwrap();
    let requests = (0..100).map(|i| {
        let client = client.clone();
        let url = format!("{}/echo/stream{i}", tether.https);
        async move { client.get(url).send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let metrics = tether.metrics().await;
    assert!(
        metrics.contains("tether_connections_total 1\n"),
        "{metrics}"
    );
}
