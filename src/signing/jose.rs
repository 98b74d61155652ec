//! Compact JWS (RS256, RFC 7515) and JWE (RSA-OAEP-256 with A256GCM or A128CBC-HS256, RFC 7516 /
//! RFC 7518) on aws-lc-rs. Only what the vendors need: Tether signs and encrypts, it never parses
//! tokens, so there is no algorithm negotiation to get wrong.

use super::base64url::b64;
use super::keys::SigningKey;
use crate::config::JweEnc;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::cipher::{EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey, AES_128};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use serde_json::{json, Value};

/// Signing or encrypting failed (aws-lc-rs gives no detail beyond which step).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JoseError(pub &'static str);

/// Signs `claims` as a compact JWS with RS256 and the key's `kid`.
pub fn sign(key: &SigningKey, claims: &Value) -> Result<String, JoseError> {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
    compact_rs256(
        key,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// `BASE64URL(header) . BASE64URL(payload) . BASE64URL(RS256 signature)` (RFC 7515 section
/// 7.1). RSASSA-PKCS1-v1_5 is deterministic: the same input gives the RFCs' signatures.
pub fn compact_rs256(key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<String, JoseError> {
    let mut token = format!("{}.{}", b64(header), b64(payload));
    let mut signature = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            token.as_bytes(),
            &mut signature,
        )
        .map_err(|_| JoseError("RS256 signing failed"))?;
    token.push('.');
    token.push_str(&b64(&signature));
    Ok(token)
}

/// Wraps signed tokens for LivePerson's key, so the consumer's browser cannot read the claims.
pub struct Encrypter {
    key: OaepPublicEncryptingKey,
    /// The `kid` the vendor gave; only needed when it reads keys from a JWKS.
    kid: Option<String>,
    enc: JweEnc,
}

impl Encrypter {
    pub fn new(key: OaepPublicEncryptingKey, kid: Option<String>, enc: JweEnc) -> Self {
        Self { key, kid, enc }
    }

    /// A compact JWE whose plaintext is the signed `jws` (`cty: "JWT"`, nested JWT).
    pub fn encrypt(&self, jws: &str) -> Result<String, JoseError> {
        // The exact spelling "RSA-OAEP-256" matters: "RSA_OAEP_256" broke decryption for users.
        let mut header = json!({"alg": "RSA-OAEP-256", "enc": self.enc.name(), "cty": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = kid.as_str().into();
        }
        let protected = b64(header.to_string().as_bytes());
        let mut cek = [0u8; 32];
        SystemRandom::new()
            .fill(&mut cek)
            .map_err(|_| JoseError("no randomness"))?;
        let mut wrapped = vec![0; self.key.ciphertext_size()];
        let wrapped = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut wrapped, None)
            .map_err(|_| JoseError("RSA-OAEP key wrapping failed"))?;
        let (iv, ciphertext, tag) = seal(self.enc, &cek, protected.as_bytes(), jws.as_bytes())?;
        Ok(format!(
            "{protected}.{}.{}.{}.{}",
            b64(wrapped),
            b64(&iv),
            b64(&ciphertext),
            b64(&tag)
        ))
    }
}

/// Content encryption with a fresh IV: (iv, ciphertext, tag).
fn seal(enc: JweEnc, cek: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Sealed, JoseError> {
    match enc {
        JweEnc::A256Gcm => {
            let iv: [u8; 12] = crate::random::bytes();
            let (ciphertext, tag) = seal_gcm(cek, &iv, aad, plain)?;
            Ok((iv.to_vec(), ciphertext, tag))
        }
        JweEnc::A128CbcHs256 => {
            let iv: [u8; 16] = crate::random::bytes();
            let (ciphertext, tag) = seal_cbc_hs256(cek, &iv, aad, plain)?;
            Ok((iv.to_vec(), ciphertext, tag))
        }
    }
}

type Sealed = (Vec<u8>, Vec<u8>, Vec<u8>);

/// AES-256-GCM (RFC 7518 section 5.3): (ciphertext, tag).
pub(super) fn seal_gcm(
    cek: &[u8; 32],
    iv: &[u8; 12],
    aad: &[u8],
    plain: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), JoseError> {
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek).map_err(|_| JoseError("bad AES key"))?);
    let mut data = plain.to_vec();
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), &mut data)
        .map_err(|_| JoseError("AES-GCM sealing failed"))?;
    Ok((data, tag.as_ref().to_vec()))
}

/// RFC 7518 section 5.2.2.1: MAC key = first half of the CEK, encryption key = second half;
/// tag = first 16 bytes of HMAC-SHA256(AAD || IV || ciphertext || AAD length in bits, 64-bit BE).
pub(super) fn seal_cbc_hs256(
    cek: &[u8; 32],
    iv: &[u8; 16],
    aad: &[u8],
    plain: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), JoseError> {
    let (mac_key, enc_key) = cek.split_at(16);
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_128, enc_key).map_err(|_| JoseError("bad AES key"))?,
    )
    .map_err(|_| JoseError("bad AES key"))?;
    let mut data = plain.to_vec();
    key.less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(*iv)))
        .map_err(|_| JoseError("AES-CBC encryption failed"))?;
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_key);
    let mut mac = aws_lc_rs::hmac::Context::with_key(&mac_key);
    mac.update(aad);
    mac.update(iv);
    mac.update(&data);
    mac.update(&((aad.len() as u64) * 8).to_be_bytes());
    let tag = mac.sign().as_ref()[..16].to_vec();
    Ok((data, tag))
}
