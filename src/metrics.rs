//! Process-wide counters rendered in the Prometheus text format on the admin listener.
//! Plain atomics: the hot path pays one relaxed increment per event and nothing else.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (le, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Why a forwarded request got no answer from the app.
#[derive(Debug, Clone, Copy)]
pub enum UpstreamFailure {
    Connect = 0,
    Timeout = 1,
    Other = 2,
}

/// Requests Tether refused at its edges before doing any work for them.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// HTTP/1 `Content-Length` together with `Transfer-Encoding` (400, connection closed).
    AmbiguousLength = 0,
    /// An HTTP/2 header list over `limits.max_header_bytes` (431).
    HeadersTooLarge = 1,
}

const REFUSALS: [&str; 2] = ["ambiguous_length", "headers_too_large"];

/// Pages under `inject.paths` passed without the snippets.
#[derive(Debug, Clone, Copy)]
pub enum InjectSkip {
    /// The page's Content-Security-Policy would block the tags.
    Csp = 0,
    /// A charset that is not ASCII-compatible (or unknown).
    Charset = 1,
    /// A content coding Tether does not decode (zstd, stacked codings).
    Encoding = 2,
    /// `Cache-Control: no-transform`.
    NoTransform = 3,
    /// `Content-Disposition: attachment`.
    Attachment = 4,
    /// The rewriter gave up (a tag over its memory limit); the rest passed unchanged.
    RewriteFailed = 5,
}

const INJECT_SKIPS: [&str; 6] = [
    "csp",
    "charset",
    "encoding",
    "no_transform",
    "attachment",
    "rewrite_failed",
];

/// More metrics to append to the exposition (vendor counters).
/// One counter in the Prometheus text format.
pub fn write_counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

pub type MetricsSource = std::sync::Arc<dyn Fn(&mut String) + Send + Sync>;

#[derive(Default)]
pub struct Metrics {
    sources: Vec<MetricsSource>,
    /// Responses by status class: index 0 = 1xx ... 4 = 5xx.
    responses: [AtomicU64; 5],
    pub upstream_latency: Histogram,
    upstream_failures: [AtomicU64; 3],
    active_connections: AtomicI64,
    connections_total: AtomicU64,
    tls_handshake_failures: AtomicU64,
    cert_reloads_ok: AtomicU64,
    cert_reloads_failed: AtomicU64,
    spoofed_identity_headers: AtomicU64,
    reserved_path_rejections: AtomicU64,
    websocket_tunnels: AtomicU64,
    refusals: [AtomicU64; REFUSALS.len()],
    inject_pages: AtomicU64,
    inject_skips: [AtomicU64; INJECT_SKIPS.len()],
    inject_csp_warned: std::sync::atomic::AtomicBool,
}

impl Metrics {
    pub fn with_sources(sources: Vec<MetricsSource>) -> Self {
        Self {
            sources,
            ..Self::default()
        }
    }

