//! A small GET of Tether's own to the app (the identity probe's), on the engine's kind of
//! connection: the request written as bytes, the answer's head parsed once (`head`), its body
//! read whole up to a limit, and the connection kept per serving core for the next one. No task,
//! channel or `hyper` client connection in between, as for forwarded requests.

use super::app::{AppConnections, ConnectError};
use super::chunks::ChunkScanner;
use super::head::{self, Framing, Head};
use super::MAX_HEADERS;
use crate::config::{LimitsConfig, UpstreamConfig};
use bytes::{Buf, Bytes, BytesMut};
use std::ops::Range;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the app gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("connecting to the app timed out")]
    ConnectTimeout,
    #[error("cannot connect to the app")]
    Connect(#[source] std::io::Error),
    #[error("the connection to the app failed")]
    Io(#[source] std::io::Error),
    #[error("the app closed the connection before it answered")]
    Closed,
    #[error("the app's answer is not valid HTTP/1.1")]
    Invalid,
}

/// The app's answer. Its fields stay the bytes the app sent (no header map is built: the
/// caller reads a few fields by name).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// The answer's head, and its fields as offsets into it.
    head: Bytes,
    fields: Vec<(Range<usize>, Range<usize>)>,
    /// The body, or None when it was over the limit (then not read, and the connection closed).
    pub body: Option<Bytes>,
}

impl Fetched {
    /// The values of every field named `name` (compared without case), in the answer's order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(field, _)| {
                self.head[field.clone()].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|(_, value)| &self.head[value.clone()])
    }
}

/// One serving core's connections for fetches.
pub struct AppFetcher {
    apps: AppConnections,
    /// Read buffers of finished fetches, for the next ones: a fetch reads into a buffer of a
    /// few KiB, and allocating one each time cost the allocator's slow path.
    spare: Mutex<Vec<BytesMut>>,
    max_spare: usize,
    /// The Host field for requests that bring none.
    default_host: String,
    max_head_bytes: usize,
}

/// A fetch's read buffer to start with; one that grew past `KEPT_BUFFER` is not kept.
const READ_BUFFER: usize = 4096;
const KEPT_BUFFER: usize = 16 * 1024;

/// A GET's head, written field by field as it goes to the app (no map in between).
pub struct GetRequest {
    head: Vec<u8>,
    has_host: bool,
}

impl GetRequest {
    /// `GET target HTTP/1.1` (origin-form).
    pub fn new(target: &str) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"GET ");
        head.extend_from_slice(target.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        Self {
            head,
            has_host: false,
        }
    }

    /// One field (`name` lowercase).
    pub fn field(&mut self, name: &str, value: &[u8]) {
        self.joined_field(name, [value], b"");
    }

    /// One field whose value is `values` joined by `separator` (`cookie`, RFC 6265 5.4); none
    /// when there are no values.
    pub fn joined_field<'v>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = &'v [u8]>,
        separator: &[u8],
    ) {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return;
        };
        self.has_host |= name == "host";
        self.head.extend_from_slice(name.as_bytes());
        self.head.extend_from_slice(b": ");
        self.head.extend_from_slice(first);
        for value in values {
            self.head.extend_from_slice(separator);
            self.head.extend_from_slice(value);
        }
        self.head.extend_from_slice(b"\r\n");
    }

    fn finish(mut self, default_host: &str) -> Vec<u8> {
        if !self.has_host {
            self.field("host", default_host.as_bytes());
        }
        self.head.extend_from_slice(b"\r\n");
        self.head
    }
}

/// How an attempt failed: before the app answered anything (a kept connection the app had
/// closed: safe to send a GET again), or after.
enum Failed {
    Unanswered(FetchError),
    Answered(FetchError),
}

impl AppFetcher {
    /// Keeps up to `max_idle` connections to `upstream.url`.
    pub fn new(upstream: &UpstreamConfig, limits: &LimitsConfig, max_idle: usize) -> Self {
        Self {
            apps: AppConnections::new(
                &upstream.url,
                upstream.connect_timeout,
                upstream.pool_idle_timeout,
                max_idle,
            ),
            spare: Mutex::default(),
            max_spare: max_idle,
            default_host: upstream.url.to_string(),
            max_head_bytes: usize::try_from(limits.max_header_bytes)
                .unwrap_or(usize::MAX)
                .max(64 * 1024),
        }
    }

    /// Sends `request` (without a Host field, the app's authority is sent); the body is read up
    /// to `body_limit` bytes. A kept connection that turns out closed is replaced once. The
    /// caller bounds the time it takes.
    pub async fn get(&self, request: GetRequest, body_limit: usize) -> Result<Fetched, FetchError> {
        let request = request.finish(&self.default_host);
        let (mut stream, mut reused) = match self.apps.take() {
            Some(stream) => (stream, true),
            None => (self.connect().await?, false),
        };
        loop {
            match self.exchange(&mut stream, &request, body_limit).await {
                Ok((fetched, keep)) => {
                    if keep {
                        self.apps.put(stream);
                    }
                    return Ok(fetched);
                }
                Err(Failed::Unanswered(_)) if reused => {
                    stream = self.connect().await?;
                    reused = false;
                }
                Err(Failed::Unanswered(err) | Failed::Answered(err)) => return Err(err),
            }
        }
    }

