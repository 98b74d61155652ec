//! The agent's OAuth token: the Owner's consent (`GET /`), the code and refresh grants
//! (`POST /v2/token`) and `GET /v2/info`.

use super::{identity_error, json, oauth_error, AgentToken, Call, Reply, State};
use http::{header, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// `GET /?response_type=code&client_id=..&redirect_uri=..&state=..`: LiveChat's sign-in page.
/// The sandbox's Owner is always signed in and consents: a 302 to the redirect with `code` and
/// `state`. A client or redirect LiveChat does not know is shown, never redirected to.
pub(super) fn consent(state: &State, call: &Call) -> Reply {
    let query = call.query_pairs();
    let config = &state.config;
    if query.get("response_type").map(String::as_str) != Some("code") {
        return page(StatusCode::BAD_REQUEST, "response_type must be code");
    }
    if query.get("client_id") != Some(&config.client_id) {
        return page(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let Some(redirect) = query
        .get("redirect_uri")
        .filter(|uri| config.redirect_uris.contains(uri))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not on the app's list (Developer Console, Authorization)",
        );
    };
    let code = state.token("code-");
    state.books().codes.insert(code.clone(), redirect.clone());
    let mut location = format!(
        "{redirect}{}code={code}",
        if redirect.contains('?') { '&' } else { '?' }
    );
    if let Some(value) = query.get("state") {
        location.push_str("&state=");
        location.push_str(
            &percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    let mut reply = json(StatusCode::FOUND, serde_json::json!({}));
    reply.headers_mut().insert(
        header::LOCATION,
        location.parse().expect("a valid location"),
    );
    reply
}

fn page(status: StatusCode, message: &str) -> Reply {
    json(status, serde_json::json!({ "error": message }))
}

/// `POST /v2/token`: `refresh_token` or `authorization_code`, form or JSON.
pub(super) fn token(state: &State, call: &Call) -> Reply {
    let form = call.fields();
    let config = &state.config;
    if form.get("client_id") != Some(&config.client_id)
        || form.get("client_secret") != Some(&config.client_secret)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client credentials",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => refresh(state, form.get("refresh_token")),
        Some("authorization_code") => exchange(state, form.get("code"), form.get("redirect_uri")),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "refresh_token or authorization_code",
        ),
    }
}

fn refresh(state: &State, refresh_token: Option<&String>) -> Reply {
    let mut books = state.books();
    let Some(at) = refresh_token.and_then(|t| books.refresh_tokens.iter().position(|r| r == t))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "refresh token not valid",
        );
    };
    state.counters.agent_refreshes.fetch_add(1, Relaxed);
    let refresh_token = if state.config.rotate_refresh_token {
        // The old one stops working.
        books.refresh_tokens.remove(at);
        let rotated = state.token("sandbox-refresh-");
        books.refresh_tokens.push(rotated.clone());
        rotated
    } else {
        books.refresh_tokens[at].clone()
    };
    drop(books);
    grant(state, refresh_token)
}

fn exchange(state: &State, code: Option<&String>, redirect_uri: Option<&String>) -> Reply {
    let mut books = state.books();
    let Some(bound) = code.and_then(|code| books.codes.remove(code)) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "the code is unknown or was used",
        );
    };
    if redirect_uri != Some(&bound) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri differs from the one the code was issued for",
        );
    }
    state.counters.codes_exchanged.fetch_add(1, Relaxed);
    let refresh_token = state.token("sandbox-refresh-");
    books.refresh_tokens.push(refresh_token.clone());
    drop(books);
    grant(state, refresh_token)
}

/// A new agent access token with the app's scopes, and the refresh token to keep.
fn grant(state: &State, refresh_token: String) -> Reply {
    let config = &state.config;
    let access = state.token("agent-");
    state.books().agent_tokens.insert(
        access.clone(),
        AgentToken {
            expires: Instant::now() + Duration::from_secs(config.agent_token_ttl),
            scope: config.agent_scope.clone(),
        },
    );
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access,
            "refresh_token": refresh_token,
            "expires_in": config.agent_token_ttl,
            "token_type": "Bearer",
            "scope": config.agent_scope,
            "account_id": "sandbox-agent",
            "organization_id": config.organization_id,
        }),
    )
}

/// `GET /v2/info`: the token's scope.
pub(super) fn info(state: &State, call: &Call) -> Reply {
    state.counters.info_calls.fetch_add(1, Relaxed);
    match state.agent_scope(&call.headers) {
        Some(scope) => json(
            StatusCode::OK,
            serde_json::json!({ "scope": scope, "expires_in": state.config.agent_token_ttl }),
        ),
        None => identity_error("the agent's token is not known"),
    }
}
