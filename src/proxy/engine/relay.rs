//! Bodies relayed by their framing, and the response read from the app and written to the
//! client: the head edited (`write::response_head`), the body bytes as they came, in as few
//! writes as the reads allow.

use super::chunks::ChunkScanner;
use super::head::{self, Framing};
use super::{Asked, Buffers, Engine, MAX_HEADERS};
use crate::metrics::UpstreamFailure;
use crate::proxy::Proxy;
use crate::refusal::Refusal;
use bytes::Buf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request sent to the app, waiting for its answer.
pub struct AppExchange {
    pub stream: TcpStream,
    /// On an idle connection from the pool.
    pub reused: bool,
    /// A bodiless GET or HEAD: safe to send again if the connection closed under it.
    pub replayable: bool,
    /// When the response head must have arrived.
    pub deadline: tokio::time::Instant,
}

/// How much of the body is already in `buf`, and whether that is all of it.
pub fn body_ready(framing: Framing, buf: &[u8]) -> (usize, bool) {
    match framing {
        Framing::None | Framing::Close => (0, true),
        Framing::Length(n) => {
            let ready = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            (ready, ready as u64 == n)
        }
        Framing::Chunked => match ChunkScanner::default().feed(buf) {
            Ok(Some(end)) => (end, true),
            // Not yet whole (or not chunked: the rest fails on its own).
            _ => (0, false),
        },
    }
}

/// Appends a body's bytes that are already read (`body_ready`) to what goes to the app: a
/// whole chunked body written again without extensions or trailers, anything else as it is.
pub fn copy_ready_body(framing: Framing, ready: &[u8], out: &mut Vec<u8>) {
    if framing == Framing::Chunked && !ready.is_empty() {
        let whole = ChunkScanner::default().rewrite(ready, out);
        debug_assert!(matches!(whole, Ok(Some(_))), "body_ready found it whole");
    } else {
        out.extend_from_slice(ready);
    }
}

/// Why a request body did not reach the app whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    /// The client closed or went silent for the idle timeout: nobody to answer (as on the
    /// hyper path, the connection just closes).
    ClientGone,
    /// Not chunked as it says: 400.
    Malformed,
    /// The app stopped taking it: 502.
    AppFailed,
}

/// Reads the rest of the request body from the client and writes it to the app.
pub async fn rest_of_request_body<I: AsyncRead + Unpin>(
    client: &mut I,
    app: &mut TcpStream,
    buffers: &mut Buffers,
    framing: Framing,
    sent: usize,
    idle: Duration,
) -> Result<(), BodyFailure> {
    match framing {
        Framing::Length(n) => {
            let mut remaining = n - sent as u64;
            while remaining > 0 {
                if buffers.client.is_empty() {
                    read_more(client, &mut buffers.client, idle).await?;
                }
                let take = buffers
                    .client
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                write_app(app, &buffers.client[..take], idle).await?;
                buffers.client.advance(take);
                remaining -= take as u64;
            }
            Ok(())
        }
        Framing::Chunked => {
            let mut scanner = ChunkScanner::default();
            let mut rewritten = Vec::with_capacity(super::BUFFER);
            loop {
                if buffers.client.is_empty() {
                    read_more(client, &mut buffers.client, idle).await?;
                }
                rewritten.clear();
                let found = scanner
                    .rewrite(&buffers.client, &mut rewritten)
                    .map_err(|()| BodyFailure::Malformed)?;
                let take = found.unwrap_or(buffers.client.len());
                write_app(app, &rewritten, idle).await?;
                buffers.client.advance(take);
                if found.is_some() {
                    return Ok(());
                }
            }
        }
        Framing::None | Framing::Close => Ok(()),
    }
}

