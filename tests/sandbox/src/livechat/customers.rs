//! `POST /v2/customer/token`: the `agent_token` and `cookie` grants.

use super::{has_scope, identity_error, json, oauth_error, Books, Call, Reply, State};
use http::{header, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

pub(super) fn token(state: &State, call: &Call) -> Reply {
    state.counters.customer_token_calls.fetch_add(1, Relaxed);
    let request = call.fields();
    let config = &state.config;
    if request.get("client_id") != Some(&config.client_id) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    if request.get("response_type").map(String::as_str) != Some("token") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type must be token",
        );
    }
    match request.get("grant_type").map(String::as_str) {
        Some("agent_token") => agent_grant(state, call, &request),
        Some("cookie") => cookie_grant(state, call, &request),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "agent_token or cookie",
        ),
    }
}

fn agent_grant(state: &State, call: &Call, request: &HashMap<String, String>) -> Reply {
    let Some(scope) = state.agent_scope(&call.headers) else {
        return identity_error("the agent's token is not known");
    };
    if !has_scope(&scope, "customers:own") {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the agent token lacks the customers:own scope",
        );
    }
    let mut books = state.books();
    let entity = match request.get("entity_id") {
        Some(entity) if books.customers.contains_key(entity) => entity.clone(),
        Some(_) => return identity_error("unknown customer"),
        None => new_customer(state, &mut books),
    };
    issue(state, &mut books, entity, None)
}

fn cookie_grant(state: &State, call: &Call, request: &HashMap<String, String>) -> Reply {
    let config = &state.config;
    if request.get("organization_id") != Some(&config.organization_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "organization_id is required",
        );
    }
    let cookies = request_cookies(&call.headers);
    let mut books = state.books();
    let entity = match (cookies.get("__lc_cid"), cookies.get("__lc_cst")) {
        (Some(cid), Some(cst)) => match books.customers.get(cid) {
            Some(secret) if secret == cst => cid.clone(),
            _ => return identity_error("unknown customer"),
        },
        _ => new_customer(state, &mut books),
    };
    if config.rotate_cookie_secret {
        books.customers.insert(entity.clone(), state.token("cst-"));
    }
    let secret = books.customers[&entity].clone();
    issue(state, &mut books, entity, Some(secret))
}

fn new_customer(state: &State, books: &mut Books) -> String {
    let entity = state.uuid();
    books.customers.insert(entity.clone(), state.token("cst-"));
    state.counters.customers_created.fetch_add(1, Relaxed);
    entity
}

fn request_cookies(headers: &http::HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn issue(state: &State, books: &mut Books, entity: String, cookie_secret: Option<String>) -> Reply {
    let token = format!("dal:{}", state.token("ct-"));
    books.customer_tokens.insert(token.clone(), entity.clone());
    let mut response = json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": token,
            "client_id": state.config.client_id,
            "entity_id": entity,
            "expires_in": state.config.customer_token_ttl,
            "token_type": "Bearer",
            "organization_id": state.config.organization_id,
        }),
    );
    if let Some(secret) = cookie_secret {
        for (name, value) in [("__lc_cid", entity.as_str()), ("__lc_cst", secret.as_str())] {
            let cookie = format!("{name}={value}; Path=/v2/customer; Max-Age=63072000; HttpOnly; Secure; SameSite=None");
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.parse().expect("valid cookie"));
        }
    }
    response
}
