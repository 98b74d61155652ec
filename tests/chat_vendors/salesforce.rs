//! Salesforce's JWT (RS256: `sub`, `iss`, `iat`, `exp`, header `kid`) and the keyset it is
//! checked against: the JWKS with `x5c`, or one JWK from `tether salesforce jwk`
//! (docs/vendors/salesforce.md).

use crate::{refuses_what_it_must, World};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

/// The JWKS from Tether, each key checked: `x5c` a certificate over the same RSA key, valid for
/// more than Salesforce's 10 days.
async fn keyset(world: &World) -> Vec<serde_json::Value> {
    let jwks: serde_json::Value = world
        .client
        .get(world.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap().clone();
    for key in &keys {
        check_x5c(key);
    }
    keys
}

pub fn check_x5c(jwk: &serde_json::Value) {
    use base64::Engine;
    let x5c = jwk["x5c"].as_array().expect("x5c is an array");
    assert_eq!(x5c.len(), 1);
    let der = base64::engine::general_purpose::STANDARD
        .decode(x5c[0].as_str().unwrap())
        .expect("standard base64 DER");
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    let validity = certificate.validity();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(validity.not_before.timestamp() <= now);
    assert!(
        validity.not_after.timestamp() - now > 600 * 86_400,
        "renewed well before expiry: {:?}",
        validity.not_after
    );
    let x509_parser::public_key::PublicKey::RSA(rsa) = certificate.public_key().parsed().unwrap()
    else {
        panic!("an RSA certificate")
    };
    let b64 = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().skip_while(|b| **b == 0).copied().collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(trimmed)
    };
    assert_eq!(
        jwk["n"],
        b64(rsa.modulus).as_str(),
        "the certificate is over this key"
    );
    assert_eq!(jwk["e"], b64(rsa.exponent).as_str());
    // Self-signed by the same key: its signature verifies with its own public key (RustCrypto).
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(rsa.modulus),
        rsa::BigUint::from_bytes_be(rsa.exponent),
    )
    .unwrap();
    let signature = Signature::try_from(certificate.signature_value.data.as_ref()).unwrap();
    VerifyingKey::<sha2::Sha256>::new(public)
        .verify(certificate.tbs_certificate.as_ref(), &signature)
        .expect("self-signed by the key");
}

fn verify(jwt: &str, keys: &[serde_json::Value]) -> serde_json::Value {
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let key = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid in the keyset");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["https://brand.example/.tether"]);
    validation.required_spec_claims = ["exp", "iss", "sub"]
        .into_iter()
        .map(String::from)
        .collect();
    decode::<serde_json::Value>(
        jwt,
        &DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap(),
        &validation,
    )
    .unwrap()
    .claims
}

#[tokio::test]
async fn the_jwt_is_what_salesforces_own_generator_makes() {
    let world = World::start(|_| {}).await;
    let keys = keyset(&world).await;
    let body = world.json_as("alice", "/salesforce/jwt").await;
    let jwt = body["jwt"].as_str().unwrap().to_string();
    let claims = verify(&jwt, &keys);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "https://brand.example/.tether");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600
    );
    let mut names: Vec<&String> = claims.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["exp", "iat", "iss", "sub"],
        "nothing Salesforce does not read"
    );
    // An RS256 signature costs ~0.7 ms: a second page load gets the kept token.
    let again = world.json_as("alice", "/salesforce/jwt").await;
    assert_eq!(again["jwt"], jwt.as_str());
    assert_eq!(
        world
            .tether
            .metric("tether_salesforce_tokens_cached_total")
            .await,
        1
    );
    let bob = world.json_as("bob", "/salesforce/jwt").await;
    assert_eq!(verify(bob["jwt"].as_str().unwrap(), &keys)["sub"], "bob");
    refuses_what_it_must(&world, "/salesforce/jwt").await;
}

#[tokio::test]
async fn salesforce_jwk_prints_one_uploadable_key() {
    let world = World::start(|_| {}).await;
    let keys = keyset(&world).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tether.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[signing]\nkey = \"{}\"\n[salesforce]\nenabled = true\n",
            world.keys.path().join("signing.pem").display()
        ),
    )
    .unwrap();
    let (code, out, err) =
        crate::support::run_tether(&["salesforce", "jwk", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let jwk: serde_json::Value = serde_json::from_str(&out).expect("one JSON object, not an array");
    assert!(jwk.is_object());
    for member in ["kty", "kid", "alg", "n", "e", "x5c"] {
        assert!(jwk.get(member).is_some(), "{member} in {jwk}");
    }
    assert_eq!(jwk["kid"], keys[0]["kid"]);
    assert_eq!(
        jwk["x5c"], keys[0]["x5c"],
        "the same certificate as the JWKS this period"
    );
    check_x5c(&jwk);
}
