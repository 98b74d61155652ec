//! Finds HTTP/1 requests that carry both `Content-Length` and `Transfer-Encoding`, the shape of a
//! request-smuggling attempt, so the proxy can refuse them (400 and close) instead of forwarding.
//!
//! hyper resolves such a request itself (Transfer-Encoding wins, Content-Length is removed, the
//! connection closes after it), so by the time a request reaches the proxy the evidence is gone.
//! A `Follower` therefore reads the client's bytes beside hyper (it is the connection's
//! `io::ReadObserver`): it parses each request head, follows the body's framing (a length or
//! chunks) to the next head, and records which request on the connection was ambiguous. hyper serves a connection's requests in order, so the proxy
//! counts the requests it is handed and refuses the one with that number.
//!
//! Where hyper will refuse the bytes anyway (a head too large or malformed, a bad chunk) or the
//! connection stops being HTTP/1 (an upgrade), following stops: hyper serves nothing after that
//! which the proxy would forward with the old framing.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

const NONE: u64 = u64::MAX;

/// Which request on a connection was ambiguous, shared by the reader and the proxy's service.
#[derive(Debug)]
pub struct AmbiguousRequests {
    /// The number (0-based) of the first request head with both headers; `NONE` if none yet.
    first: AtomicU64,
    /// Requests handed to the proxy so far.
    served: AtomicU64,
}

impl AmbiguousRequests {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            first: AtomicU64::new(NONE),
            served: AtomicU64::new(0),
        })
    }

    /// The number of the first ambiguous request found so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn first(&self) -> Option<u64> {
        Some(self.first.load(Relaxed)).filter(|&n| n != NONE)
    }

    /// Called once per request the proxy is handed, in order: is this the ambiguous one?
    pub fn next_is_ambiguous(&self) -> bool {
        let number = self.served.fetch_add(1, Relaxed);
        self.first.load(Relaxed) == number
    }
}

/// How the body after a request head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the next byte starts the next head.
    Empty,
    Length(u64),
    Chunked,
    /// Both `Content-Length` and `Transfer-Encoding`.
    Ambiguous,
    /// hyper will refuse this head or stop speaking HTTP/1 after it.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Incomplete,
    /// Not a request head hyper would accept: it answers 400 and closes.
    Invalid,
    Complete {
        len: usize,
        framing: Framing,
    },
}

/// Heads up to this many fields are parsed without allocating.
const INLINE_HEADERS: usize = 128;

/// Parses one request head at the start of `bytes` (httparse, as hyper does).
pub fn parse_head(bytes: &[u8], max_headers: usize) -> Head {
    if max_headers <= INLINE_HEADERS {
        let mut fields = [const { MaybeUninit::uninit() }; INLINE_HEADERS];
        parse_head_into(bytes, &mut fields[..max_headers])
    } else {
        let mut fields = Vec::with_capacity(max_headers);
        fields.resize_with(max_headers, MaybeUninit::uninit);
        parse_head_into(bytes, &mut fields)
    }
}

fn parse_head_into<'b>(bytes: &'b [u8], fields: &mut [MaybeUninit<httparse::Header<'b>>]) -> Head {
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(bytes, fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Incomplete,
        Err(_) => return Head::Invalid,
    };
    let framing = match request.method {
        Some("PRI" | "CONNECT") => Framing::Stop,
        _ => framing_of(request.headers),
    };
    Head::Complete { len, framing }
}

fn framing_of(fields: &[httparse::Header<'_>]) -> Framing {
    let mut length = None;
    let mut chunked = None;
    for field in fields {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            // As hyper: the last field's last coding decides.
            chunked = Some(last_coding_is_chunked(field.value));
        } else if field.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(field.value).ok();
            match (length, value.and_then(|v| v.trim().parse::<u64>().ok())) {
                (_, None) => return Framing::Stop,
                (Some(seen), Some(n)) if seen != n => return Framing::Stop,
                (_, n) => length = n,
            }
        } else if field.name.eq_ignore_ascii_case("upgrade") {
            return Framing::Stop;
        }
    }
    match (length, chunked) {
        (Some(_), Some(_)) => Framing::Ambiguous,
        (_, Some(true)) => Framing::Chunked,
        (_, Some(false)) => Framing::Stop,
        (Some(n), None) => Framing::Length(n),
        (None, None) => Framing::Empty,
    }
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Where the follower is in the client's byte stream.
#[derive(Debug)]
enum State {
    Head,
    Body(u64),
    /// In a chunk-size's hex digits.
    ChunkSize(u64),
    /// After the size: extensions, whitespace and CR up to the LF.
    ChunkLine(u64),
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer fields after the last chunk; `blank` while the current line is still empty.
    Trailers {
        blank: bool,
    },
    Off,
}

