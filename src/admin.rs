//! The admin listener: `/healthz` (the process is alive), `/readyz` (it should get traffic),
//! `/metrics` (Prometheus text), and the store endpoints behind `server.admin_token`
//! (`admin_store`). Plain HTTP/1.1; keep it on loopback or a private interface.

use crate::admin_store::{is_store_path, StoreAdmin};
pub use crate::health::ReadinessCheck;
use crate::metrics::{Gauge, Registry};
use crate::proxy::{full, BoxFuture};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::family::Family;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The app accepts TCP connections.
pub struct UpstreamReachable {
    pub authority: http::uri::Authority,
    pub timeout: Duration,
}

impl ReadinessCheck for UpstreamReachable {
    fn name(&self) -> &'static str {
        "upstream"
    }

    fn check(&self) -> BoxFuture<Result<(), String>> {
        let target = format!(
            "{}:{}",
            self.authority.host(),
            self.authority.port_u16().unwrap_or(80)
        );
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(format!("cannot connect to {target}: {err}")),
                Err(_) => Err(format!("connecting to {target} timed out")),
            }
        })
    }
}

/// Shared readiness state.
pub struct Readiness {
    draining: AtomicBool,
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Self {
            draining: AtomicBool::new(false),
            checks,
        }
    }

    /// From now on /readyz fails: the process is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Runs every check concurrently; returns (ready, JSON report).
    pub async fn evaluate(&self) -> (bool, serde_json::Value) {
        let results = futures_join_all(
            self.checks
                .iter()
                .map(|check| (check.name(), check.advisory(), check.check())),
        )
        .await;
        let mut warnings = serde_json::Map::new();
        let mut report = serde_json::Map::new();
        let mut ready = !self.is_draining();
        report.insert(
            "draining".into(),
            serde_json::Value::Bool(self.is_draining()),
        );
        for (name, advisory, result) in results {
            if advisory {
                if let Err(warning) = result {
                    warnings.insert(name.into(), serde_json::Value::String(warning));
                }
                continue;
            }
            let value = match result {
                Ok(()) => "ok".to_string(),
                Err(reason) => {
                    ready = false;
                    reason
                }
            };
            report.insert(name.into(), serde_json::Value::String(value));
        }
        (
            ready,
            serde_json::json!({ "ready": ready, "checks": report, "warnings": warnings }),
        )
    }
}

type Checked = (&'static str, bool, Result<(), String>);

async fn futures_join_all(
    checks: impl Iterator<Item = (&'static str, bool, BoxFuture<Result<(), String>>)>,
) -> Vec<Checked> {
    let handles: Vec<_> = checks
        .map(|(name, advisory, future)| (name, advisory, tokio::spawn(future)))
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for (name, advisory, handle) in handles {
        let result = handle
            .await
            .unwrap_or_else(|_| Err("check panicked".to_string()));
        results.push((name, advisory, result));
    }
    results
}

/// Serves the admin endpoints until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    metrics: Arc<Registry>,
    store: Option<Arc<StoreAdmin>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "admin accept failed");
                    continue;
                }
            },
            _ = crate::lifecycle::stopped(&mut stop) => return,
        };
        let readiness = readiness.clone();
        let metrics = metrics.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let readiness = readiness.clone();
                let metrics = metrics.clone();
                let store = store.clone();
                async move {
                    let response = match &store {
                        Some(store) if is_store_path(request.uri().path()) => {
                            store.route(request).await
                        }
                        _ => route(request, &readiness, &metrics).await.map(Either::Left),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `tether_ready` and one `tether_readiness_check{check=...}` per check (1 ok, 0 failing),
/// evaluated at scrape time.
fn readiness_metrics(ready: bool, report: &serde_json::Value) -> String {
    let mut registry = Registry::with_prefix("tether");
    let gauge = Gauge::<i64>::default();
    gauge.set(i64::from(ready));
    registry.register("ready", "Whether /readyz would answer 200.", gauge);
    let checks = Family::<[(&'static str, String); 1], Gauge<i64>>::default();
    if let Some(report) = report["checks"].as_object() {
        for (name, result) in report.iter().filter(|(name, _)| *name != "draining") {
            checks
                .get_or_create(&[("check", name.clone())])
                .set(i64::from(result == "ok"));
        }
    }
    registry.register(
        "readiness_check",
        "Each readiness check: 1 passing, 0 failing.",
        checks,
    );
    crate::metrics::render(&registry)
}

async fn route(
    request: Request<Incoming>,
    readiness: &Readiness,
    metrics: &Registry,
) -> Response<crate::proxy::ResponseBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return full(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match request.uri().path() {
        "/healthz" => full(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let (ready, report) = readiness.evaluate().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            full(status, "application/json", report.to_string())
        }
        "/metrics" => {
            // Readiness as a metric too, so alerts need no probe of their own.
            let (ready, report) = readiness.evaluate().await;
            let mut text = crate::metrics::render(metrics);
            text.push_str(&readiness_metrics(ready, &report));
            full(StatusCode::OK, crate::metrics::CONTENT_TYPE, text)
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}