/// More of the request body from the client; a client silent for the idle timeout is cut off.
pub(super) async fn read_more<I: AsyncRead + Unpin>(
    client: &mut I,
    buf: &mut bytes::BytesMut,
    idle: Duration,
) -> Result<(), BodyFailure> {
    buf.reserve(super::BUFFER);
    match tokio::time::timeout(idle, client.read_buf(buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(()),
        _ => Err(BodyFailure::ClientGone),
    }
}

/// Body bytes to the app; an app that takes nothing for the idle timeout has failed.
async fn write_app(app: &mut TcpStream, bytes: &[u8], idle: Duration) -> Result<(), BodyFailure> {
    match tokio::time::timeout(idle, app.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(BodyFailure::AppFailed),
    }
}

/// Reads the app's response and writes it to the client: Some((status, whether the client's
/// connection may carry another request)), None when the client went away.
pub async fn respond<I: AsyncRead + AsyncWrite + Unpin>(
    proxy: &Proxy,
    engine: &Engine,
    client: &mut I,
    buffers: &mut Buffers,
    mut app: AppExchange,
    asked: Asked,
) -> Option<(u16, bool)> {
    let Asked {
        head_request,
        client_close,
    } = asked;
    buffers.app.clear();
    let framing = match final_response_head(proxy, engine, &mut app, buffers, head_request).await {
        Ok(framing) => framing,
        Err(refusal) => return refuse(proxy, engine, client, buffers, asked, refusal).await,
    };
    let status = buffers.app_head.status;
    let app_keeps = framing != Framing::Close
        && buffers.app_head.minor == 1
        && !buffers.app_head.connection_has(&buffers.app, "close");
    buffers.response.clear();
    let identity = proxy
        .strip_identity_from_responses
        .then_some(&proxy.identity);
    let ending = if client_close {
        super::write::Ending::Close
    } else {
        super::write::Ending::KeepAlive
    };
    super::write::response_head(
        &buffers.app_head,
        &buffers.app,
        framing,
        head_request,
        identity,
        ending,
        &mut buffers.response,
    );
    buffers.app.advance(buffers.app_head.len);
    let relayed = relay_body(
        client,
        &mut app.stream,
        buffers,
        framing,
        engine.idle_timeout,
    )
    .await;
    match relayed {
        Relayed::Done if app_keeps && buffers.app.is_empty() => engine.apps.put(app.stream),
        Relayed::Done | Relayed::AppFailed => {}
        Relayed::ClientGone => return None,
    }
    Some((status, !client_close && relayed == Relayed::Done))
}

/// Reads the app's final response head (interim 1xx answers dropped) and its framing.
async fn final_response_head(
    proxy: &Proxy,
    engine: &Engine,
    app: &mut AppExchange,
    buffers: &mut Buffers,
    head_request: bool,
) -> Result<Framing, Refusal> {
    loop {
        read_response_head(engine, app, buffers).await?;
        let status = buffers.app_head.status;
        if status == 101 {
            tracing::warn!("the app answered 101 to a request that did not ask for an upgrade");
            return Err(Refusal::UnexpectedUpgrade);
        }
        if (100..200).contains(&status) {
            // An interim answer (103 Early Hints) is dropped, as the hyper path does: browsers
            // act on 103 only over HTTP/2, and HTTP/1.1 clients before RFC 8297 misread it.
            buffers.app.advance(buffers.app_head.len);
            continue;
        }
        return head::response_framing(&buffers.app_head, &buffers.app, head_request).ok_or_else(
            || {
                proxy.metrics.upstream_failure(UpstreamFailure::Other);
                Refusal::UpstreamError
            },
        );
    }
}

/// Reads until the app's response head is whole; a reused connection that closed before
/// answering a bodiless GET or HEAD is replaced once.
async fn read_response_head(
    engine: &Engine,
    app: &mut AppExchange,
    buffers: &mut Buffers,
) -> Result<(), Refusal> {
    loop {
        if !buffers.app.is_empty() {
            let mut scratch = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match buffers.app_head.response(&buffers.app, &mut scratch) {
                Ok(Some(())) => return Ok(()),
                Ok(None) if buffers.app.len() <= engine.max_header_bytes.max(64 * 1024) => {}
                _ => return Err(Refusal::UpstreamError),
            }
        }
        buffers.app.reserve(super::BUFFER);
        let read =
            tokio::time::timeout_at(app.deadline, app.stream.read_buf(&mut buffers.app)).await;
        match read {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) if buffers.app.is_empty() && app.reused && app.replayable => {
                // Closed under the request: send it again on a new connection.
                let mut fresh = engine
                    .apps
                    .connect()
                    .await
                    .map_err(|_| Refusal::UpstreamUnavailable)?;
                fresh
                    .write_all(&buffers.request)
                    .await
                    .map_err(|_| Refusal::UpstreamError)?;
                app.stream = fresh;
                app.reused = false;
            }
            Ok(_) => return Err(Refusal::UpstreamError),
            Err(_) => return Err(Refusal::UpstreamTimeout),
        }
    }
}

