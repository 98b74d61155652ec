//! Reading the app's and the client's headers for `[inject]`, and the response headers of a
//! page whose body Tether changes.

use super::coding::{InputCoding, OutputCoding};
use super::csp::Policies;
use http::header::{self, AsHeaderName, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

pub(super) fn header_values(headers: &HeaderMap, name: impl AsHeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

pub(super) fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_string())
}

pub(super) fn header_has_token(headers: &HeaderMap, name: impl AsHeaderName, token: &str) -> bool {
    header_values(headers, name).iter().any(|value| {
        value
            .split([',', ';'])
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

pub(super) fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    header_values(headers, header::COOKIE)
        .iter()
        .flat_map(|value| value.split(';'))
        .any(|pair| pair.trim().split('=').next() == Some(name))
}

/// The page's charset when lol_html can rewrite it (ASCII-compatible); no charset parameter
/// means UTF-8 or windows-1252, both ASCII-compatible (a UTF-16 byte-order mark is caught in
/// the stream).
pub(super) fn charset_of(headers: &HeaderMap) -> Option<lol_html::AsciiCompatibleEncoding> {
    let content_type = header_text(headers, header::CONTENT_TYPE)?;
    let charset = content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_string())
    });
    let encoding = match charset {
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes())?,
        None => encoding_rs::UTF_8,
    };
    lol_html::AsciiCompatibleEncoding::new(encoding)
}

/// Enforced policies only (`-Report-Only` blocks nothing).
pub(super) fn content_security_policies(headers: &HeaderMap) -> Policies {
    let mut policies = Policies::default();
    for value in header_values(headers, header::CONTENT_SECURITY_POLICY) {
        policies.add(value);
    }
    policies
}

/// A navigation's response that is not a page to rewrite, but that Tether asked for
/// uncompressed: text worth compressing for the client.
pub(super) fn compressible<B>(response: &Response<B>, input: InputCoding) -> bool {
    let headers = response.headers();
    let textual = header_text(headers, header::CONTENT_TYPE).is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("text/")
            || ["json", "javascript", "xml", "svg"]
                .iter()
                .any(|k| t.contains(k))
    });
    input == InputCoding::Identity
        && textual
        && !matches!(
            response.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        )
        && !headers.contains_key(header::CONTENT_ENCODING)
        && !header_has_token(headers, header::CACHE_CONTROL, "no-transform")
}

/// The body changes length (and coding): no Content-Length, the coding Tether applies, Vary on
/// Accept-Encoding; for rewritten pages a weak ETag (same page and snippet, not the same
/// bytes) and no byte ranges of a representation that is not the app's.
pub(super) fn rewrite_headers(headers: &mut HeaderMap, coding: OutputCoding, rewritten: bool) {
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_ENCODING);
    if let Some(value) = coding.header_value() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(value));
    }
    if !header_has_token(headers, header::VARY, "accept-encoding")
        && !header_has_token(headers, header::VARY, "*")
    {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if rewritten {
        headers.remove(header::ACCEPT_RANGES);
    }
    if rewritten || coding != OutputCoding::Identity {
        weaken_etag(headers);
    }
}

pub(super) fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if !etag.starts_with("W/") {
        if let Ok(weak) = HeaderValue::from_str(&format!("W/{etag}")) {
            headers.insert(header::ETAG, weak);
        }
    }
}