/// Follows a client's request stream head by head.
#[derive(Debug)]
pub struct Follower {
    state: State,
    /// A head split across reads.
    pending: Vec<u8>,
    max_head_bytes: usize,
    max_headers: usize,
    heads: u64,
    found: Arc<AmbiguousRequests>,
}

impl Follower {
    pub fn new(max_head_bytes: usize, max_headers: usize, found: Arc<AmbiguousRequests>) -> Self {
        Self {
            state: State::Head,
            pending: Vec::new(),
            max_head_bytes,
            max_headers,
            heads: 0,
            found,
        }
    }

    /// Request heads read so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Takes the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Off => return,
                State::Head => self.feed_head(bytes),
                State::Body(ref mut left) | State::ChunkData(ref mut left) => {
                    let used = (*left).min(bytes.len() as u64);
                    *left -= used;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Body(_) => State::Head,
                            _ => State::ChunkEnd,
                        };
                    }
                    used as usize
                }
                _ => self.feed_chunk_framing(bytes),
            };
            bytes = &bytes[used..];
        }
    }

    /// Returns how many of `bytes` belonged to the head (all of them while it is incomplete).
    fn feed_head(&mut self, bytes: &[u8]) -> usize {
        let buffered = self.pending.len();
        let head = if buffered == 0 {
            parse_head(bytes, self.max_headers)
        } else {
            self.pending.extend_from_slice(bytes);
            parse_head(&self.pending, self.max_headers)
        };
        match head {
            Head::Incomplete => {
                if buffered == 0 {
                    self.pending.extend_from_slice(bytes);
                }
                if self.pending.len() > self.max_head_bytes {
                    self.state = State::Off; // hyper answers 431 and closes
                    self.pending = Vec::new();
                }
                bytes.len()
            }
            Head::Complete { len, framing } if len >= buffered => {
                self.pending = Vec::new();
                self.start_body(framing);
                // The head ended within these bytes (it was incomplete without them).
                len - buffered
            }
            // Invalid: hyper answers 400 and closes. A head that ended inside bytes already
            // judged incomplete cannot be followed precisely (httparse, hyper's own parser,
            // does not produce one).
            Head::Invalid | Head::Complete { .. } => {
                self.state = State::Off;
                self.pending = Vec::new();
                bytes.len()
            }
        }
    }

    fn start_body(&mut self, framing: Framing) {
        self.state = match framing {
            Framing::Empty | Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Body(n),
            Framing::Chunked => State::ChunkSize(0),
            Framing::Ambiguous => {
                self.found.first.store(self.heads, Relaxed);
                State::Off // hyper closes the connection after this request
            }
            Framing::Stop => State::Off,
        };
        self.heads += 1;
    }

    /// Chunk sizes, the CRLF after data and trailers, byte by byte; returns how many bytes
    /// were used before data or the next head begins.
    fn feed_chunk_framing(&mut self, bytes: &[u8]) -> usize {
        for (i, &byte) in bytes.iter().enumerate() {
            self.state = next_chunk_state(&self.state, byte);
            if matches!(self.state, State::ChunkData(_) | State::Head | State::Off) {
                return i + 1;
            }
        }
        bytes.len()
    }
}

