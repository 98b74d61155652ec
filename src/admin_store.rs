//! The admin listener's store endpoints, each behind `server.admin_token` (a Bearer token; off
//! without one):
//!
//! - `DELETE /users/{user}`: erase a user (`erasure`); 200 `{"erased": true|false}` (false: no
//!   mapping was recorded, cached tokens were dropped anyway).
//! - `GET /store/export`: every mapping as JSON Lines (`store::Row`), streamed.
//! - `GET /store/backup`: the same plus the named values, read in one transaction.
//!
//! They let `tether store ...` work on the embedded store while Tether holds it open.

use crate::erasure::Eraser;
use crate::proxy::full;
use crate::redact::Secret;
use crate::store::Row;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The eraser (and its store), with the token that guards them.
pub struct StoreAdmin {
    pub eraser: Arc<Eraser>,
    pub token: Option<Secret>,
}

/// A body fed from a channel; an `Err` ends it abruptly, so a client never mistakes a failed
/// export for a complete one.
pub struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

pub type AdminBody = http_body_util::Either<crate::proxy::ResponseBody, ChannelBody>;

fn answer(status: StatusCode, body: serde_json::Value) -> Response<AdminBody> {
    full(status, "application/json", body.to_string()).map(http_body_util::Either::Left)
}

/// Whether the path is one of these endpoints.
pub fn is_store_path(path: &str) -> bool {
    path.starts_with("/users/") || path.starts_with("/store/")
}

impl StoreAdmin {
    pub async fn route(&self, request: Request<Incoming>) -> Response<AdminBody> {
        let Some(expected) = &self.token else {
            return answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "store endpoints are off: set server.admin_token"}),
            );
        };
        if !bearer_matches(request.headers(), expected) {
            let mut response = answer(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "expected Authorization: Bearer <server.admin_token>"}),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
        let path = request.uri().path().to_string();
        match (request.method(), path.as_str()) {
            (&Method::DELETE, _) if path.starts_with("/users/") => self.erase(&path[7..]).await,
            (&Method::GET, "/store/export") => self.stream_rows(false),
            (&Method::GET, "/store/backup") => self.stream_rows(true),
            _ => answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found"}),
            ),
        }
    }

    async fn erase(&self, encoded_user: &str) -> Response<AdminBody> {
        let user = match percent_decode_str(encoded_user).decode_utf8() {
            Ok(user) if !user.is_empty() => user.into_owned(),
            _ => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "expected /users/{user}, the user percent-encoded as UTF-8"}),
                )
            }
        };
        match self.eraser.erase(&user).await {
            Ok(erased) => answer(StatusCode::OK, serde_json::json!({ "erased": erased })),
            Err(err) => {
                tracing::error!(error = %err, "erasure failed");
                let mut response = answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"error": "store_unavailable"}),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
                response
            }
        }
    }

    /// Streams the rows as JSON Lines in chunks of about 64 KiB.
    fn stream_rows(&self, with_values: bool) -> Response<AdminBody> {
        let (rows_tx, mut rows) = mpsc::channel::<Row>(1024);
        let (body_tx, body) = mpsc::channel(4);
        let reading = self.eraser.store().rows(with_values, rows_tx);
        tokio::spawn(async move {
            let reader = tokio::spawn(reading);
            let mut chunk = String::with_capacity(64 * 1024);
            while let Some(row) = rows.recv().await {
                chunk.push_str(&row.to_line());
                if chunk.len() >= 60 * 1024 {
                    let full = std::mem::replace(&mut chunk, String::with_capacity(64 * 1024));
                    if body_tx.send(Ok(Bytes::from(full))).await.is_err() {
                        return; // the client went away; the reader stops at its next send
                    }
                }
            }
            let outcome = match reader.await {
                Ok(Ok(())) if chunk.is_empty() => return,
                Ok(Ok(())) => Ok(Bytes::from(chunk)),
                Ok(Err(err)) => Err(std::io::Error::other(err.to_string())),
                Err(err) => Err(std::io::Error::other(err.to_string())),
            };
            if let Err(err) = &outcome {
                tracing::error!(error = %err, "reading the store for an export failed");
            }
            let _ = body_tx.send(outcome).await;
        });
        let mut response = Response::new(http_body_util::Either::Right(ChannelBody(body)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/jsonl"),
        );
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &http::HeaderMap, expected: &Secret) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(
        given.trim().as_bytes(),
        expected.expose().as_bytes(),
    )
    .is_ok()
}
