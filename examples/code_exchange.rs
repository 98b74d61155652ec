//! Code Flow exchange latency, used by scripts/bench.sh: gets a code from the page endpoint (as a
//! user the trusted gateway header names), then times `POST /oauth/token` alone, one exchange at a
//! time over a keep-alive HTTPS connection, and prints p50/p99/max in microseconds.
//! Usage: code_exchange BASE_URL CLIENT_ID CLIENT_SECRET COUNT

use std::time::{Duration, Instant};

const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123456789";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).expect("BASE_URL").clone();
    let (client_id, secret) = (args[2].clone(), args[3].clone());
    let count: usize = args.get(4).map_or(2000, |a| a.parse().unwrap());
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap();
    let challenge = {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes());
        tether::testing::signing::b64(digest.as_ref())
    };
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        let grant: serde_json::Value = client
            .post(format!("{base}/.tether/liveperson/code"))
            .header("x-authenticated-user", format!("bench-user-{}", i % 100))
            .json(
                &serde_json::json!({"code_challenge": challenge, "code_challenge_method": "S256"}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = grant["code"].as_str().expect("a code").to_string();
        let started = Instant::now();
        let response = client
            .post(format!("{base}/.tether/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the exchange succeeds");
        let _ = response.bytes().await.unwrap();
        // The first tenth warms the connection and caches up.
        if i >= count / 10 {
            latencies.push(started.elapsed());
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let us = |d: Duration| d.as_micros();
    println!(
        "p50_us={} p99_us={} max_us={} exchanges={}",
        us(at(0.50)),
        us(at(0.99)),
        us(*latencies.last().unwrap()),
        latencies.len()
    );
}
