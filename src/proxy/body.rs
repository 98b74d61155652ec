//! The response body: the app's stream, the app's page with the snippets, or a small body Tether
//! wrote itself; and the request body as Tether's own endpoints get it.

use super::upstream::AppBody;
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
        App { #[pin] body: AppBody },
        Injected { #[pin] body: InjectedBody<AppBody> },
        Own { #[pin] body: Full<Bytes> },
    }
}

impl ResponseBody {
    pub fn app(body: AppBody) -> Self {
        Self::App { body }
    }

    pub fn injected(body: InjectedBody<AppBody>) -> Self {
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

pin_project_lite::pin_project! {
    /// A request body as Tether's own endpoints get it: still on a hyper connection, or already
    /// read whole by the HTTP/1.1 engine (which reads only small ones, see `engine::endpoints`).
    #[project = EndpointProjected]
    pub enum EndpointBody {
        Streaming { #[pin] body: Incoming },
        Read { body: Option<Bytes> },
    }
}

impl EndpointBody {
    pub fn streaming(body: Incoming) -> Self {
        Self::Streaming { body }
    }

    pub fn read(body: Bytes) -> Self {
        Self::Read {
            body: (!body.is_empty()).then_some(body),
        }
    }
}

impl Body for EndpointBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.project() {
            EndpointProjected::Streaming { body } => body.poll_frame(cx),
            EndpointProjected::Read { body } => {
                Poll::Ready(body.take().map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Streaming { body } => body.is_end_stream(),
            Self::Read { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Streaming { body } => body.size_hint(),
            Self::Read { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
