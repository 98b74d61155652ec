//! `source = "jwt"`: tokens from a gateway header or the app's cookie, verified against the
//! stand-in issuer's keys, for every asymmetric algorithm; every check that must refuse a token
//! does (401, counted by reason); keys fetched at start, again for a rotated key, served stale
//! when the issuer goes down, and readiness saying when none could be fetched.

use crate::support::issuer::{claims, now, Issuer, TestKey, AUDIENCE, ISSUER};
use crate::support::wait_until;
use crate::World;
use jsonwebtoken::Algorithm;
use std::time::Duration;

const HEADER: &str = "x-test-assertion";

fn verifying(issuer: &Issuer) -> impl FnOnce(&mut tether::Config) + '_ {
    move |config: &mut tether::Config| {
        let identity = &mut config.identity;
        identity.source = tether::config::IdentitySource::Jwt;
        identity.jwt_header = Some(http::HeaderName::from_static(HEADER));
        identity.jwks_url = issuer.jwks_url();
        identity.jwt_issuer = ISSUER.into();
        identity.jwt_audience = AUDIENCE.into();
    }
}

#[tokio::test]
async fn every_asymmetric_algorithm_is_verified() {
    let keys: Vec<TestKey> = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .map(|alg| TestKey::new(alg, &format!("{alg:?}-key")))
    .collect();
    let issuer = Issuer::start(&keys.iter().collect::<Vec<_>>()).await;
    let world = World::start(verifying(&issuer)).await;
    for key in &keys {
        let user = format!("user-{}", key.alg_name);
        let token = key.sign(&claims(&user));
        assert_eq!(
            world.who(&[(HEADER, &token)]).await,
            Ok((user.clone(), Some(format!("User {user}")))),
            "{}",
            key.alg_name
        );
    }
    // No token: nobody; the app's identity headers from the client change nothing.
    assert_eq!(world.who(&[]).await, Err(401));
    assert_eq!(
        world.who(&[("x-authenticated-user", "mallory")]).await,
        Err(401)
    );
    assert_eq!(issuer.fetches(), 1, "fetched once, at start");
}

#[tokio::test]
async fn tokens_that_fail_a_check_name_nobody() {
    let rsa = TestKey::new(Algorithm::RS256, "rsa");
    let ec = TestKey::new(Algorithm::ES256, "ec");
    let stranger = TestKey::new(Algorithm::RS256, "stranger");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let world = World::start(verifying(&issuer)).await;
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = claims("alice");
        change(&mut claims);
        claims
    };
    let none_token = {
        use base64::Engine;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none", "kid": "rsa"})),
            b64(claims("alice"))
        )
    };
    // HS256 "signed" with the issuer's public key as the secret: the classic confusion.
    let confused = {
        let key = jsonwebtoken::EncodingKey::from_secret(rsa.public_pem.as_bytes());
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("rsa".into());
        jsonwebtoken::encode(&header, &claims("alice"), &key).unwrap()
    };
    let tampered = {
        let token = rsa.sign(&claims("alice"));
        let forged = rsa.sign(&claims("mallory"));
        let mut parts: Vec<&str> = forged.split('.').collect();
        parts[2] = token.rsplit('.').next().unwrap();
        parts.join(".")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            rsa.sign(&with(&|c| c["exp"] = (now() - 120).into())),
        ),
        (
            "expired",
            rsa.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "not_yet_valid",
            rsa.sign(&with(&|c| c["nbf"] = (now() + 600).into())),
        ),
        (
            "issuer",
            rsa.sign(&with(&|c| c["iss"] = "https://evil.test/".into())),
        ),
        (
            "audience",
            rsa.sign(&with(&|c| c["aud"] = "another-app".into())),
        ),
        (
            "no_user",
            ec.sign(&with(&|c| c["sub"] = serde_json::json!({"id": 1}))),
        ),
        ("algorithm", none_token),
        ("algorithm", confused),
        ("signature", tampered),
        ("unknown_key", stranger.sign(&claims("alice"))),
        ("malformed", "not.a.jwt".into()),
    ];
    for (reason, token) in &cases {
        let before = world
            .counted("tether_identity_tokens_refused_total", reason)
            .await;
        assert_eq!(
            world.who(&[(HEADER, token)]).await,
            Err(401),
            "{reason}: {token}"
        );
        let after = world
            .counted("tether_identity_tokens_refused_total", reason)
            .await;
        assert_eq!(after, before + 1, "{reason} counted");
    }
    // Within the leeway (a minute) a token is still good.
    let leeway = rsa.sign(&with(&|c| c["exp"] = (now() - 30).into()));
    assert!(world.who(&[(HEADER, &leeway)]).await.is_ok());
    // Given twice: ambiguous.
    let good = rsa.sign(&claims("alice"));
    let twice = world
        .client
        .get(format!("{}/.tether/zendesk/jwt", world.tether.https))
        .header(HEADER, &good)
        .header(HEADER, &good)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 401);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_for_its_first_token() {
    let old = TestKey::new(Algorithm::ES256, "2026-old");
    let new = TestKey::new(Algorithm::ES256, "2026-new");
    let issuer = Issuer::start(&[&old]).await;
    let world = World::start(verifying(&issuer)).await;
    assert!(world
        .who(&[(HEADER, &old.sign(&claims("alice")))])
        .await
        .is_ok());
    assert_eq!(issuer.fetches(), 1);
    issuer.publish(&new);
    assert_eq!(
        world.who(&[(HEADER, &new.sign(&claims("bob")))]).await,
        Ok(("bob".into(), Some("User bob".into())))
    );
    assert_eq!(
        issuer.fetches(),
        2,
        "the unknown kid fetched the JWKS again"
    );
    // Another unknown kid within the minute: refused without asking the issuer again.
    let random = TestKey::new(Algorithm::ES256, "random-kid");
    assert_eq!(
        world.who(&[(HEADER, &random.sign(&claims("eve")))]).await,
        Err(401)
    );
    assert_eq!(issuer.fetches(), 2, "at most one refetch a minute");
    assert!(world
        .who(&[(HEADER, &old.sign(&claims("alice")))])
        .await
        .is_ok());
}

