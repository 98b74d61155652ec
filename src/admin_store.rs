//! The admin listener's store endpoints, each behind `server.admin_token` (a Bearer token; off
//! without one):
//!
//! - `DELETE /users/{user}`: erase a user (`erasure`); 200 `{"erased": true|false}` (false: no
//!   mapping was recorded, cached tokens were dropped anyway).
//! - `GET /store/export`: every mapping as JSON Lines (`store::Row`), streamed.
//! - `GET /store/backup`: the same plus the named values, read in one transaction.
//! - `GET /store/values/{name}`, `PUT /store/values/{name}`: one named value (the body, as it
//!   is), 404 when unset; what `tether livechat authorize` keeps the agent's grant with.
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
            (&Method::GET, _) if path.starts_with(VALUES) => {
                self.read_value(&path[VALUES.len()..]).await
            }
            (&Method::PUT, _) if path.starts_with(VALUES) => {
                let name = path[VALUES.len()..].to_string();
                self.write_value(&name, request.into_body()).await
            }
            _ => answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found"}),
            ),
        }
    }

    async fn read_value(&self, encoded_name: &str) -> Response<AdminBody> {
        let Some(name) = decoded(encoded_name) else {
            return bad_value_name();
        };
        match self.eraser.store().value(&name).await {
            Ok(Some(data)) => full(StatusCode::OK, "application/octet-stream", data)
                .map(http_body_util::Either::Left),
            Ok(None) => answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "no such value"}),
            ),
            Err(err) => store_unavailable(&err),
        }
    }

    async fn write_value(&self, encoded_name: &str, body: Incoming) -> Response<AdminBody> {
        use http_body_util::BodyExt;
        let Some(name) = decoded(encoded_name) else {
            return bad_value_name();
        };
        let limited = http_body_util::Limited::new(body, MAX_VALUE_BYTES);
        let data = match limited.collect().await.map(|body| body.to_bytes()) {
            Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(data) => data,
                Err(_) => {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({"error": "expected UTF-8"}),
                    )
                }
            },
            Err(_) => {
                return answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    serde_json::json!({"error": "a value is at most 64 KiB"}),
                )
            }
        };
        match self.eraser.store().set_value(&name, data).await {
            Ok(()) => answer(StatusCode::OK, serde_json::json!({"stored": true})),
            Err(err) => store_unavailable(&err),
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
            Err(err) => store_unavailable(&err),
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

const VALUES: &str = "/store/values/";
const MAX_VALUE_BYTES: usize = 64 * 1024;

fn decoded(encoded: &str) -> Option<String> {
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .filter(|name| !name.is_empty())
        .map(|name| name.into_owned())
}

fn bad_value_name() -> Response<AdminBody> {
    answer(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": "expected /store/values/{name}, the name percent-encoded as UTF-8"}),
    )
}

fn store_unavailable(err: &crate::store::StoreError) -> Response<AdminBody> {
    tracing::error!(error = %err, "the store failed an admin request");
    let mut response = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({"error": "store_unavailable"}),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
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
