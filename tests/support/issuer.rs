//! A stand-in token issuer for the tests: keys for every algorithm (made by rcgen), tokens signed
//! by `jsonwebtoken` on RustCrypto (independent of Tether's aws-lc-rs verifier), and a JWKS
//! server whose keys, availability and caching headers the test controls. It also serves AWS
//! ALB's regional key layout (`/alb/{kid}`, one PEM each).

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use jsonwebtoken::{Algorithm, EncodingKey};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

pub const ISSUER: &str = "https://idp.test/";
pub const AUDIENCE: &str = "tether-test";

/// One signing key: its algorithm, kid, private key and public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub alg: Algorithm,
    pub alg_name: &'static str,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: serde_json::Value,
    pub public_pem: String,
}

impl TestKey {
    pub fn new(alg: Algorithm, kid: &str) -> Self {
        let (rcgen_alg, alg_name): (&'static rcgen::SignatureAlgorithm, _) = match alg {
            Algorithm::RS256 => (&rcgen::PKCS_RSA_SHA256, "RS256"),
            Algorithm::RS384 => (&rcgen::PKCS_RSA_SHA256, "RS384"),
            Algorithm::RS512 => (&rcgen::PKCS_RSA_SHA256, "RS512"),
            Algorithm::PS256 => (&rcgen::PKCS_RSA_SHA256, "PS256"),
            Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "ES256"),
            Algorithm::ES384 => (&rcgen::PKCS_ECDSA_P384_SHA384, "ES384"),
            Algorithm::EdDSA => (&rcgen::PKCS_ED25519, "EdDSA"),
            other => panic!("no test key for {other:?}"),
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        use rcgen::PublicKeyData;
        let mut jwk = public_jwk(&pair.subject_public_key_info(), alg_name);
        jwk["kid"] = kid.into();
        Self {
            alg,
            alg_name,
            kid: kid.to_string(),
            encoding,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    /// A token for `claims`, signed with this key and naming its kid.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A token with this exact header JSON, its segments base64url-encoded `padded` or not (AWS
    /// ALB pads them), signed over them as they are.
    pub fn sign_raw(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
        padded: bool,
    ) -> String {
        let engine = if padded {
            base64::engine::general_purpose::URL_SAFE
        } else {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
        };
        let message = format!(
            "{}.{}",
            engine.encode(header.to_string()),
            engine.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{message}.{signature}")
    }
}

/// The public JWK of a SubjectPublicKeyInfo, read with x509-parser.
fn public_jwk(spki: &[u8], alg: &str) -> serde_json::Value {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).unwrap();
    let raw = info.subject_public_key.data.to_vec();
    if alg == "EdDSA" {
        return serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&raw), "alg": alg});
    }
    match info.parsed().unwrap() {
        PublicKey::RSA(rsa) => {
            let trim = |bytes: &[u8]| {
                b64(&bytes
                    .iter()
                    .skip_while(|b| **b == 0)
                    .copied()
                    .collect::<Vec<_>>())
            };
            serde_json::json!({"kty": "RSA", "n": trim(rsa.modulus), "e": trim(rsa.exponent), "alg": alg, "use": "sig"})
        }
        PublicKey::EC(point) => {
            let data = point.data();
            let half = (data.len() - 1) / 2;
            let crv = if half == 32 { "P-256" } else { "P-384" };
            serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&data[1..1 + half]), "y": b64(&data[1 + half..]), "alg": alg})
        }
        other => panic!("no JWK for {other:?}"),
    }
}

/// Standard claims for `user`, valid now for ten minutes.
pub fn claims(user: &str) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    serde_json::json!({
        "sub": user,
        "iss": ISSUER,
        "aud": [AUDIENCE, "someone-else"],
        "iat": now,
        "exp": now + 600,
        "email": format!("{user}@example.com"),
        "name": format!("User {user}"),
    })
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[derive(Default)]
struct State {
    keys: Mutex<Vec<serde_json::Value>>,
    pems: Mutex<HashMap<String, String>>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

/// The JWKS server.
#[derive(Clone)]
pub struct Issuer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Issuer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(State::default());
        let issuer = Self {
            addr: serve(state.clone()).await,
            state,
        };
        for key in keys {
            issuer.publish(key);
        }
        issuer
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    pub fn alb_url(&self) -> String {
        format!("http://{}/alb/{{kid}}", self.addr)
    }

    /// Adds a key to the JWKS and to the per-kid PEM layout.
    pub fn publish(&self, key: &TestKey) {
        self.state.keys.lock().unwrap().push(key.jwk.clone());
        self.state
            .pems
            .lock()
            .unwrap()
            .insert(key.kid.clone(), key.public_pem.clone());
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, SeqCst);
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(SeqCst)
    }
}

async fn serve(state: Arc<State>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(answer(&state, request.uri().path()))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn answer(state: &State, path: &str) -> http::Response<Full<Bytes>> {
    state.fetches.fetch_add(1, SeqCst);
    let reply = |status: u16, body: String| {
        http::Response::builder()
            .status(status)
            .header("cache-control", "public, max-age=3600")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if state.down.load(SeqCst) {
        return reply(503, "down".into());
    }
    if path == "/jwks.json" {
        let keys = state.keys.lock().unwrap().clone();
        return reply(200, serde_json::json!({ "keys": keys }).to_string());
    }
    if let Some(kid) = path.strip_prefix("/alb/") {
        return match state.pems.lock().unwrap().get(kid) {
            Some(pem) => reply(200, pem.clone()),
            None => reply(404, "no such key".into()),
        };
    }
    reply(404, "not found".into())
}
