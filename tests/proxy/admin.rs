//! The admin listener: liveness, readiness with reasons, Prometheus metrics.

use crate::support::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    let health = reqwest::get(format!("{}/healthz", tether.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(report["checks"]["upstream"], "ok");

    let client = certs.client();
    for _ in 0..3 {
        client
            .get(format!("{}/echo", tether.https))
            .send()
            .await
            .unwrap();
    }
    client
        .get(format!("{}/status/503", tether.https))
        .send()
        .await
        .unwrap();
    let metrics = tether.metrics().await;
    for line in [
        r#"tether_responses_total{class="2xx"} 3"#,
        r#"tether_responses_total{class="5xx"} 1"#,
        "tether_upstream_response_seconds_count 4",
        "tether_active_connections 1",
        "# TYPE tether_upstream_response_seconds histogram",
        r#"tether_cert_reloads_total{result="success"} 0"#,
        "tether_tls_handshake_failures_total 0",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn readiness_fails_with_a_reason_when_the_app_is_down() {
    let certs = TestCerts::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tether = TestTether::start(config_for(closed, &certs)).await;
    let ready = reqwest::get(format!("{}/readyz", tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert!(
        report["checks"]["upstream"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{report}"
    );
}

#[tokio::test]
async fn failed_handshakes_are_counted() {
    use tokio::io::AsyncWriteExt;
    let (_certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    let mut tcp = tokio::net::TcpStream::connect(tether.tls_addr)
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    wait_until(
        "the failed handshake is counted",
        std::time::Duration::from_secs(5),
        || async {
            tether
                .metrics()
                .await
                .contains("tether_tls_handshake_failures_total 1")
        },
    )
    .await;
}

#[tokio::test]
async fn a_certificate_close_to_expiry_is_a_readiness_warning_and_a_metric() {
    let certs = TestCerts::new();
    certs.write_leaf_with("soon", &certs.cert_path, &certs.key_path, |params| {
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    });
    let app = crate::support::backend::Backend::start().await;
    let tether = TestTether::start(config_for(app.addr, &certs)).await;
    let ready = reqwest::get(format!("{}/readyz", tether.admin))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "a warning, not a failure");
    let report: serde_json::Value = ready.json().await.unwrap();
    let warning = report["warnings"]["certificate"].as_str().unwrap();
    assert!(
        warning.contains("expires in 4.9") || warning.contains("expires in 5.0"),
        "{warning}"
    );
    let days: f64 = tether
        .metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix("tether_tls_certificate_days_left "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((4.9..=5.0).contains(&days), "{days}");

    // A long-lived certificate: no warning.
    let (_certs, _app, healthy) = start_app_and_tether(|_| {}).await;
    let report: serde_json::Value = reqwest::get(format!("{}/readyz", healthy.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["warnings"], serde_json::json!({}));
}
