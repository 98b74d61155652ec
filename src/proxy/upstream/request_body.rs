//! The client's request body on its way to the app, with the size limit enforced while streaming.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Why forwarding a request body stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// The body grew past `limits.max_body_bytes`.
    #[error("request body exceeds limits.max_body_bytes")]
    TooLarge,
    /// Reading from the client failed (it went away, or sent a malformed chunk).
    #[error("reading the request body")]
    Client(#[source] hyper::Error),
}

pin_project_lite::pin_project! {
    /// The client's body, streamed with backpressure, failing once it passes the byte limit, and
    /// telling `sent` when it has been read to the end (the app's response clock starts then).
    pub struct RequestBody {
        // None: no body (a replayed bodiless request).
        #[pin]
        inner: Option<Incoming>,
        remaining: u64,
        sent: Option<tokio::sync::oneshot::Sender<()>>,
    }
}

/// When the request body has been read to its end: at once (no body, the usual case), or
/// later, told through a channel.
pub enum BodySent {
    Already,
    Later(tokio::sync::oneshot::Receiver<()>),
}

impl BodySent {
    /// Resolves when the body is complete; never, if it failed (the request then fails on its
    /// own).
    pub async fn wait(self) {
        if let Self::Later(receiver) = self {
            if receiver.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl RequestBody {
    /// `limit` 0 means unlimited.
    pub fn new(inner: Incoming, limit: u64) -> (Self, BodySent) {
        let remaining = if limit == 0 { u64::MAX } else { limit };
        let (sent, complete) = if inner.is_end_stream() {
            (None, BodySent::Already)
        } else {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            (Some(sender), BodySent::Later(receiver))
        };
        (
            Self {
                inner: Some(inner),
                remaining,
                sent,
            },
            complete,
        )
    }

    /// No body: for a bodiless request sent again.
    pub fn empty() -> Self {
        Self {
            inner: None,
            remaining: 0,
            sent: None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        let Some(mut inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
                    }
                    *this.remaining -= len;
                }
                if inner.is_end_stream() {
                    if let Some(sent) = this.sent.take() {
                        let _ = sent.send(());
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(RequestBodyError::Client(err)))),
            Poll::Ready(None) => {
                if let Some(sent) = this.sent.take() {
                    let _ = sent.send(());
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
