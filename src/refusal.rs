//! Every refusal a client can see, each with its status, error code and `Retry-After`, and the
//! one place they become HTTP answers (`Refusal::into_reply`). Handlers return
//! `Result<Reply, Refusal>` and use `?`; the proxy's own refusals at its edge are here too.
//!
//! The JSON is `{"error": code}`, with `"error_description"` where a description helps the
//! caller fix the request (the OAuth refusals use RFC 6749's names and shape). Every answer is
//! private to the caller: never stored, no CORS grant.

use crate::respond::{private_json, Reply};

/// What an endpoint gives: its answer, or a refusal.
pub type Answer = Result<Reply, Refusal>;
use http::{header, HeaderValue, Method, StatusCode};
use std::borrow::Cow;
use std::time::Duration;

/// How long a caller is asked to wait after a temporary failure (a vendor or the store down).
const COME_BACK_IN: Duration = Duration::from_secs(5);
/// After a burst that filled the identity probes: a short wait, the burst is usually over.
const PROBES_BUSY_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    // The caller.
    /// 401: nobody is signed in.
    NotAuthenticated,
    /// 403: a third-party page asked with the user's cookies.
    CrossSite,
    /// 404: nothing under the prefix answers this path.
    NotFound,
    /// 405, with the methods that are allowed.
    MethodNotAllowed(&'static [Method]),
    /// 400: the Host header cannot make an issuer URL.
    InvalidHost,
    /// 404: the endpoint needs configuration that is absent (the code: what is missing).
    NotConfigured(&'static str),

    // The proxy's edge.
    /// 400: a disguised spelling of the reserved prefix.
    DisguisedReservedPath,
    /// 400, connection closed: HTTP/1 `Content-Length` with `Transfer-Encoding`.
    AmbiguousLength,
    /// 431: an HTTP/2 header list over `limits.max_header_bytes`.
    HeadersTooLarge,
    /// 413: a body over `limits.max_body_bytes`.
    BodyTooLarge,
    /// 400: a request target Tether cannot forward.
    BadRequestTarget,
    /// 400: the client's body broke off or was malformed.
    BadRequestBody,
    /// 502: the app cannot be reached.
    UpstreamUnavailable,
    /// 504: the app did not answer within `response_header_timeout`.
    UpstreamTimeout,
    /// 502: the app's answer broke off.
    UpstreamError,
    /// 502: the app switched protocols nobody asked for.
    UnexpectedUpgrade,

    // Who is signed in.
    /// 503: the app did not answer the identity question in time.
    IdentityUnavailable,
    /// 503: every identity probe is in flight and the queue did not move.
    IdentityBusy,
    /// 502: the app's answer about the user cannot be trusted.
    IdentityInvalid,

    // Vendors and the store.
    /// 503: the vendor (by name) is unreachable or failing; try again.
    VendorUnavailable(&'static str),
    /// 502: the vendor refused Tether's call (credentials, scopes).
    VendorRejected(&'static str),
    /// 502: the vendor does not know the customer on record (never replaced: it would split
    /// the person's history).
    CustomerUnknown(&'static str),
    /// 503: the store does not answer.
    StoreUnavailable,
    /// 500: a token could not be signed.
    SigningFailed,

    // OAuth 2.0 (RFC 6749 section 5.2 names).
    /// 400 `invalid_request`.
    InvalidRequest(Cow<'static, str>),
    /// 400 `invalid_grant`.
    InvalidGrant(Cow<'static, str>),
    /// 401 `invalid_client`, with `WWW-Authenticate: Basic`.
    InvalidClient(Cow<'static, str>),
    /// 400 `invalid_client`: the authorization endpoint was named a client it does not know
    /// (shown to the user, never redirected: RFC 6749 section 4.1.2.1).
    UnknownClient,
    /// 400 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// 429 `slow_down`: too many failed client authentications.
    SlowDown(Duration),
    /// 503 `temporarily_unavailable`.
    TemporarilyUnavailable,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        use Refusal::*;
        match self {
            NotAuthenticated | InvalidClient(_) => StatusCode::UNAUTHORIZED,
            CrossSite => StatusCode::FORBIDDEN,
            NotFound | NotConfigured(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            InvalidHost
            | DisguisedReservedPath
            | AmbiguousLength
            | BadRequestTarget
            | BadRequestBody
            | InvalidRequest(_)
            | InvalidGrant(_)
            | UnsupportedGrantType
            | UnknownClient => StatusCode::BAD_REQUEST,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UpstreamUnavailable | UpstreamError | UnexpectedUpgrade | IdentityInvalid
            | VendorRejected(_) | CustomerUnknown(_) => StatusCode::BAD_GATEWAY,
            UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            IdentityUnavailable
            | IdentityBusy
            | VendorUnavailable(_)
            | StoreUnavailable
            | TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            SigningFailed => StatusCode::INTERNAL_SERVER_ERROR,
            SlowDown(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The `error` of the JSON answer.
    pub fn code(&self) -> Cow<'static, str> {
        use Refusal::*;
        let code = match self {
            NotAuthenticated => "not_authenticated",
            CrossSite => "cross_site_request",
            NotFound => "not_found",
            MethodNotAllowed(_) => "method_not_allowed",
            InvalidHost => "invalid_host",
            NotConfigured(what) => what,
            DisguisedReservedPath => "disguised_reserved_path",
            AmbiguousLength => "ambiguous_request_length",
            HeadersTooLarge => "headers_too_large",
            BodyTooLarge => "body_too_large",
            BadRequestTarget => "bad_request_target",
            BadRequestBody => "bad_request_body",
            UpstreamUnavailable => "upstream_unavailable",
            UpstreamTimeout => "upstream_timeout",
            UpstreamError => "upstream_error",
            UnexpectedUpgrade => "unexpected_upgrade",
            IdentityUnavailable | IdentityBusy => "identity_unavailable",
            IdentityInvalid => "identity_invalid",
            VendorUnavailable(vendor) => return format!("{vendor}_unavailable").into(),
            VendorRejected(vendor) => return format!("{vendor}_rejected").into(),
            CustomerUnknown(vendor) => return format!("{vendor}_customer_unknown").into(),
            StoreUnavailable => "store_unavailable",
            SigningFailed => "signing_failed",
            InvalidRequest(_) => "invalid_request",
            InvalidGrant(_) => "invalid_grant",
            InvalidClient(_) | UnknownClient => "invalid_client",
            UnsupportedGrantType => "unsupported_grant_type",
            SlowDown(_) => "slow_down",
            TemporarilyUnavailable => "temporarily_unavailable",
        };
        Cow::Borrowed(code)
    }

    /// What the caller may fix, for the refusals whose code alone does not say.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(why) | Self::InvalidGrant(why) | Self::InvalidClient(why) => {
                Some(why)
            }
            Self::UnsupportedGrantType => Some("only authorization_code is supported"),
            Self::UnknownClient => Some("unknown client_id"),
            Self::SlowDown(_) => Some("too many failed client authentications"),
            _ => None,
        }
    }

    /// When to come back: every 503 and 429 says.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::SlowDown(wait) => Some(*wait),
            Self::IdentityBusy => Some(PROBES_BUSY_WAIT),
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => Some(COME_BACK_IN),
            _ => None,
        }
    }

    /// The answer: JSON, private, with the headers the refusal calls for.
    pub fn into_reply(self) -> Reply {
        let mut body = serde_json::json!({ "error": self.code() });
        if let Some(why) = self.description() {
            body["error_description"] = why.into();
        }
        let mut reply = private_json(self.status(), &body);
        let headers = reply.headers_mut();
        if let Some(wait) = self.retry_after() {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(wait)),
            );
        }
        match &self {
            Self::MethodNotAllowed(allowed) => {
                let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Self::InvalidClient(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tether\", charset=\"UTF-8\""),
                );
            }
            // Where the body ends is what is in doubt: nothing more is read on this connection.
            Self::AmbiguousLength => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        reply
    }
}

/// Whole seconds for `Retry-After`, rounded up so a client never comes back too early, and
/// never 0 (a client would retry at once).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Refuses methods other than `allowed`.
pub fn only(method: &Method, allowed: &'static [Method]) -> Result<(), Refusal> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(Refusal::MethodNotAllowed(allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_503_and_429_says_when_to_come_back() {
        let refusals = [
            Refusal::IdentityUnavailable,
            Refusal::IdentityBusy,
            Refusal::VendorUnavailable("livechat"),
            Refusal::StoreUnavailable,
            Refusal::TemporarilyUnavailable,
            Refusal::SlowDown(Duration::from_millis(1500)),
        ];
        for refusal in refusals {
            let reply = refusal.clone().into_reply();
            assert!(
                reply.headers().contains_key(header::RETRY_AFTER),
                "{refusal:?}"
            );
        }
        let slow = Refusal::SlowDown(Duration::from_millis(1500)).into_reply();
        assert_eq!(slow.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn codes_and_headers() {
        assert_eq!(
            Refusal::VendorUnavailable("livechat").code(),
            "livechat_unavailable"
        );
        let reply = Refusal::MethodNotAllowed(&[Method::GET, Method::HEAD]).into_reply();
        assert_eq!(reply.headers()[header::ALLOW], "GET, HEAD");
        let reply = Refusal::InvalidClient("wrong secret".into()).into_reply();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
        assert!(reply.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert_eq!(reply.headers()[header::CACHE_CONTROL], "no-store");
    }
}
