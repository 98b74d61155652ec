//! Implicit Flow: `GET /.tether/liveperson/token` -> `{"jwt": ...}`, every claim and header
//! checked independently; caching, subjects, encryption and key rotation.

use crate::jose_check::*;
use crate::*;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_jwt_carries_every_claim_in_seconds_with_a_thumbprint_kid() {
    let world = World::start(|_, _| {}).await;
    let before = now();
    let jwt = world.page_jwt("alice").await;
    let jwks = world.jwks().await;

    let header = header_json(&jwt);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let served: serde_json::Value = serde_json::to_value(&jwks).expect("the JWKS serialises");
    let published = &served["keys"][0];
    assert_eq!(published["kid"], header["kid"]);
    assert_eq!(published["use"], "sig");
    assert_eq!(published["alg"], "RS256");
    assert_eq!(
        thumbprint(published),
        header["kid"].as_str().unwrap(),
        "kid is the RFC 7638 thumbprint"
    );

    let claims = verify(&jwt, &jwks, &world.issuer(), CLIENT_ID);
    assert_eq!(claims["iss"], world.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["azp"], CLIENT_ID);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat >= before && iat <= now(), "iat {iat} is in seconds");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600, "token_ttl 1h");
    assert!(claims.get("nonce").is_none());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "User alice");
    assert_eq!(claims["given_name"], "Given-alice");
    assert_eq!(claims["phone_number"], "+15550100");
    assert_eq!(claims["gender"], "female");
    assert!(claims.get("balance").is_none(), "only profile claims");

    // lp_sdes: an array of typed engagement attributes, dates as {day, month, year}.
    let sdes = claims["lp_sdes"].as_array().expect("lp_sdes is an array");
    assert_eq!(sdes.len(), 2);
    assert_eq!(
        sdes[0],
        json!({"type": "ctmrinfo", "info": {
            "customerId": "alice",
            "balance": 12.5,
            "registrationDate": {"day": 17, "month": 5, "year": 2020},
        }})
    );
    let personal = &sdes[1];
    assert_eq!(personal["type"], "personal");
    assert_eq!(personal["personal"]["firstname"], "Given-alice");
    assert_eq!(personal["personal"]["gender"], "FEMALE");
    assert_eq!(
        personal["personal"]["contacts"],
        json!([{"email": "alice@example.com", "phone": "+15550100"}])
    );
    let age = &personal["personal"]["age"];
    assert_eq!(
        (
            age["year"].as_u64(),
            age["month"].as_u64(),
            age["day"].as_u64()
        ),
        (Some(1990), Some(11), Some(23))
    );
    assert!((35..=36).contains(&age["age"].as_u64().unwrap()));
}

#[tokio::test]
async fn tokens_are_cached_per_user_and_anonymous_callers_get_401() {
    let world = World::start(|_, _| {}).await;
    let first = world.page_jwt("alice").await;
    assert_eq!(
        world.page_jwt("alice").await,
        first,
        "the cached JWT is served again"
    );
    let bob = world.page_jwt("bob").await;
    assert_ne!(bob, first);
    let metrics = world.tether.metrics().await;
    assert!(
        metrics.contains("tether_liveperson_tokens_signed_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_liveperson_tokens_cached_total 1\n"),
        "{metrics}"
    );

    let response = world.get_as(None, "/liveperson/token").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_authenticated");

    // A request another site's page makes with the user's cookies is refused.
    let response = world
        .client
        .get(world.url("/liveperson/token"))
        .header("cookie", "session=alice")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn identity_endpoint_and_hmac_subjects_agree_with_the_token() {
    let world = World::start(|config, _| {
        config.liveperson.sub = tether::config::SubjectKind::Hmac;
        config.liveperson.sub_secret =
            tether::redact::Secret::new("a-long-random-subject-secret-0123456789");
    })
    .await;
    let jwt = world.page_jwt("alice").await;
    let claims = verify(&jwt, &world.jwks().await, &world.issuer(), CLIENT_ID);
    let sub = claims["sub"].as_str().unwrap();
    assert_ne!(sub, "alice", "the user id is not exposed");
    assert_eq!(sub.len(), 43, "base64url of an HMAC-SHA256");

    let response = world.get_as(Some("alice"), "/liveperson/identity").await;
    assert_eq!(response.status(), 200);
    let identity: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        identity,
        json!({"iss": world.issuer(), "acr": "loa1", "sub": sub})
    );
    // Stable per user, different between users.
    let again = world.get_as(Some("alice"), "/liveperson/identity").await;
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["sub"], sub);
    let bob = world.get_as(Some("bob"), "/liveperson/identity").await;
    assert_ne!(bob.json::<serde_json::Value>().await.unwrap()["sub"], sub);
    assert_eq!(
        world.get_as(None, "/liveperson/identity").await.status(),
        401
    );
}

