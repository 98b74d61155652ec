//! The served `identity.js` in a real browser (headless Chromium), called the way LivePerson's
//! tag calls it, with users switching on one browser.

use crate::jose_check::*;
use crate::support::browser::{chromium, page_result};
use crate::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn identity_script_in_jwt_mode() {
    let Some(chromium) = chromium() else { return };
    let world = World::start(|_, _| {}).await;
    let result = page_result(chromium, format!("{}/page/lp.html", world.tether.https)).await;
    assert!(result.get("error").is_none(), "{result}");
    assert_eq!(result["identityFunctions"], 1);
    assert_eq!(result["methodType"], "function");
    assert_eq!(result["anonymousIdentity"], Value::Null);
    assert_eq!(
        result["anonymousAuth"],
        json!({"answer": "", "reason": "not_authenticated"})
    );
    let jwks = world.jwks().await;
    for user in ["alice", "bob"] {
        let identity = &result[format!("{user}Identity")];
        assert_eq!(
            identity,
            &json!({"iss": world.issuer(), "acr": "loa1", "sub": user})
        );
        let jwt = result[format!("{user}Auth")]["answer"].as_str().unwrap();
        let claims = verify(jwt, &jwks, &world.issuer(), CLIENT_ID);
        assert_eq!(
            claims["sub"], user,
            "the token matches the identity function's iss and sub"
        );
        assert_eq!(claims["iss"], identity["iss"]);
    }
}

#[tokio::test]
async fn identity_script_in_code_mode_with_pkce_and_a_custom_method_name() {
    let Some(chromium) = chromium() else { return };
    let world = World::start(|config, _| {
        config.liveperson.page_flow = tether::config::PageFlow::Code;
        config.liveperson.auth_method = "brandGetLpCode".into();
    })
    .await;
    let verifier = "a-verifier-that-is-long-enough-for-rfc-7636-rules-0123";
    let challenge = b64e(&Sha256::digest(verifier.as_bytes()));
    let url = format!(
        "{}/page/lp.html?method=brandGetLpCode&challenge={challenge}",
        world.tether.https
    );
    let result = page_result(chromium, url).await;
    assert!(result.get("error").is_none(), "{result}");
    assert_eq!(result["anonymousAuth"]["reason"], "not_authenticated");
    for user in ["alice", "bob"] {
        let answer = &result[format!("{user}Auth")]["answer"];
        assert_eq!(answer["redirect_uri"], "https://liveperson.net");
        let code = answer["ssoKey"].as_str().unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://liveperson.net"),
            ("code_verifier", verifier),
        ];
        let claims = world.redeemed_claims(&form).await;
        assert_eq!(claims["sub"], user);
    }
}
