//! A standard OpenID Connect relying party (the `openidconnect` crate, no special cases) against
//! Tether: discovery, the authorization code flow with PKCE, and id_token validation.

use crate::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl,
    Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse,
};

/// The relying party's HTTP client: reqwest, trusting the test CA.
fn http_client(
    client: reqwest::Client,
) -> impl Fn(
    HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, reqwest::Error>>>,
> {
    move |request: HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body).unwrap())
        })
    }
}

#[tokio::test]
async fn discovery_code_flow_with_pkce_and_id_token_validation() {
    let world = World::start(|_, _| {}).await;
    let http = http_client(world.client.clone());
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(world.issuer()).unwrap(), &http)
            .await
            .expect("discovery succeeds");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(CLIENT_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();

    // The browser, logged in to the app as erin, follows the authorization URL.
    let response = world
        .client
        .get(authorize_url.as_str())
        .header("cookie", "session=erin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let back = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(RP_REDIRECT), "{back}");
    let params: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(&params["state"], csrf.secret());

    let token = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("the token endpoint is known from discovery")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code exchange succeeds");
    let id_token = token.id_token().expect("an id_token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the id_token validates: signature from the JWKS, iss, aud, azp, exp, nonce");
    assert_eq!(claims.subject().as_str(), "erin");
    assert_eq!(claims.email().map(|e| e.as_str()), Some("erin@example.com"));
    assert_eq!(claims.issuer().as_str(), world.issuer());
}