    async fn connect(&self) -> Result<TcpStream, FetchError> {
        self.apps.connect().await.map_err(|err| match err {
            ConnectError::Timeout => FetchError::ConnectTimeout,
            ConnectError::Failed(err) => FetchError::Connect(err),
        })
    }

    /// One request and its answer; the answer and whether the connection may be kept.
    async fn exchange(
        &self,
        stream: &mut TcpStream,
        request: &[u8],
        body_limit: usize,
    ) -> Result<(Fetched, bool), Failed> {
        stream
            .write_all(request)
            .await
            .map_err(|err| Failed::Unanswered(FetchError::Io(err)))?;
        let mut buf = self.buffer();
        let answer = self.answer(stream, &mut buf, body_limit).await;
        self.keep_buffer(buf);
        answer
    }

    /// Reads one answer into `buf`; what the caller keeps of it is copied out, so `buf` can
    /// serve the next fetch.
    async fn answer(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        body_limit: usize,
    ) -> Result<(Fetched, bool), Failed> {
        let mut head = Head::default();
        let framing = self.final_head(stream, buf, &mut head).await?;
        let keep =
            framing != Framing::Close && head.minor == 1 && !head.connection_has(buf, "close");
        let head_bytes = Bytes::copy_from_slice(&buf[..head.len]);
        buf.advance(head.len);
        let (body, whole) = read_body(stream, buf, framing, body_limit)
            .await
            .map_err(Failed::Answered)?;
        let fetched = Fetched {
            status: head.status,
            head: head_bytes,
            fields: head.headers,
            body,
        };
        Ok((fetched, keep && whole))
    }

    fn buffer(&self) -> BytesMut {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        spare.unwrap_or_else(|| BytesMut::with_capacity(READ_BUFFER))
    }

    fn keep_buffer(&self, mut buf: BytesMut) {
        buf.clear();
        // Back to the start of its allocation (the head and body were advanced past).
        buf.reserve(READ_BUFFER);
        if buf.capacity() > KEPT_BUFFER {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < self.max_spare {
            spare.push(buf);
        }
    }

    /// Reads the final answer's head (1xx answers skipped) into `head`; its body's framing.
    async fn final_head(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        head: &mut Head,
    ) -> Result<Framing, Failed> {
        let mut answered = false;
        loop {
            if !buf.is_empty() {
                let mut scratch = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match head.response(buf, &mut scratch) {
                    Ok(Some(())) if head.status == 101 => {
                        return Err(Failed::Answered(FetchError::Invalid))
                    }
                    Ok(Some(())) if head.status < 200 => {
                        buf.advance(head.len);
                        answered = true;
                        continue;
                    }
                    Ok(Some(())) => {
                        return head::response_framing(head, buf, false)
                            .ok_or(Failed::Answered(FetchError::Invalid))
                    }
                    Ok(None) if buf.len() <= self.max_head_bytes => {}
                    _ => return Err(Failed::Answered(FetchError::Invalid)),
                }
            }
            let nothing_yet = buf.is_empty() && !answered;
            let failed = |err| match nothing_yet {
                true => Failed::Unanswered(err),
                false => Failed::Answered(err),
            };
            match stream.read_buf(buf).await {
                Ok(0) => return Err(failed(FetchError::Closed)),
                Ok(_) => {}
                Err(err) => return Err(failed(FetchError::Io(err))),
            }
        }
    }
}

/// Reads the body by its framing: Some(body) within `limit` (copied out of `buf`), None over it
/// (the rest left unread); and whether the connection ended clean for another request.
async fn read_body(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    framing: Framing,
    limit: usize,
) -> Result<(Option<Bytes>, bool), FetchError> {
    let mut body = Vec::new();
    let mut scanner = ChunkScanner::default();
    loop {
        let done = match framing {
            Framing::None => return Ok((Some(Bytes::new()), buf.is_empty())),
            Framing::Length(n) if n > limit as u64 => return Ok((None, false)),
            Framing::Length(n) => {
                if buf.len() as u64 >= n {
                    let whole = buf.len() as u64 == n;
                    return Ok((Some(Bytes::copy_from_slice(&buf[..n as usize])), whole));
                }
                false
            }
            Framing::Chunked => {
                let found = scanner
                    .decode(buf, &mut body)
                    .map_err(|()| FetchError::Invalid)?;
                let taken = found.unwrap_or(buf.len());
                buf.advance(taken);
                found.is_some()
            }
            Framing::Close => {
                body.extend_from_slice(buf);
                buf.clear();
                false
            }
        };
        if body.len() > limit {
            return Ok((None, false));
        }
        if done {
            return Ok((Some(body.into()), buf.is_empty()));
        }
        buf.reserve(READ_BUFFER);
        match stream.read_buf(buf).await {
            Ok(0) if framing == Framing::Close => return Ok((Some(body.into()), false)),
            Ok(0) => return Err(FetchError::Closed),
            Ok(_) => {}
            Err(err) => return Err(FetchError::Io(err)),
        }
    }
}
