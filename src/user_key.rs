//! The per-user key a page may see: a hash of the user id, so the page can key its caches by the
//! user (and drop them when the user changes) without learning the id itself.

/// The first 128 bits of SHA-256(user id), in hex.
pub fn user_key(user: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
