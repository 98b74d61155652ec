//! Body types: the client's request body on its way to the app (with the size limit enforced while
//! streaming), and the response body (the app's stream, or a small body Tether wrote itself).

use crate::inject::body::BoxError;
use crate::inject::InjectedBody;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A response body: the app's stream, the app's page with the snippets (`inject`), or a
    /// complete body Tether produced.
    #[project = Projected]
    pub enum ResponseBody {
        App { #[pin] body: Incoming },
        Injected { #[pin] body: InjectedBody },
        Own { #[pin] body: Full<Bytes> },
    }
}

impl ResponseBody {
    pub fn app(body: Incoming) -> Self {
        Self::App { body }
    }

    pub fn injected(body: InjectedBody) -> Self {
        Self::Injected { body }
    }

    pub fn own(body: Full<Bytes>) -> Self {
        Self::Own { body }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            Projected::App { body } => body.poll_frame(cx).map_err(Into::into),
            Projected::Injected { body } => body.poll_frame(cx),
            Projected::Own { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::App { body } => body.is_end_stream(),
            Self::Injected { body } => body.is_end_stream(),
            Self::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::App { body } => body.size_hint(),
            Self::Injected { body } => body.size_hint(),
            Self::Own { body } => body.size_hint(),
        }
    }
}

/// A complete response written by Tether.
pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::own(Full::new(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `{"error": code}` with the given status.
pub fn json_error(status: StatusCode, code: &str) -> Response<ResponseBody> {
    let body = serde_json::json!({ "error": code }).to_string();
    full(status, "application/json", body)
}

/// Why forwarding a request body stopped.
#[derive(Debug)]
pub enum RequestBodyError {
    /// The body grew past `limits.max_body_bytes`.
    TooLarge,
    /// Reading from the client failed (it went away, or sent a malformed chunk).
    Client(hyper::Error),
}

impl std::fmt::Display for RequestBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge => f.write_str("request body exceeds limits.max_body_bytes"),
            Self::Client(err) => write!(f, "reading the request body: {err}"),
        }
    }
}

impl std::error::Error for RequestBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::TooLarge => None,
            Self::Client(err) => Some(err),
        }
    }
}

pin_project_lite::pin_project! {
    /// The client's body, streamed with backpressure, failing once it passes the byte limit, and
    /// telling `sent` when it has been read to the end (the app's response clock starts then).
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        remaining: u64,
        sent: Option<tokio::sync::oneshot::Sender<()>>,
    }
}

impl RequestBody {
    /// `limit` 0 means unlimited. The returned receiver resolves when the body is complete.
    pub fn new(inner: Incoming, limit: u64) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let remaining = if limit == 0 { u64::MAX } else { limit };
        let (sent, complete) = tokio::sync::oneshot::channel();
        let sent = if inner.is_end_stream() {
            let _ = sent.send(());
            None
        } else {
            Some(sent)
        };
        (
            Self {
                inner,
                remaining,
                sent,
            },
            complete,
        )
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
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
                    }
                    *this.remaining -= len;
                }
                if this.inner.is_end_stream() {
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
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
