//! RS256 signing speed on one core, used by scripts/bench.sh: raw signatures per second with a
//! 2048-bit key, and whole id_tokens per second (claims, JSON, base64url and the signature).
//! Usage: rs256_rate [SECONDS]

use std::time::{Duration, Instant};
use tether::testing::signing::{self as keys, jose};

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map_or(3, |a| a.parse().expect("seconds"));
    let dir = std::env::temp_dir().join(format!("tether-rs256-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.pem");
    std::fs::write(&path, keys::generate_pem().unwrap()).unwrap();
    let key = keys::load_signing_key(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();

    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut signature = vec![0; key.pair.public_modulus_len()];
    let raw = rate(seconds, || {
        key.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                b"header.payload",
                &mut signature,
            )
            .unwrap();
    });
    let claims = serde_json::json!({
        "iss": "https://www.example.com/.tether", "sub": "user-1234", "aud": "client",
        "iat": 1_800_000_000u64, "exp": 1_800_003_600u64, "email": "user@example.com",
    });
    let tokens = rate(seconds, || {
        jose::sign(&key, &claims).unwrap();
    });
    println!("raw_signatures_per_s={raw:.0} id_tokens_per_s={tokens:.0}");
}

fn rate(seconds: u64, mut work: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..10 {
            work();
        }
        count += 10;
    }
    count as f64 / start.elapsed().as_secs_f64()
}
