//! The app's body through the `Transformer`, as a hyper body: each chunk goes out as soon as it
//! is rewritten, and whatever the encoder holds is flushed whenever the app pauses, so the
//! browser can start on the page's head before the app has finished its body.

use super::rewrite::{Outcome, Transformer};
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Told once how the page came out (for the counters and the CSP warning).
pub type Report = Box<dyn FnOnce(Outcome) + Send + Sync>;

pin_project_lite::pin_project! {
    /// `B` is the app's body (the proxy's `AppBody`).
    pub struct InjectedBody<B> {
        #[pin]
        inner: B,
        transformer: Transformer,
        report: Option<Report>,
        trailers: Option<HeaderMap>,
        finished: bool,
    }
}

impl<B> InjectedBody<B> {
    pub fn new(inner: B, transformer: Transformer, report: Option<Report>) -> Self {
        Self {
            inner,
            transformer,
            report,
            trailers: None,
            finished: false,
        }
    }
}

fn data(out: Vec<u8>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
}

impl<B> Body for InjectedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.finished {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let out = match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(chunk) => this.transformer.push(&chunk)?,
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            *this.trailers = Some(trailers);
                        }
                        continue;
                    }
                },
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(None) => {
                    *this.finished = true;
                    this.transformer.finish()?
                }
                Poll::Pending => {
                    let out = this.transformer.flush()?;
                    if out.is_empty() {
                        return Poll::Pending;
                    }
                    out
                }
            };
            let outcome = this.transformer.outcome();
            if outcome != Outcome::Pending {
                if let Some(report) = this.report.take() {
                    report(outcome);
                }
            }
            if !out.is_empty() {
                return data(out);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.trailers.is_none()
    }
}