    pub fn response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    pub fn upstream_failure(&self, kind: UpstreamFailure) {
        self.upstream_failures[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn connection_opened(&self) {
        self.active_connections.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.active_connections.fetch_sub(1, Relaxed);
    }

    pub fn active_connections(&self) -> i64 {
        self.active_connections.load(Relaxed)
    }

    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    pub fn cert_reload(&self, ok: bool) {
        let counter = if ok {
            &self.cert_reloads_ok
        } else {
            &self.cert_reloads_failed
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn cert_reloads(&self) -> (u64, u64) {
        (
            self.cert_reloads_ok.load(Relaxed),
            self.cert_reloads_failed.load(Relaxed),
        )
    }

    pub fn spoofed_identity_header(&self, count: u64) {
        self.spoofed_identity_headers.fetch_add(count, Relaxed);
    }

    pub fn reserved_path_rejected(&self) {
        self.reserved_path_rejections.fetch_add(1, Relaxed);
    }

    pub fn refused(&self, reason: Refusal) {
        self.refusals[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn page_injected(&self) {
        self.inject_pages.fetch_add(1, Relaxed);
    }

    pub fn page_skipped(&self, reason: InjectSkip) {
        self.inject_skips[reason as usize].fetch_add(1, Relaxed);
    }

    /// True the first time only: the CSP warning is logged once per process, not per page.
    pub fn first_csp_warning(&self) -> bool {
        !self.inject_csp_warned.swap(true, Relaxed)
    }

    pub fn websocket_tunnel(&self) {
        self.websocket_tunnels.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = write_counter;
        let _ = writeln!(
            out,
            "# HELP tether_responses_total Responses sent to clients, by status class.\n\
             # TYPE tether_responses_total counter"
        );
        for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let value = self.responses[i].load(Relaxed);
            let _ = writeln!(out, "tether_responses_total{{class=\"{class}\"}} {value}");
        }
        self.upstream_latency.render(
            &mut out,
            "tether_upstream_response_seconds",
            "Time from forwarding a request to the app's response headers.",
        );
        let _ = writeln!(
            out,
            "# HELP tether_upstream_failures_total Forwarded requests the app did not answer.\n\
             # TYPE tether_upstream_failures_total counter"
        );
        for (i, kind) in ["connect", "timeout", "other"].iter().enumerate() {
            let value = self.upstream_failures[i].load(Relaxed);
            let _ = writeln!(
                out,
                "tether_upstream_failures_total{{kind=\"{kind}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tether_active_connections Client connections open now.\n\
             # TYPE tether_active_connections gauge\ntether_active_connections {}",
            self.active_connections.load(Relaxed)
        );
        counter(
            &mut out,
            "tether_connections_total",
            "Client connections accepted.",
            self.connections_total.load(Relaxed),
        );
        counter(
            &mut out,
            "tether_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            self.tls_handshake_failures.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP tether_cert_reloads_total Certificate reloads from disk, by result.\n\
             # TYPE tether_cert_reloads_total counter\n\
             tether_cert_reloads_total{{result=\"success\"}} {}\n\
             tether_cert_reloads_total{{result=\"failure\"}} {}",
            self.cert_reloads_ok.load(Relaxed),
            self.cert_reloads_failed.load(Relaxed)
        );
        counter(
            &mut out,
            "tether_spoofed_identity_headers_total",
            "Identity headers removed from client requests.",
            self.spoofed_identity_headers.load(Relaxed),
        );
        counter(
            &mut out,
            "tether_reserved_path_rejections_total",
            "Requests refused for disguising the reserved prefix.",
            self.reserved_path_rejections.load(Relaxed),
        );
        counter(
            &mut out,
            "tether_websocket_tunnels_total",
            "WebSocket upgrades tunnelled to the app.",
            self.websocket_tunnels.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP tether_requests_refused_total Requests refused at the edge, by reason.\n\
             # TYPE tether_requests_refused_total counter"
        );
        for (i, reason) in REFUSALS.iter().enumerate() {
            let value = self.refusals[i].load(Relaxed);
            let _ = writeln!(
                out,
                "tether_requests_refused_total{{reason=\"{reason}\"}} {value}"
            );
        }
        self.render_inject(&mut out);
        for source in &self.sources {
            source(&mut out);
        }
        out
    }

    fn render_inject(&self, out: &mut String) {
        write_counter(
            out,
            "tether_inject_pages_total",
            "HTML pages that got the injected snippets.",
            self.inject_pages.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP tether_inject_skipped_total Pages under inject.paths passed without the snippets, by reason.\n\
             # TYPE tether_inject_skipped_total counter"
        );
        for (i, reason) in INJECT_SKIPS.iter().enumerate() {
            let value = self.inject_skips[i].load(Relaxed);
            let _ = writeln!(
                out,
                "tether_inject_skipped_total{{reason=\"{reason}\"}} {value}"
            );
        }
    }
}
