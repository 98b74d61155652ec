//! Stand-ins for the vendors' page scripts, served by the sandbox at `/sandbox/widget/...`, so
//! `tether demo` and the browser tests show both vendors working on a page with no Tether code:
//!
//! - `livechat.js` plays LiveChat's widget (`inject.livechat_widget_src`): it reads `__lc`, calls
//!   the custom identity provider as `@livechat/customer-sdk` does (hasToken, getToken, a fresh
//!   token when an hour or less is left, the identity-mismatch check on a second getToken), asks
//!   the sandbox whose token it got, and draws a bubble naming the verified customer.
//! - `lptag.js` plays LivePerson's lpTag (`inject.liveperson_tag_src`): it calls the identity
//!   function, then the authentication method, checks the JWT's signature against the issuer's
//!   JWKS (WebCrypto) and its `iss`/`sub` against the identity, and draws a bubble.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The script at `path`, if it is one of the stand-ins.
pub fn script(path: &str) -> Option<Response<Full<Bytes>>> {
    let source = match path {
        "/sandbox/widget/livechat.js" => include_str!("livechat-widget.js"),
        "/sandbox/widget/lptag.js" => include_str!("lptag.js"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(source.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}
