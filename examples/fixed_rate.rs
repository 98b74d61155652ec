//! Open-loop latency probe used by scripts/bench.sh: sends GET requests at a fixed total rate over
//! keep-alive HTTP/1.1 connections and prints p50/p99/max. Latency is measured from each request's
//! scheduled time, so a stalled server cannot hide its queueing (no coordinated omission).
//! Usage: fixed_rate URL RATE_PER_SECOND SECONDS CONNECTIONS

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: hyper::Uri = args.get(1).expect("URL").parse().expect("a URL");
    let rate: u64 = args.get(2).map_or(2000, |a| a.parse().unwrap());
    let seconds: u64 = args.get(3).map_or(10, |a| a.parse().unwrap());
    let connections: u64 = args.get(4).map_or(16, |a| a.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut latencies = runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections as usize)
            .build_http::<Empty<bytes::Bytes>>();
        let interval = Duration::from_nanos(1_000_000_000 * connections / rate);
        let start = Instant::now() + Duration::from_millis(100);
        let tasks: Vec<_> = (0..connections)
            .map(|i| {
                let client = client.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut due = start + interval * i as u32 / connections as u32;
                    let end = start + Duration::from_secs(seconds);
                    while due < end {
                        tokio::time::sleep_until(due.into()).await;
                        let response = client.get(url.clone()).await.expect("request");
                        let _ = response.into_body().collect().await;
                        latencies.push(due.elapsed());
                        due += interval;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "requests={} p50_us={} p99_us={} max_us={}",
        latencies.len(),
        at(0.50).as_micros(),
        at(0.99).as_micros(),
        latencies.last().unwrap().as_micros()
    );
}
