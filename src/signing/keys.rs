//! RSA keys: the active key that signs every token, retired keys still published in the JWKS
//! during a rotation, and a vendor's encryption key (LivePerson's). All on aws-lc-rs, the backend
//! rustls uses, so Tether carries one crypto library.

use super::base64url::b64;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use serde_json::{json, Value};
use std::path::Path;

/// Smallest RSA modulus accepted (LivePerson requires 2048 bits or more).
const MIN_RSA_BITS: usize = 2048;

/// The key that signs tokens, with its RFC 7638 thumbprint as `kid`.
pub struct SigningKey {
    pub pair: RsaKeyPair,
    pub kid: String,
    /// The public half as published in the JWKS.
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public key published in the JWKS.
pub struct PublicJwk {
    pub kid: String,
    pub jwk: Value,
}

/// Reads the active signing key (PKCS#8 PEM).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, String> {
    let der = PrivatePkcs8KeyDer::from_pem_file(path).map_err(|err| {
        format!(
            "expected an RSA private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\") in {}: {err}",
            path.display()
        )
    })?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|err| format!("{} is not a usable RSA key: {err}", path.display()))?;
    let bits = pair.public_modulus_len() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "{} is a {bits}-bit RSA key; LivePerson needs {MIN_RSA_BITS} bits or more",
            path.display()
        ));
    }
    let PublicJwk { kid, jwk } = public_jwk(pair.public_key().as_ref())?;
    Ok(SigningKey { pair, kid, jwk })
}

/// A retired key for the JWKS: a public key (SPKI PEM) or the old private key (PKCS#8 PEM).
pub fn load_retired_key(path: &Path) -> Result<PublicJwk, String> {
    if let Ok(spki) = SubjectPublicKeyInfoDer::from_pem_file(path) {
        let rsa = aws_lc_rs::rsa::PublicKey::from_der(spki.as_ref())
            .map_err(|err| format!("{} is not an RSA public key: {err}", path.display()))?;
        return public_jwk(rsa.as_ref());
    }
    let signing = load_signing_key(path)?;
    Ok(PublicJwk {
        kid: signing.kid,
        jwk: signing.jwk,
    })
}

/// The JWK of an RSA public key (RFC 8017 `RSAPublicKey` DER), `kid` = RFC 7638 thumbprint.
pub fn public_jwk(rsa_public_der: &[u8]) -> Result<PublicJwk, String> {
    let key = aws_lc_rs::rsa::PublicKey::from_der(rsa_public_der)
        .map_err(|err| format!("not an RSA public key: {err}"))?;
    let n = b64(key.modulus().big_endian_without_leading_zero());
    let e = b64(key.exponent().big_endian_without_leading_zero());
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref());
    let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
    Ok(PublicJwk { kid, jwk })
}

/// The one-line public key LivePerson's console takes: base64 SPKI DER, no armour, no newlines.
pub fn console_public_key(key: &SigningKey) -> Result<String, String> {
    let spki = key
        .pair
        .public_key()
        .as_der()
        .map_err(|_| "cannot encode the public key".to_string())?;
    Ok(base64::engine::general_purpose::STANDARD.encode(spki.as_ref()))
}

/// A new 2048-bit RSA signing key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, String> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
    let der = pair
        .as_der()
        .map_err(|_| "cannot encode the new key".to_string())?;
    Ok(pem("PRIVATE KEY", der.as_ref()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// LivePerson's RSA public key for JWE (SPKI PEM).
pub fn load_encryption_key(path: &Path) -> Result<aws_lc_rs::rsa::OaepPublicEncryptingKey, String> {
    let spki = SubjectPublicKeyInfoDer::from_pem_file(path).map_err(|err| {
        format!(
            "expected an RSA public key in PEM (\"BEGIN PUBLIC KEY\") in {}: {err}",
            path.display()
        )
    })?;
    let key = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki.as_ref())
        .map_err(|err| format!("{} is not an RSA public key: {err}", path.display()))?;
    if key.key_size_bits() < MIN_RSA_BITS {
        return Err(format!(
            "{} is smaller than {MIN_RSA_BITS} bits",
            path.display()
        ));
    }
    aws_lc_rs::rsa::OaepPublicEncryptingKey::new(key)
        .map_err(|_| format!("{} cannot be used for RSA-OAEP", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_have_a_stable_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, generate_pem().unwrap()).unwrap();
        let key = load_signing_key(&path).unwrap();
        assert_eq!(key.kid.len(), 43, "base64url of a SHA-256");
        assert_eq!(load_retired_key(&path).unwrap().kid, key.kid);
        assert!(console_public_key(&key)
            .unwrap()
            .starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"));
    }
}
