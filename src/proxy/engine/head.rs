//! Request and response heads, parsed once (httparse) into offsets within the connection's
//! buffer, and what the engine needs to know of them: their framing, whether the connection
//! stays open, and whether the engine handles the request at all (see `Handling`).

use std::ops::Range;

/// A parsed head: offsets into the buffer it was read from.
#[derive(Debug, Default)]
pub struct Head {
    /// Bytes the head takes, final CRLF included.
    pub len: usize,
    /// Request: method; response: the status code's digits.
    pub first: Range<usize>,
    /// Request: target; response: reason phrase.
    pub second: Range<usize>,
    /// HTTP/1.x minor version.
    pub minor: u8,
    pub status: u16,
    pub headers: Vec<(Range<usize>, Range<usize>)>,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not a valid HTTP/1 head: the hyper path answers it as it would.
    Invalid,
    /// More header fields than allowed.
    TooMany,
}

fn offsets(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// The head's length once httparse has all of it; None while it is incomplete.
fn parsed(result: httparse::Result<usize>) -> Result<Option<usize>, HeadError> {
    match result {
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooMany),
        Err(_) => Err(HeadError::Invalid),
    }
}

impl Head {
    /// Each field's name and value, as offsets into `buf`.
    fn keep_fields(&mut self, buf: &[u8], fields: &[httparse::Header<'_>]) {
        self.headers.clear();
        self.headers.extend(
            fields
                .iter()
                .map(|f| (offsets(buf, f.name.as_bytes()), offsets(buf, f.value))),
        );
    }

    pub fn bytes<'a>(&self, buf: &'a [u8], range: &Range<usize>) -> &'a [u8] {
        &buf[range.clone()]
    }

    /// Parses a request head at the start of `buf`: Ok(None) while it is incomplete.
    pub fn request<'b>(
        &mut self,
        buf: &'b [u8],
        scratch: &mut [httparse::Header<'b>],
    ) -> Result<Option<()>, HeadError> {
        let mut request = httparse::Request::new(scratch);
        let Some(len) = parsed(request.parse(buf))? else {
            return Ok(None);
        };
        let (Some(method), Some(path), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Err(HeadError::Invalid);
        };
        self.len = len;
        self.first = offsets(buf, method.as_bytes());
        self.second = offsets(buf, path.as_bytes());
        self.minor = minor;
        self.status = 0;
        self.keep_fields(buf, request.headers);
        Ok(Some(()))
    }

    /// Parses a response head at the start of `buf`: Ok(None) while it is incomplete.
    pub fn response<'b>(
        &mut self,
        buf: &'b [u8],
        scratch: &mut [httparse::Header<'b>],
    ) -> Result<Option<()>, HeadError> {
        let mut response = httparse::Response::new(scratch);
        let Some(len) = parsed(response.parse(buf))? else {
            return Ok(None);
        };
        let (Some(status), Some(minor)) = (response.code, response.version) else {
            return Err(HeadError::Invalid);
        };
        self.len = len;
        self.status = status;
        self.minor = minor;
        let reason = response.reason.unwrap_or("");
        self.second = if reason.is_empty() {
            0..0
        } else {
            offsets(buf, reason.as_bytes())
        };
        self.first = 0..0;
        self.keep_fields(buf, response.headers);
        Ok(Some(()))
    }

    /// The values of `name` (case-insensitive).
    pub fn values<'a>(
        &'a self,
        buf: &'a [u8],
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| buf[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(move |(_, v)| &buf[v.clone()])
    }

    /// Whether a `Connection` value lists `token`.
    pub fn connection_has(&self, buf: &[u8], token: &str) -> bool {
        self.values(buf, "connection").any(|value| {
            value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// A `Content-Length` value: digits only.
pub fn parse_length(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether a request target is made only of RFC 3986 path and query characters (unreserved,
/// sub-delims, `:@/?%`) and short enough: `http::uri` takes such a target as it is, so the
/// common case needs no parse (and no copy) to know it.
pub fn plain_target(target: &str) -> bool {
    target.len() < usize::from(u16::MAX) - 1
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// A request's framing, or None when it is anything the engine leaves to hyper: both
/// `Content-Length` and `Transfer-Encoding` (refused there), several lengths, a coding other
/// than exactly `chunked`.
pub fn request_framing(head: &Head, buf: &[u8]) -> Option<Framing> {
    let mut lengths = head.values(buf, "content-length");
    let mut codings = head.values(buf, "transfer-encoding");
    match (lengths.next(), codings.next()) {
        (None, None) => Some(Framing::None),
        (Some(length), None) if lengths.next().is_none() => match parse_length(length)? {
            0 => Some(Framing::None),
            n => Some(Framing::Length(n)),
        },
        (None, Some(coding)) if codings.next().is_none() => trim(coding)
            .eq_ignore_ascii_case(b"chunked")
            .then_some(Framing::Chunked),
        _ => None,
    }
}

/// A response's framing (RFC 9112 section 6.3), or None when it is malformed (the engine then
/// answers 502 and closes, as hyper's client does).
pub fn response_framing(head: &Head, buf: &[u8], head_request: bool) -> Option<Framing> {
    let coded = head.values(buf, "transfer-encoding").next().is_some();
    // Lengths that disagree make the answer malformed even where there is no body to frame.
    let length = match coded {
        true => None,
        false => crate::proxy::framing::content_length(head.values(buf, "content-length")).ok()?,
    };
    if head_request || head.status == 204 || head.status == 304 || (100..200).contains(&head.status)
    {
        return Some(Framing::None);
    }
    let codings: Vec<&[u8]> = head.values(buf, "transfer-encoding").collect();
    if !codings.is_empty() {
        // The final coding must be chunked; anything else is read to the close.
        let last = codings
            .last()
            .and_then(|value| value.split(|&b| b == b',').next_back())
            .map(trim)
            .unwrap_or(b"");
        return Some(
            if last.eq_ignore_ascii_case(b"chunked")
                && codings.len() == 1
                && trim(codings[0]).eq_ignore_ascii_case(b"chunked")
            {
                Framing::Chunked
            } else {
                Framing::Close
            },
        );
    }
    Some(match length {
        None => Framing::Close,
        Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

#[cfg(test)]
mod tests {
    use super::plain_target;

    /// Every byte the shortcut lets through, anywhere in a path or a query, is one `http::uri`
    /// keeps as it is; the bytes it does not are left to the exact parse.
    #[test]
    fn plain_targets_are_what_http_uri_keeps_unchanged() {
        let mut plain = 0;
        for byte in 0x21u8..0x7f {
            let c = char::from(byte);
            for target in [format!("/a{c}b"), format!("/p?q{c}r")] {
                if plain_target(&target) {
                    plain += 1;
                    let parsed = http::uri::PathAndQuery::try_from(target.as_str()).unwrap();
                    assert_eq!(parsed.as_str(), target, "{c:?}");
                }
            }
        }
        assert_eq!(plain, 2 * 82, "the set of plain bytes changed");
        assert!(!plain_target("/a#b"));
        assert!(!plain_target("/a b"));
    }
}
