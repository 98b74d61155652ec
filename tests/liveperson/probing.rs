//! The identity probe under a burst: a bounded number in flight to the app (and connections for
//! them), a short queue, then 503 + Retry-After; never one connection per token request.

use crate::*;
use http_body_util::Full;
use hyper::body::Incoming;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// An app whose `/whoami` holds every probe until the gate opens, counting what it sees.
struct GatedApp {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
}

impl GatedApp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (gate, opened) = watch::channel(false);
        let app = Self {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            gate,
        };
        let (connections, in_flight, most) = (
            app.connections.clone(),
            app.in_flight.clone(),
            app.most_in_flight.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                connections.fetch_add(1, SeqCst);
                let (in_flight, most, opened) = (in_flight.clone(), most.clone(), opened.clone());
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let (in_flight, most, mut opened) =
                            (in_flight.clone(), most.clone(), opened.clone());
                        async move {
                            let now = in_flight.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            let _ = opened.wait_for(|open| *open).await;
                            in_flight.fetch_sub(1, SeqCst);
                            let user = request.headers()["cookie"].to_str().unwrap()
                                ["session=".len()..]
                                .to_string();
                            let response = http::Response::builder()
                                .header("x-authenticated-user", user)
                                .body(Full::new(bytes::Bytes::new()))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        app
    }
}

#[tokio::test]
async fn a_burst_of_token_requests_waits_for_a_few_probes_then_gets_503() {
    let app = GatedApp::start().await;
    let world = Arc::new(
        World::start(|config, _| {
            config.upstream.url = app.addr.to_string().parse().unwrap();
            config.identity.probe_concurrency = 2;
            config.identity.probe_queue_timeout = Duration::from_millis(300);
            config.identity.probe_timeout = Duration::from_secs(30);
        })
        .await,
    );
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..20 {
        let world = world.clone();
        requests.spawn(async move {
            let response = world
                .get_as(Some(&format!("user{i}")), "/liveperson/token")
                .await;
            let retry_after = response.headers().get("retry-after").cloned();
            (response.status().as_u16(), retry_after)
        });
    }
    // Two probes reach the app; 16 wait and then give up, 2 more find the queue full at once.
    let mut refused = 0;
    while refused < 18 {
        let next = tokio::time::timeout(Duration::from_secs(10), requests.join_next());
        let (status, retry_after) = next
            .await
            .expect("refused within the queue timeout, without the app answering")
            .unwrap()
            .unwrap();
        assert_eq!(status, 503);
        assert!(retry_after.is_some(), "503 says when to come back");
        refused += 1;
    }
    assert_eq!(app.in_flight.load(SeqCst), 2);
    app.gate.send_replace(true);
    while let Some(answer) = requests.join_next().await {
        assert_eq!(answer.unwrap().0, 200);
    }
    // The queue moves again, over the same connections.
    assert_eq!(
        world
            .get_as(Some("late"), "/liveperson/token")
            .await
            .status(),
        200
    );
    assert_eq!(app.most_in_flight.load(SeqCst), 2);
    assert!(
        app.connections.load(SeqCst) <= 2,
        "one connection per probe slot at most"
    );
    let metrics = world.tether.metrics().await;
    assert!(
        metrics.contains("tether_identity_probes_refused_total 18\n"),
        "{metrics}"
    );
}