#[tokio::test]
async fn the_issuer_down_at_start_then_back_then_down_again() {
    let key = TestKey::new(Algorithm::RS256, "k1");
    let issuer = Issuer::start(&[&key]).await;
    issuer.set_down(true);
    let world = World::start(verifying(&issuer)).await;
    let readyz = format!("{}/readyz", world.tether.admin);
    wait_until(
        "readiness says the keys are missing",
        Duration::from_secs(10),
        || async {
            let response = reqwest::get(&readyz).await.unwrap();
            response.status() == 503
                && response
                    .text()
                    .await
                    .unwrap()
                    .contains("the token issuer's keys could not be fetched")
        },
    )
    .await;
    let token = key.sign(&claims("alice"));
    assert_eq!(
        world.who(&[(HEADER, &token)]).await,
        Err(503),
        "no keys yet: try again"
    );

    issuer.set_down(false);
    wait_until(
        "readiness recovers with the issuer",
        Duration::from_secs(10),
        || async { reqwest::get(&readyz).await.unwrap().status() == 200 },
    )
    .await;
    assert!(world.who(&[(HEADER, &token)]).await.is_ok());

    // Down again later: kept keys serve; a rotation cannot be fetched and says so.
    issuer.set_down(true);
    assert!(world.who(&[(HEADER, &token)]).await.is_ok(), "served stale");
    let unknown = TestKey::new(Algorithm::RS256, "k2").sign(&claims("bob"));
    assert_eq!(world.who(&[(HEADER, &unknown)]).await, Err(401));
    let report = reqwest::get(&readyz).await.unwrap();
    assert_eq!(report.status(), 200, "kept keys still serve");
    let report: serde_json::Value = report.json().await.unwrap();
    assert!(
        report["warnings"]["identity_keys_stale"]
            .as_str()
            .unwrap()
            .contains("serving kept keys"),
        "{report}"
    );
}

#[tokio::test]
async fn a_cookie_source_reads_the_cookie_only() {
    let key = TestKey::new(Algorithm::EdDSA, "session-key");
    let issuer = Issuer::start(&[&key]).await;
    let world = World::start(|config| {
        verifying(&issuer)(config);
        config.identity.jwt_cookie = "app_session".into();
    })
    .await;
    let token = key.sign(&claims("alice"));
    assert_eq!(
        world.who(&[(HEADER, &token)]).await,
        Err(401),
        "a header is ignored"
    );
    assert_eq!(
        world
            .who(&[("cookie", &format!("theme=dark; app_session={token}"))])
            .await,
        Ok(("alice".into(), Some("User alice".into())))
    );
    // The app still gets its own cookie: Tether forwards requests as they came.
    let _ = world
        .client
        .get(format!("{}/echo/cookie", world.tether.https))
        .header("cookie", format!("app_session={token}"))
        .send()
        .await
        .unwrap();
    assert!(world
        .app
        .last("/echo/cookie")
        .header("cookie")
        .unwrap()
        .contains(&token));
}

#[tokio::test]
async fn aws_alb_tokens_are_padded_and_name_their_signer() {
    let key = TestKey::new(Algorithm::ES256, "0c5a4c0e-alb-key");
    let issuer = Issuer::start(&[&key]).await;
    let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/50dc6c495c0c9188";
    let world = World::start(|config| {
        let identity = &mut config.identity;
        identity.source = tether::config::IdentitySource::Jwt;
        identity.jwt_preset = Some(tether::config::JwtPreset::AwsAlb);
        identity.jwt_region = "eu-west-1".into();
        identity.jwt_signer = arn.into();
        identity.jwt_issuer = ISSUER.into();
        // The regional key URL, pointed at the stand-in.
        identity.jwks_url = issuer.alb_url();
    })
    .await;
    let header = |signer: &str| {
        serde_json::json!({
            "typ": "JWT", "kid": key.kid, "alg": "ES256", "iss": ISSUER,
            "client": "client-id", "signer": signer, "exp": now() + 120,
        })
    };
    let mut claims = claims("alice");
    claims.as_object_mut().unwrap().remove("aud");
    let token = key.sign_raw(&header(arn), &claims, true);
    assert!(token.contains('='), "ALB pads its segments: {token}");
    assert_eq!(
        world.who(&[("x-amzn-oidc-data", &token)]).await,
        Ok(("alice".into(), Some("User alice".into())))
    );
    let other_alb = key.sign_raw(
        &header("arn:aws:elasticloadbalancing:eu-west-1:999:loadbalancer/app/evil/1"),
        &claims,
        true,
    );
    assert_eq!(
        world.who(&[("x-amzn-oidc-data", &other_alb)]).await,
        Err(401)
    );
    assert_eq!(
        world
            .counted("tether_identity_tokens_refused_total", "signer")
            .await,
        1
    );
}