#[tokio::test]
async fn encrypted_tokens_open_with_the_private_key_for_both_content_encryptions() {
    for (enc, name) in [
        (tether::config::JweEnc::A256Gcm, "A256GCM"),
        (tether::config::JweEnc::A128CbcHs256, "A128CBC-HS256"),
    ] {
        let (private, public_pem) = encryption_key_pair();
        let world = World::start(|config, dir| {
            let path = dir.join("liveperson-encryption.pub.pem");
            std::fs::write(&path, &public_pem).unwrap();
            config.liveperson.encryption_key = Some(path);
            config.liveperson.encryption_kid = "lp-enc-key-1".into();
            config.liveperson.encryption_enc = enc;
        })
        .await;
        let jwe = world.page_jwt("alice").await;
        assert_eq!(jwe.split('.').count(), 5, "a compact JWE");
        let (header, inner) = decrypt(&jwe, &private);
        assert_eq!(header["alg"], "RSA-OAEP-256");
        assert_eq!(header["enc"], name);
        assert_eq!(header["cty"], "JWT");
        assert_eq!(header["kid"], "lp-enc-key-1");
        let claims = verify(&inner, &world.jwks().await, &world.issuer(), CLIENT_ID);
        assert_eq!(claims["sub"], "alice");
    }
}

#[tokio::test]
async fn a_rotated_key_keeps_old_tokens_verifiable() {
    let world = World::start(|_, _| {}).await;
    let old_token = world.page_jwt("alice").await;
    let old_key = world.keys.path().join("signing.pem");
    let old_kid = header_json(&old_token)["kid"].clone();

    // Restart with a new key, the old one retired but still published.
    let keys = tempfile::tempdir().unwrap();
    let new_key = new_signing_key(keys.path(), "next.pem");
    let mut config = config_for(world.app.addr, &world.certs);
    enable_liveperson(&mut config, new_key);
    config.liveperson.retired_keys = vec![old_key];
    let rotated = TestTether::start(config).await;
    let client = world.certs.client();
    let jwks: jsonwebtoken::jwk::JwkSet = client
        .get(format!("{}/.tether/jwks.json", rotated.https))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 2);
    let issuer = world.issuer();
    assert_eq!(
        verify(&old_token, &jwks, &issuer, CLIENT_ID)["sub"],
        "alice"
    );

    let response = client
        .get(format!("{}/.tether/liveperson/token", rotated.https))
        .header("cookie", "session=alice")
        .send()
        .await
        .unwrap();
    let new_token = response.json::<serde_json::Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let new_kid = header_json(&new_token)["kid"].clone();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        jwks.keys[0].common.key_id.as_deref(),
        new_kid.as_str(),
        "the active key comes first"
    );
    let claims = verify(
        &new_token,
        &jwks,
        &format!("{}/.tether", rotated.https),
        CLIENT_ID,
    );
    assert_eq!(claims["sub"], "alice");
}

#[tokio::test]
async fn discovery_describes_the_endpoints_under_the_issuer() {
    let world = World::start(|_, _| {}).await;
    let response = world
        .client
        .get(world.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    let issuer = world.issuer();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks.json"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{issuer}/oauth/authorize")
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert!(doc["code_challenge_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("S256")));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );

    // A configured issuer wins over the Host header.
    let configured = World::start(|config, _| {
        config.liveperson.issuer = "https://www.example.com/.tether".into();
    })
    .await;
    let doc: serde_json::Value = configured
        .client
        .get(configured.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], "https://www.example.com/.tether");
    let jwt = configured.page_jwt("alice").await;
    let claims = verify(
        &jwt,
        &configured.jwks().await,
        "https://www.example.com/.tether",
        CLIENT_ID,
    );
    assert_eq!(claims["iss"], "https://www.example.com/.tether");
}

/// LivePerson hands its encryption key out as an X.509 certificate (its staff IdP loads
/// `lpsso2026.pem` with kid `lpsso2026`) or as the console's one-line base64 SPKI: both work,
/// besides a PEM public key, and without a kid the JWE header names none.
#[tokio::test]
async fn the_encryption_key_may_be_a_certificate_or_one_line_of_base64() {
    use base64::Engine;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let pem = tether::testing::signing::generate_pem().unwrap();
    let private = rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(&pem).unwrap();
    let private: rsa::RsaPrivateKey = private;
    let pair = rcgen::KeyPair::from_pem(&pem).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lpsso2026");
    let certificate = params.self_signed(&pair).unwrap().pem();
    let spki = private.to_public_key().to_public_key_der().unwrap();
    let one_line = base64::engine::general_purpose::STANDARD.encode(spki.as_bytes());
    let pem_public = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    for (form, text, kid) in [
        ("certificate", certificate, "lpsso2026"),
        ("one line", one_line, ""),
        ("PEM", pem_public, ""),
    ] {
        let world = World::start(|config, dir| {
            let path = dir.join("lp-encryption-key");
            std::fs::write(&path, &text).unwrap();
            config.liveperson.encryption_key = Some(path);
            config.liveperson.encryption_kid = kid.into();
        })
        .await;
        let jwe = world.page_jwt("alice").await;
        let (header, inner) = decrypt(&jwe, &private);
        if kid.is_empty() {
            assert!(header.get("kid").is_none(), "{form}: {header}");
        } else {
            assert_eq!(header["kid"], kid, "{form}");
        }
        let claims = verify(&inner, &world.jwks().await, &world.issuer(), CLIENT_ID);
        assert_eq!(claims["sub"], "alice", "{form}");
    }
}