/// Answers the client for an app that failed it. The request was read whole, so the client's
/// connection stays open unless it asked otherwise (as on the hyper path).
async fn refuse<I: AsyncWrite + Unpin>(
    proxy: &Proxy,
    engine: &Engine,
    client: &mut I,
    buffers: &mut Buffers,
    asked: Asked,
    refusal: Refusal,
) -> Option<(u16, bool)> {
    if refusal == Refusal::UpstreamTimeout {
        proxy.metrics.upstream_failure(UpstreamFailure::Timeout);
    }
    let status = refusal.status().as_u16();
    buffers.response.clear();
    super::write::answer(refusal.into_reply(), asked, &mut buffers.response);
    write_within(engine.idle_timeout, client, &buffers.response)
        .await
        .then_some((status, !asked.client_close))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relayed {
    Done,
    /// The app's body ended early or failed: the client's connection must close.
    AppFailed,
    ClientGone,
}

/// Writes the response head (in `buffers.response`) and the body, by its framing.
/// Either side silent for `idle` (the client not taking bytes, the app not sending them) ends
/// the exchange, as the hyper path's idle timeout does.
async fn relay_body<I: AsyncWrite + Unpin>(
    client: &mut I,
    app: &mut TcpStream,
    buffers: &mut Buffers,
    framing: Framing,
    idle: Duration,
) -> Relayed {
    let mut scanner = ChunkScanner::default();
    let mut remaining = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        // What of the body is in the buffer goes out with what is pending (the head, at first).
        let (take, done) = match framing {
            Framing::None => (0, true),
            Framing::Length(_) => {
                let take = buffers
                    .app
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                remaining -= take as u64;
                (take, remaining == 0)
            }
            Framing::Chunked => match scanner.rewrite(&buffers.app, &mut buffers.response) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (buffers.app.len(), false),
                Err(()) => return Relayed::AppFailed,
            },
            Framing::Close => (buffers.app.len(), false),
        };
        if framing == Framing::Chunked {
            // Already written by the scanner.
        } else if framing == Framing::Close && take > 0 {
            // Re-framed as one chunk per read.
            super::chunks::size_line(&mut buffers.response, take as u64);
            buffers.response.extend_from_slice(&buffers.app[..take]);
            buffers.response.extend_from_slice(b"\r\n");
        } else {
            buffers.response.extend_from_slice(&buffers.app[..take]);
        }
        buffers.app.advance(take);
        if !buffers.response.is_empty() {
            if !write_within(idle, client, &buffers.response).await {
                return Relayed::ClientGone;
            }
            buffers.response.clear();
        }
        if done {
            return Relayed::Done;
        }
        buffers.app.reserve(super::BUFFER);
        match tokio::time::timeout(idle, app.read_buf(&mut buffers.app)).await {
            Ok(Ok(n)) if n > 0 => {}
            // The close is the end of a close-delimited body: the last chunk.
            Ok(Ok(_)) if framing == Framing::Close => {
                return match write_within(idle, client, b"0\r\n\r\n").await {
                    true => Relayed::Done,
                    false => Relayed::ClientGone,
                }
            }
            _ => return Relayed::AppFailed,
        }
    }
}

/// Writes all of `bytes` to the client and flushes them, unless it takes nothing for `idle`;
/// whether it did. The flush matters over TLS: rustls keeps what the socket would not take yet,
/// and without a flush the end of a response waits there for the connection's next write, which
/// may never come (the client is waiting for that end).
pub(super) async fn write_within<W: AsyncWrite + Unpin>(
    idle: Duration,
    stream: &mut W,
    bytes: &[u8],
) -> bool {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    matches!(tokio::time::timeout(idle, written).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    /// A writer that keeps what it is given until flushed, as a TLS stream may.
    #[tokio::test]
    async fn what_is_written_reaches_the_peer_without_another_write() {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut buffered = tokio::io::BufWriter::new(near);
        let idle = std::time::Duration::from_secs(5);
        assert!(super::write_within(idle, &mut buffered, b"the end").await);
        let mut got = [0u8; 7];
        let read = tokio::time::timeout(idle, far.read_exact(&mut got)).await;
        assert!(matches!(read, Ok(Ok(7))), "the bytes stayed in the writer");
        assert_eq!(&got, b"the end");
    }
}
