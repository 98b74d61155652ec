//! The popup flow: LivePerson's window sends the browser to `GET /.tether/oauth/authorize`.

use crate::jose_check::*;
use crate::*;

fn location(response: &reqwest::Response) -> url::Url {
    assert_eq!(response.status(), 302, "a redirect");
    assert_eq!(response.headers()["cache-control"], "no-store");
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn pairs(text: Option<&str>) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(text.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn authorize_url(world: &World, query: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    format!("{}?{query}", world.url("/oauth/authorize"))
}

#[tokio::test]
async fn an_anonymous_browser_logs_in_and_comes_back_with_a_code() {
    let world = World::start(|_, _| {}).await;
    let query = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", "https://liveperson.net"),
        ("state", "opaque state/with spaces"),
        ("nonce", "nonce-123"),
    ];
    let url = authorize_url(&world, &query);
    // Nobody logged in: to the app's login page, carrying the way back.
    let response = world.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let login = response.headers()["location"].to_str().unwrap().to_string();
    assert!(login.starts_with("/login?return_to="), "{login}");
    let back = pairs(login.split_once('?').map(|(_, q)| q))["return_to"].clone();
    assert!(back.starts_with("/.tether/oauth/authorize?"), "{back}");

    // After logging in, the same address answers with a code for the user, state echoed.
    let response = world
        .client
        .get(format!("{}{back}", world.tether.https))
        .header("cookie", "session=carol")
        .send()
        .await
        .unwrap();
    let target = location(&response);
    assert_eq!(target.host_str(), Some("liveperson.net"));
    let answer = pairs(target.query());
    assert_eq!(answer["state"], "opaque state/with spaces");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", "https://liveperson.net"),
    ];
    let claims = world.redeemed_claims(&form).await;
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["nonce"], "nonce-123");
}

#[tokio::test]
async fn id_token_and_token_answers_travel_in_the_fragment() {
    let world = World::start(|_, _| {}).await;
    // Legacy connectors' window reads the JWT as `token`; standard clients as `access_token`.
    for (response_type, field) in [
        ("id_token", "id_token"),
        ("token", "token"),
        ("token", "access_token"),
    ] {
        let url = authorize_url(
            &world,
            &[
                ("response_type", response_type),
                ("client_id", CLIENT_ID),
                ("redirect_uri", RP_REDIRECT),
                ("state", "s1"),
                ("nonce", "n1"),
            ],
        );
        let response = world
            .client
            .get(&url)
            .header("cookie", "session=dave")
            .send()
            .await
            .unwrap();
        let target = location(&response);
        assert_eq!(target.query(), None, "nothing in the query");
        let answer = pairs(target.fragment());
        assert_eq!(answer["state"], "s1");
        let claims = verify(
            &answer[field],
            &world.jwks().await,
            &world.issuer(),
            CLIENT_ID,
        );
        assert_eq!(claims["sub"], "dave");
        assert_eq!(claims["nonce"], "n1");
    }
}

#[tokio::test]
async fn bad_clients_and_redirects_are_shown_errors_never_redirected() {
    let world = World::start(|_, _| {}).await;
    let base = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", "https://liveperson.net"),
    ];
    let with = |name: &'static str, value: &'static str| {
        let mut query: Vec<(&str, &str)> =
            base.iter().filter(|(n, _)| *n != name).copied().collect();
        query.push((name, value));
        authorize_url(&world, &query)
    };
    for url in [
        with("client_id", "unknown"),
        with("redirect_uri", "https://evil.example/cb"),
    ] {
        let response = world
            .client
            .get(&url)
            .header("cookie", "session=alice")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get("location").is_none());
    }
    // A bad response_type or PKCE method goes back to the (registered) client as an error.
    for (url, error) in [
        (with("response_type", "magic"), "unsupported_response_type"),
        (with("code_challenge_method", "S512"), "invalid_request"),
    ] {
        let response = world
            .client
            .get(&url)
            .header("cookie", "session=alice")
            .send()
            .await
            .unwrap();
        let answer = pairs(location(&response).query());
        assert_eq!(answer["error"], error);
    }
    // prompt=none with nobody logged in: login_required, not the login page.
    let response = world
        .client
        .get(with("prompt", "none"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        pairs(location(&response).query())["error"],
        "login_required"
    );
}

/// Connectors created before May 2018 send LivePerson's window URL with per-visitor
/// parameters, and `https://liveperson.net` when they redeem the code: allowed only through a
/// registered prefix (opt-in); anything else is refused and shown, never redirected to.
#[tokio::test]
async fn legacy_windows_are_allowed_by_a_registered_prefix_only() {
    let window = "https://lpcdn.example/le_unauth/window";
    let world = World::start(|config, _| {
        config.liveperson.redirect_uri_prefixes = vec![window.into()];
    })
    .await;
    let per_visitor = format!("{window}?visitorId=v123&sessionId=s9");
    let response = world
        .client
        .get(authorize_url(
            &world,
            &[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", &per_visitor),
                ("state", "st"),
            ],
        ))
        .header("cookie", "session=erin")
        .send()
        .await
        .unwrap();
    let target = location(&response);
    let answer = pairs(target.query());
    assert_eq!(
        answer["visitorId"], "v123",
        "the window's own parameters are kept"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", answer["code"].as_str()),
        ("redirect_uri", "https://liveperson.net"),
    ];
    assert_eq!(world.redeemed_claims(&form).await["sub"], "erin");

    for outside in [
        format!("{window}s?visitorId=1"),
        "https://lpcdn.example.evil.com/le_unauth/window".to_string(),
    ] {
        let response = world
            .client
            .get(authorize_url(
                &world,
                &[
                    ("response_type", "code"),
                    ("client_id", CLIENT_ID),
                    ("redirect_uri", &outside),
                ],
            ))
            .header("cookie", "session=erin")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{outside}");
        assert!(response.headers().get("location").is_none());
    }
}
