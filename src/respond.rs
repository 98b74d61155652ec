//! The answers Tether's own endpoints give: private JSON (never stored, no CORS grant), refusals
//! with their status codes, and the cross-site check. The router and both vendors use these.

use crate::identity::IdentityError;
use crate::proxy::ResponseBody;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

/// The identity lookup failed: fail closed, never as someone else.
pub fn identity_failure(err: IdentityError) -> Response<ResponseBody> {
    tracing::warn!(error = %err, "identity lookup failed");
    match err {
        IdentityError::Unavailable(_) | IdentityError::Busy => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, "identity_unavailable")
        }
        IdentityError::Invalid(_) => refusal(StatusCode::BAD_GATEWAY, "identity_invalid"),
    }
}

/// Refuses requests a third-party page made with the user's cookies (`Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host is not this site's).
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host);
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true, // "null" or unparseable origins
    }
}

/// A JSON answer private to the caller: never stored, varies by credentials, no CORS grant.
pub fn private_json(status: StatusCode, body: Option<serde_json::Value>) -> Response<ResponseBody> {
    let body = body.map_or_else(bytes::Bytes::new, |body| {
        bytes::Bytes::from(body.to_string())
    });
    private_json_bytes(status, body)
}

/// `private_json` for a body already serialised.
pub fn private_json_bytes(status: StatusCode, body: bytes::Bytes) -> Response<ResponseBody> {
    let mut response = crate::proxy::full(status, "application/json", body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Authorization"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `{"error": code}`; a 503 says when to come back.
pub fn refusal(status: StatusCode, code: &str) -> Response<ResponseBody> {
    let mut response = private_json(status, Some(serde_json::json!({ "error": code })));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

pub fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = refusal(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
