//! 1 GiB up and 1 GiB down through Tether over TLS without buffering: the process's resident
//! memory grows by less than 32 MiB. A test binary of its own, so nothing else shares the RSS.

#[path = "support/mod.rs"]
mod support;

use futures_util::StreamExt;
use support::backend::Backend;
use support::*;

const GIB: u64 = 1 << 30;
const BUDGET: u64 = 32 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gibibyte_each_way_in_bounded_memory() {
    let certs = TestCerts::new();
    let backend = Backend::start().await;
    let tether = TestTether::start(config_for(backend.addr, &certs)).await;
    let client = certs.client_builder().http1_only().build().unwrap();

    // Warm up every buffer and pool once, then take the baseline.
    let warm = client
        .get(format!("{}/download?bytes={}", tether.https, 8 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.bytes().await.unwrap().len(), 8 << 20);
    let baseline = process_status_bytes("VmRSS:");

    let chunk = bytes::Bytes::from(vec![b'u'; 64 * 1024]);
    let chunks = (GIB / chunk.len() as u64) as usize;
    let upload = futures_util::stream::iter(
        (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let response = client
        .post(format!("{}/upload", tether.https))
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.text().await.unwrap(),
        GIB.to_string(),
        "the app received every byte"
    );

    let response = client
        .get(format!("{}/download?bytes={GIB}", tether.https))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len() as u64;
    }
    assert_eq!(received, GIB, "the client received every byte");

    let peak = process_status_bytes("VmHWM:");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "RSS baseline {} MiB, peak {} MiB, growth {} MiB",
        baseline >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < BUDGET,
        "RSS grew by {} MiB (budget 32 MiB)",
        growth >> 20
    );
}

/// The same on the HTTP/1.1 engine that is not the default (a process of its own: its RSS).
#[test]
fn the_other_http1_engine_streams_in_bounded_memory_too() {
    support::the_other_engine_passes_too("the_other_http1_engine_streams_in_bounded_memory_too");
}
