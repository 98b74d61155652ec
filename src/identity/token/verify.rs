//! Checking a JWS signature with a public key from the issuer, on aws-lc-rs (the backend TLS
//! and Tether's own signer use). Only asymmetric algorithms: a public key can never verify an
//! HMAC (the "HS256 signed with the public key" confusion), and `none` is nothing to verify.
//!
//! The signature is checked over the token's first two segments exactly as they arrived: AWS
//! ALB pads its base64url segments, which a decoder that re-encodes would get wrong.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;

/// A verification key, as the issuer published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point (0x04 || x || y) on P-256 or P-384.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// A key with the algorithm its publisher bound it to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: PublicKey,
    pub alg: Option<String>,
}

/// base64url, with or without padding.
pub fn b64(segment: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .ok()
}

impl KeyEntry {
    /// A key from one JWKS member; None for kinds Tether does not verify with (and `oct`).
    pub fn from_jwk(jwk: &serde_json::Value) -> Option<Self> {
        if jwk["use"].as_str().is_some_and(|usage| usage != "sig") {
            return None;
        }
        let field = |name: &str| jwk[name].as_str().and_then(b64);
        let key = match jwk["kty"].as_str()? {
            "RSA" => PublicKey::Rsa {
                n: field("n")?,
                e: field("e")?,
            },
            "EC" => {
                let curve = match jwk["crv"].as_str()? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    _ => return None,
                };
                let mut point = vec![0x04];
                point.extend(field("x")?);
                point.extend(field("y")?);
                PublicKey::Ec { curve, point }
            }
            "OKP" if jwk["crv"] == "Ed25519" => PublicKey::Ed25519(field("x")?),
            _ => return None,
        };
        Some(Self {
            key,
            alg: jwk["alg"].as_str().map(str::to_string),
        })
    }

    /// A PEM public key (SubjectPublicKeyInfo), as AWS ALB publishes one per `kid`.
    pub fn from_pem(pem: &str) -> Option<Self> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes()).ok()?;
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der.as_ref()).ok()?;
        let point = spki.subject_public_key.data.to_vec();
        let curve = match point.len() {
            65 => Curve::P256,
            97 => Curve::P384,
            _ => return None,
        };
        Some(Self {
            key: PublicKey::Ec { curve, point },
            alg: None,
        })
    }

    /// Whether `signature` over `message` is this key's, for `alg`.
    pub fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        if self.alg.as_deref().is_some_and(|bound| bound != alg) {
            return false;
        }
        match (&self.key, alg) {
            (PublicKey::Rsa { n, e }, _) => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            (PublicKey::Ec { curve, point }, _) => {
                let algorithm = match (curve, alg) {
                    (Curve::P256, "ES256") => &signature::ECDSA_P256_SHA256_FIXED,
                    (Curve::P384, "ES384") => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (PublicKey::Ed25519(key), "EdDSA") => UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, signature)
                .is_ok(),
            _ => false,
        }
    }
}

/// A compact JWS taken apart: its header, its claims, and what its signature covers.
pub struct Parsed<'a> {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
    pub message: &'a [u8],
    pub signature: Vec<u8>,
}

/// Three base64url segments whose first two are JSON objects; None otherwise.
pub fn parse(token: &str) -> Option<Parsed<'_>> {
    let mut parts = token.splitn(3, '.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if signature.contains('.') {
        return None;
    }
    let json = |segment: &str| -> Option<serde_json::Value> {
        let value: serde_json::Value = serde_json::from_slice(&b64(segment)?).ok()?;
        value.is_object().then_some(value)
    };
    Some(Parsed {
        header: json(header)?,
        claims: json(claims)?,
        message: &token.as_bytes()[..header.len() + 1 + claims.len()],
        signature: b64(signature)?,
    })
}

/// The algorithms Tether accepts: asymmetric, from issuers' JWKS.
pub fn is_accepted(alg: &str) -> bool {
    matches!(
        alg,
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "EdDSA"
    )
}
