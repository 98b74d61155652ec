//! The answers Tether's own endpoints give (complete, small bodies): private JSON (never stored,
//! varies by credentials, no CORS grant), public documents, scripts and redirects, and the
//! cross-site check. Below the router, the vendors and the refusals, which all use them.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

/// A complete answer written by Tether.
pub type Reply = Response<Full<Bytes>>;

/// A complete answer with a content type.
pub fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON answer private to the caller: never stored, varies by credentials, no CORS grant.
pub fn private_json(status: StatusCode, body: &serde_json::Value) -> Reply {
    private_json_bytes(status, Bytes::from(body.to_string()))
}

/// `private_json` for a body already serialised (an empty one for 204).
pub fn private_json_bytes(status: StatusCode, body: Bytes) -> Reply {
    let mut response = full(status, "application/json", body);
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

/// Public documents (discovery, JWKS): cacheable for five minutes, readable cross-origin.
pub fn public_json(body: Bytes) -> Reply {
    let mut response = full(StatusCode::OK, "application/json", body);
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A page script with its caching rule (`no-cache` for scripts that change with the
/// configuration, `public, max-age=300` for the loader).
pub fn script(source: Bytes, cache_control: &'static str) -> Reply {
    let mut response = full(
        StatusCode::OK,
        "application/javascript; charset=utf-8",
        source,
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// A 302 that leaks nothing: not stored, no referrer. None when `location` is not a valid
/// header value.
pub fn redirect(location: &str) -> Option<Reply> {
    let mut response = full(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).ok()?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Some(response)
}

/// Whether a third-party page made the request with the user's cookies (`Sec-Fetch-Site:
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
