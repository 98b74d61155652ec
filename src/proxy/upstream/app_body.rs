//! The app's response body, which drives its own connection: the serving task polls the
//! connection as it reads the body, and parks the connection for the next request once the
//! body is complete.

use super::pool::{AppConnection, Pool};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub struct AppBody {
    inner: Incoming,
    /// The connection the body arrives on; `None` once it is finished, parked or not pooled
    /// (an upgrade, whose connection is driven by its own task).
    lease: Option<Lease>,
}

struct Lease {
    connection: AppConnection,
    pool: Arc<Pool>,
}

impl AppBody {
    pub(super) fn new(inner: Incoming, connection: AppConnection, pool: Arc<Pool>) -> Self {
        Self {
            inner,
            lease: Some(Lease { connection, pool }),
        }
    }

    /// A body whose connection something else drives.
    pub(super) fn detached(inner: Incoming) -> Self {
        Self { inner, lease: None }
    }

    /// Polls the connection, so what the app sent reaches `inner`. A connection that finished
    /// (the app closed it after this response, or it failed) is let go; `inner` then ends or
    /// reports the error.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(lease) = &mut self.lease {
            if let Poll::Ready(result) = lease.connection.drive(cx) {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection to the app failed mid-body");
                }
                self.lease = None;
            }
        }
    }

    fn park(&mut self, cx: &mut Context<'_>) {
        if let Some(Lease { connection, pool }) = self.lease.take() {
            pool.put(connection, cx);
        }
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        this.drive(cx);
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if this.inner.is_end_stream() || !matches!(frame, Some(Ok(_))) {
            match frame {
                Some(Err(_)) => this.lease = None,
                _ => this.park(cx),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AppBody {
    /// A body that is complete, read or not (hyper does not poll one that is empty from the
    /// start, such as a HEAD answer's), leaves a reusable connection; one dropped part-way
    /// closes it, as the rest of the body would still arrive on it.
    fn drop(&mut self) {
        if let Some(Lease { connection, pool }) = self.lease.take() {
            if self.inner.is_end_stream() {
                pool.put_without_context(connection);
            }
        }
    }
}
