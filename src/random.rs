//! Random bytes from aws-lc-rs, the one crypto library Tether carries (TLS, JOSE, codes).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// `N` random bytes. The system generator does not fail on a running Linux system; if it ever
/// did, nothing Tether makes from it (codes, leases, keys) would be safe, so it panics.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system random generator failed");
    out
}

/// A random number in `0..=max`.
pub fn up_to(max: u64) -> u64 {
    let value = u64::from_be_bytes(bytes());
    match max.checked_add(1) {
        Some(span) => value % span,
        None => value,
    }
}