fn next_chunk_state(state: &State, byte: u8) -> State {
    match *state {
        State::ChunkSize(size) => match (byte as char).to_digit(16) {
            Some(digit) => match size.checked_mul(16) {
                Some(size) => State::ChunkSize(size + u64::from(digit)),
                None => State::Off, // hyper refuses an oversized chunk
            },
            None => next_chunk_state(&State::ChunkLine(size), byte),
        },
        State::ChunkLine(0) if byte == b'\n' => State::Trailers { blank: true },
        State::ChunkLine(size) if byte == b'\n' => State::ChunkData(size),
        State::ChunkLine(size) => State::ChunkLine(size),
        State::ChunkEnd if byte == b'\n' => State::ChunkSize(0),
        State::ChunkEnd => State::ChunkEnd,
        State::Trailers { blank } => match byte {
            b'\n' if blank => State::Head,
            b'\n' => State::Trailers { blank: true },
            b'\r' => State::Trailers { blank },
            _ => State::Trailers { blank: false },
        },
        _ => State::Off,
    }
}

impl crate::io::ReadObserver for Follower {
    fn observe(&mut self, bytes: &[u8]) {
        self.feed(bytes);
    }
}

/// The body length the `Content-Length` fields of a message say (RFC 9110 8.6: several fields
/// or a list must all carry one value, as hyper reads them): Ok(None) with no field, Err when
/// they are not one decimal length.
pub fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, ()> {
    let mut length = None;
    for value in values {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: u64 = std::str::from_utf8(part)
                .map_err(|_| ())?
                .parse()
                .map_err(|_| ())?;
            if length.is_some_and(|known| known != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(chunks: &[&[u8]]) -> (u64, u64) {
        let found = AmbiguousRequests::new();
        let mut follower = Follower::new(64 << 10, 100, found.clone());
        for chunk in chunks {
            follower.feed(chunk);
        }
        (follower.heads, found.first.load(Relaxed))
    }

    const SMUGGLE: &[u8] =
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

    #[test]
    fn finds_the_ambiguous_request_after_bodies_of_each_framing() {
        let stream = [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /l HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n\r\nTransfer-Encoding: chunked",
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            // A chunk whose data looks like a head, an extension with hex digits, then trailers.
            b"15;name=\"a1b\"\r\nContent-Length: 9\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
            SMUGGLE,
        ]
        .concat();
        assert_eq!(follow(&[&stream]), (4, 3));
        // The same bytes one at a time, as a slow client sends them.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(follow(&bytes), (4, 3));
    }

    #[test]
    fn either_order_and_any_spelling_is_ambiguous() {
        let te_first =
            b"POST / HTTP/1.1\r\ntransfer-ENCODING: chunked\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(follow(&[te_first]).1, 0);
        assert_eq!(follow(&[SMUGGLE]).1, 0);
    }

    #[test]
    fn plain_requests_are_never_ambiguous() {
        let stream = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n";
        assert_eq!(follow(&[stream]), (2, NONE));
    }

    #[test]
    fn stops_where_hyper_stops_speaking_http1() {
        let upgrade = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        assert_eq!(follow(&[upgrade, SMUGGLE]), (1, NONE));
        let bad_length = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(follow(&[bad_length, SMUGGLE]), (1, NONE));
        assert_eq!(follow(&[&[b'a'; 70 << 10], SMUGGLE]), (0, NONE));
        // A head found invalid only once its second part arrives (fuzzing found this one).
        let split = [&b"GET / HTTP/1.1\r\nHost: a"[..], b"\x1d\r\n\r\n", SMUGGLE];
        assert_eq!(follow(&split), (0, NONE));
    }

    #[test]
    fn the_service_refuses_exactly_the_numbered_request() {
        let found = AmbiguousRequests::new();
        found.first.store(1, Relaxed);
        assert!(!found.next_is_ambiguous());
        assert!(found.next_is_ambiguous());
        assert!(!found.next_is_ambiguous());
    }

    #[test]
    fn content_lengths_are_one_value_or_an_error() {
        let read = |values: &[&str]| super::content_length(values.iter().map(|v| v.as_bytes()));
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&["12"]), Ok(Some(12)));
        assert_eq!(read(&["12", " 12 "]), Ok(Some(12)));
        assert_eq!(read(&["12, 12"]), Ok(Some(12)));
        for bad in [
            &["12", "13"][..],
            &["12, 13"],
            &["+1"],
            &["-1"],
            &[""],
            &["1,"],
            &["99999999999999999999"],
        ] {
            assert_eq!(read(bad), Err(()), "{bad:?}");
        }
    }
}
