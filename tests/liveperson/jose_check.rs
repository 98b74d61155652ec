//! Independent checks of what Tether signs and encrypts: `jsonwebtoken` on RustCrypto verifies
//! signatures against the served JWKS; the JWE decrypter here uses RustCrypto's RSA-OAEP, AES and
//! HMAC. Nothing here touches aws-lc-rs.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn b64d(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|_| panic!("not base64url: {text}"))
}

pub fn b64e(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JOSE header of a compact token, as raw JSON.
pub fn header_json(token: &str) -> Value {
    serde_json::from_slice(&b64d(token.split('.').next().unwrap())).unwrap()
}

/// Verifies `token` (RS256) against the key in `jwks` named by its `kid`, with `iss` and `aud`,
/// and returns its claims.
pub fn verify(token: &str, jwks: &JwkSet, issuer: &str, audience: &str) -> Value {
    let header = decode_header(token).expect("a JWS header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid in the header");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    validation.leeway = 0;
    decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|err| panic!("the token does not verify: {err}"))
        .claims
}

/// RFC 7638 thumbprint of an RSA JWK given as JSON.
pub fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    b64e(&Sha256::digest(canonical.as_bytes()))
}

/// A test RSA key pair for JWE: (RustCrypto private key, public key as SPKI PEM).
pub fn encryption_key_pair() -> (rsa::RsaPrivateKey, String) {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    // Generated through Tether's key writer (fast, C), parsed and used only by RustCrypto.
    let pem = tether::testing::signing::generate_pem().unwrap();
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let public = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (private, public)
}

/// Decrypts a compact JWE (RSA-OAEP-256 with A256GCM or A128CBC-HS256): (header, plaintext).
pub fn decrypt(token: &str, key: &rsa::RsaPrivateKey) -> (Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 5, "a compact JWE has five parts");
    let header: Value = serde_json::from_slice(&b64d(parts[0])).unwrap();
    assert_eq!(header["alg"], "RSA-OAEP-256");
    let cek = key
        .decrypt(rsa::Oaep::new::<Sha256>(), &b64d(parts[1]))
        .expect("RSA-OAEP-256 unwraps the content key");
    let (iv, ciphertext, tag) = (b64d(parts[2]), b64d(parts[3]), b64d(parts[4]));
    let aad = parts[0].as_bytes();
    let plain = match header["enc"].as_str().unwrap() {
        "A256GCM" => {
            let cipher = aes_gcm::Aes256Gcm::new_from_slice(&cek).unwrap();
            let sealed = [ciphertext.as_slice(), tag.as_slice()].concat();
            cipher
                .decrypt(
                    aes_gcm::Nonce::from_slice(&iv),
                    Payload { msg: &sealed, aad },
                )
                .expect("A256GCM opens")
        }
        "A128CBC-HS256" => {
            use cbc::cipher::{BlockDecryptMut, KeyIvInit};
            use hmac::Mac;
            let (mac_key, enc_key) = cek.split_at(16);
            let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(mac_key).unwrap();
            mac.update(aad);
            mac.update(&iv);
            mac.update(&ciphertext);
            mac.update(&((aad.len() as u64) * 8).to_be_bytes());
            let full = mac.finalize().into_bytes();
            assert_eq!(
                &full[..16],
                tag.as_slice(),
                "the A128CBC-HS256 tag verifies"
            );
            cbc::Decryptor::<aes::Aes128>::new_from_slices(enc_key, &iv)
                .unwrap()
                .decrypt_padded_vec_mut::<cbc::cipher::block_padding::Pkcs7>(&ciphertext)
                .expect("AES-128-CBC opens")
        }
        other => panic!("unexpected enc {other}"),
    };
    (header, String::from_utf8(plain).unwrap())
}
