//! First-login latency of the LiveChat token endpoint, used by scripts/bench.sh: every request is
//! a user Tether has never seen (named by the trusted gateway header), so each one creates a
//! LiveChat customer and records the mapping durably before the token is answered. Runs
//! CONCURRENCY clients over keep-alive HTTPS and prints p50/p99/max in microseconds.
//! Usage: first_login BASE_URL COUNT CONCURRENCY

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).expect("BASE_URL").clone();
    let count: usize = args.get(2).map_or(2000, |a| a.parse().unwrap());
    let concurrency: usize = args.get(3).map_or(4, |a| a.parse().unwrap());
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap();
    // Names no earlier run used.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{base}/.tether/livechat/token");
    // Warm the connections (and the agent token) with one user per client first.
    let warm = (0..concurrency).map(|c| login(&client, &url, format!("warm-{run}-{c}")));
    futures_util::future::join_all(warm).await;
    let workers = (0..concurrency).map(|c| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let mut latencies = Vec::new();
            for i in (c..count).step_by(concurrency) {
                latencies.push(login(&client, &url, format!("new-{run}-{i}")).await);
            }
            latencies
        }
    });
    let mut latencies: Vec<Duration> = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "p50_us={} p99_us={} max_us={} logins={}",
        at(0.50).as_micros(),
        at(0.99).as_micros(),
        latencies.last().unwrap().as_micros(),
        latencies.len()
    );
}

async fn login(client: &reqwest::Client, url: &str, user: String) -> Duration {
    let started = Instant::now();
    let response = client
        .get(url)
        .header("x-authenticated-user", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a token for {user}");
    let _ = response.bytes().await.unwrap();
    started.elapsed()
}
