//! An I/O wrapper that records when bytes last moved, so idle connections and tunnels can be
//! closed without a per-read timer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_millis() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// When bytes last moved on a connection (shared by its wrappers).
#[derive(Debug)]
pub struct Activity(AtomicU64);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(now_millis())))
    }

    fn touch(&self) {
        self.0.store(now_millis(), Relaxed);
    }

    fn idle_for(&self) -> Duration {
        Duration::from_millis(now_millis().saturating_sub(self.0.load(Relaxed)))
    }

    /// Resolves once nothing has moved for `timeout`. A zero timeout never resolves.
    pub async fn idle(&self, timeout: Duration) {
        if timeout.is_zero() {
            return std::future::pending().await;
        }
        loop {
            let idle = self.idle_for();
            if idle >= timeout {
                return;
            }
            tokio::time::sleep(timeout - idle).await;
        }
    }
}

/// Sees every byte read from a connection, as it is read (see `proxy::framing`).
pub trait ReadObserver {
    fn observe(&mut self, bytes: &[u8]);
}

/// No observer.
impl ReadObserver for () {
    fn observe(&mut self, _: &[u8]) {}
}

pin_project_lite::pin_project! {
    /// Wraps a stream and touches its `Activity` whenever a read or write makes progress, and
    /// shows what it reads to an observer.
    pub struct ActivityIo<T, O = ()> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
        observer: O,
    }
}

impl<T> ActivityIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self::observed(inner, activity, ())
    }
}

impl<T, O> ActivityIo<T, O> {
    pub fn observed(inner: T, activity: Arc<Activity>, observer: O) -> Self {
        Self {
            inner,
            activity,
            observer,
        }
    }
}

impl<T: AsyncRead, O: ReadObserver> AsyncRead for ActivityIo<T, O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if buf.filled().len() != before {
            this.activity.touch();
            this.observer.observe(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite, O> AsyncWrite for ActivityIo<T, O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// An error with its sources, "outer: inner: innermost", for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut written = self.0.to_string();
        f.write_str(&written)?;
        let mut source = self.0.source();
        while let Some(inner) = source {
            // Some errors repeat their source's text in their own message: once is enough.
            let text = inner.to_string();
            if !written.ends_with(&text) {
                write!(f, ": {text}")?;
                written = text;
            }
            source = inner.source();
        }
        Ok(())
    }
}

/// A boxed future that owns what it needs (trait methods that return work to spawn or await).
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A listener on every interface is reached on loopback.
pub fn reachable(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::SocketAddr;
    match listen {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

pin_project_lite::pin_project! {
    /// A stream whose first reads return bytes already read from it (handed from one HTTP/1
    /// implementation to another mid-connection).
    pub struct Rewind<T> {
        prefix: bytes::Bytes,
        #[pin]
        inner: T,
    }
}

impl<T> Rewind<T> {
    pub fn new(inner: T, prefix: bytes::Bytes) -> Self {
        Self { prefix, inner }
    }
}

impl<T: AsyncRead> AsyncRead for Rewind<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if !this.prefix.is_empty() {
            let take = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(take));
            return Poll::Ready(Ok(()));
        }
        this.inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for Rewind<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
