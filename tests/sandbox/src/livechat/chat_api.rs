//! The Chat API's `update_customer` (agent and customer), with the Chat API's own error shape
//! (`{"error": {"type", "message"}}`) and regions: with a region set, a call on the global host
//! is `misdirected_request` naming the region, and `/region/{region}/...` is the regional host.

use super::{has_scope, json, Call, Reply, State};
use http::StatusCode;
use std::sync::atomic::Ordering::Relaxed;

pub(super) fn update_customer(state: &State, call: &Call) -> Reply {
    let (region, path) = match call.path.strip_prefix("/region/") {
        Some(rest) => match rest.split_once('/') {
            Some((region, path)) => (Some(region), format!("/{path}")),
            None => return refused(state, StatusCode::NOT_FOUND, "not_found", "no such host"),
        },
        None => (None, call.path.clone()),
    };
    if let Some(expected) = &state.config.region {
        if region != Some(expected.as_str()) {
            state.counters.chat_api_refusals.fetch_add(1, Relaxed);
            return json(
                StatusCode::MISDIRECTED_REQUEST,
                serde_json::json!({ "error": {
                    "type": "misdirected_request",
                    "message": "Wrong region",
                    "data": { "region": expected },
                }}),
            );
        }
    }
    match path.as_str() {
        "/v3.6/agent/action/update_customer" => agent(state, call),
        "/v3.6/customer/action/update_customer" => customer(state, call),
        _ => refused(state, StatusCode::NOT_FOUND, "not_found", "no such action"),
    }
}

fn agent(state: &State, call: &Call) -> Reply {
    let Some(scope) = state.agent_scope(&call.headers) else {
        return refused(
            state,
            StatusCode::UNAUTHORIZED,
            "authentication",
            "Invalid access token",
        );
    };
    if !has_scope(&scope, "customers:rw") {
        return refused(
            state,
            StatusCode::FORBIDDEN,
            "authorization",
            "The access token lacks the customers:rw scope",
        );
    }
    record(state, &call.body)
}

fn customer(state: &State, call: &Call) -> Reply {
    let known = super::bearer(&call.headers)
        .is_some_and(|token| state.books().customer_tokens.contains_key(token));
    if !known {
        return refused(
            state,
            StatusCode::UNAUTHORIZED,
            "authentication",
            "invalid customer token",
        );
    }
    if call.query != format!("organization_id={}", state.config.organization_id) {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "validation",
            "organization_id is required",
        );
    }
    record(state, &call.body)
}

fn refused(state: &State, status: StatusCode, kind: &str, message: &str) -> Reply {
    state.counters.chat_api_refusals.fetch_add(1, Relaxed);
    json(
        status,
        serde_json::json!({ "error": { "type": kind, "message": message } }),
    )
}

fn record(state: &State, body: &[u8]) -> Reply {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) if value.is_object() => {
            state.books().metadata.push(value);
            json(StatusCode::OK, serde_json::json!({}))
        }
        _ => refused(
            state,
            StatusCode::BAD_REQUEST,
            "validation",
            "a JSON object is required",
        ),
    }
}
