//! `/metrics` as data: one prometheus-client registry, on which every module registers the
//! families it owns (the proxy's below, each vendor's in its own module, the store's, the
//! identity probe's); label values are enums that name themselves (`label_values!`). The admin
//! listener renders the registry in the Prometheus text format (0.0.4).
//!
//! The hot path pays one relaxed atomic add per event: labelled counters are resolved to their
//! child counter once, at start, and the latency histogram is lock-free.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelValue, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::MetricType;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

/// A label's values as an enum: `ALL`, each variant's text, and its encoding.
#[macro_export]
macro_rules! label_values {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            pub fn text(self) -> &'static str {
                match self { $(Self::$variant => $text,)* }
            }
        }

        impl $crate::metrics::LabelValue for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }
            fn text(self) -> &'static str {
                $name::text(self)
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

// Other modules name their label values with it too (`crate::metrics::label_values!`).
pub(crate) use label_values;

/// What `label_values!` implements: the variants and their texts.
pub trait LabelValue:
    Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static
{
    fn all() -> &'static [Self];
    fn text(self) -> &'static str;
    /// The variant's position in `all()`.
    fn index(self) -> usize;
}

/// A label value as prometheus-client encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Value<L>(L);

impl<L: LabelValue> EncodeLabelValue for Value<L> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.text())
    }
}

/// One counter family with a single label whose values are `L`'s variants, every child made
/// at registration (so a scrape shows zeros, and counting needs no lookup).
pub struct CountersBy<L: LabelValue> {
    /// One counter per value, in `L::all()` order.
    counters: Vec<Counter>,
    label: std::marker::PhantomData<L>,
}

impl<L: LabelValue> CountersBy<L> {
    pub fn register(registry: &mut Registry, name: &str, help: &str, key: &'static str) -> Self {
        let family = Family::<[(&'static str, Value<L>); 1], Counter>::default();
        let counters = L::all()
            .iter()
            .map(|&value| family.get_or_create(&[(key, Value(value))]).clone())
            .collect();
        registry.register(name, help, family);
        Self {
            counters,
            label: std::marker::PhantomData,
        }
    }

    pub fn inc(&self, value: L) {
        self.counters[value.index()].inc();
    }
}

/// A counter registered under `name` (rendered `name_total`).
pub fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// A value read at scrape time (a gauge), for state that lives elsewhere (the store's size,
/// the certificate's expiry). None: not shown.
pub fn gauge_fn<V, F>(registry: &mut Registry, name: &'static str, help: &'static str, read: F)
where
    V: EncodeGaugeValue + 'static,
    F: Fn() -> Option<V> + Send + Sync + 'static,
{
    let encode = move |mut encoder: DescriptorEncoder| match read() {
        Some(value) => encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&value),
        None => Ok(()),
    };
    registry.register_collector(Box::new(ReadAtScrape { name, encode }));
}

/// A count kept elsewhere (a store's failed operations), read at scrape time as a counter.
pub fn counter_fn<F>(registry: &mut Registry, name: &'static str, help: &'static str, read: F)
where
    F: Fn() -> u64 + Send + Sync + 'static,
{
    let encode = move |mut encoder: DescriptorEncoder| {
        encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&read(), None)
    };
    registry.register_collector(Box::new(ReadAtScrape { name, encode }));
}

struct ReadAtScrape<E> {
    name: &'static str,
    encode: E,
}

impl<E> std::fmt::Debug for ReadAtScrape<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<E> Collector for ReadAtScrape<E>
where
    E: Fn(DescriptorEncoder) -> Result<(), std::fmt::Error> + Send + Sync + 'static,
{
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        (self.encode)(encoder)
    }
}

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A lock-free latency histogram. The count is the sum of the buckets (the last one unbounded),
/// so a scrape racing an observation can never show a bucket above `+Inf`.
#[derive(Debug, Default)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
    ) -> std::sync::Arc<Self> {
        let histogram = std::sync::Arc::new(Self {
            name,
            help,
            ..Self::default()
        });
        registry.register_collector(Box::new(histogram.clone()));
        histogram
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// Per-bucket counts (the last bound is +Inf) and their sum.
    fn read(&self) -> (Vec<(f64, u64)>, u64) {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(le, count)| (le, count.load(Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (buckets, count)
    }
}

impl Collector for Histogram {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count) = self.read();
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        encoder
            .encode_descriptor(self.name, self.help, None, MetricType::Histogram)?
            .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

label_values! {
    /// Responses by status class.
    pub enum StatusClass {
        Informational = "1xx",
        Success = "2xx",
        Redirection = "3xx",
        ClientError = "4xx",
        ServerError = "5xx",
    }
}

impl StatusClass {
    fn of(status: u16) -> Self {
        Self::ALL[usize::from((status / 100).clamp(1, 5) - 1)]
    }
}

label_values! {
    /// Why a forwarded request got no answer from the app.
    pub enum UpstreamFailure {
        Connect = "connect",
        Timeout = "timeout",
        Other = "other",
    }
}

label_values! {
    /// Requests Tether refused at its edges before doing any work for them.
    pub enum EdgeRefusal {
        /// HTTP/1 `Content-Length` together with `Transfer-Encoding` (400, connection closed).
        AmbiguousLength = "ambiguous_length",
        /// An HTTP/2 header list over `limits.max_header_bytes` (431).
        HeadersTooLarge = "headers_too_large",
    }
}

label_values! {
    /// Pages under `inject.paths` passed without the snippets.
    pub enum InjectSkip {
        /// The page's Content-Security-Policy would block the tags.
        Csp = "csp",
        /// A charset that is not ASCII-compatible (or unknown).
        Charset = "charset",
        /// A content coding Tether does not decode (zstd, stacked codings).
        Encoding = "encoding",
        /// `Cache-Control: no-transform`.
        NoTransform = "no_transform",
        /// `Content-Disposition: attachment`.
        Attachment = "attachment",
        /// The rewriter gave up (a tag over its memory limit); the rest passed unchanged.
        RewriteFailed = "rewrite_failed",
    }
}

label_values! {
    /// How a certificate reload from disk ended.
    pub enum ReloadResult {
        Success = "success",
        Failure = "failure",
    }
}

/// The proxy's own families (the request path, connections, TLS, `[inject]`).
pub struct Metrics {
    responses: CountersBy<StatusClass>,
    pub upstream_latency: std::sync::Arc<Histogram>,
    upstream_failures: CountersBy<UpstreamFailure>,
    active_connections: Gauge,
    connections_total: Counter,
    tls_handshake_failures: Counter,
    cert_reloads: CountersBy<ReloadResult>,
    spoofed_identity_headers: Counter,
    reserved_path_rejections: Counter,
    websocket_tunnels: Counter,
    http1_handoffs: Counter,
    refusals: CountersBy<EdgeRefusal>,
    inject_pages: Counter,
    inject_skips: CountersBy<InjectSkip>,
    inject_csp_warned: AtomicBool,
}

impl Metrics {
    /// Registers the proxy's families on `registry` (the root, prefix `tether`).
    pub fn new(registry: &mut Registry) -> Self {
        let r = registry;
        Self {
            responses: CountersBy::register(
                r,
                "responses",
                "Responses sent to clients, by status class.",
                "class",
            ),
            upstream_latency: Histogram::register(
                r,
                "upstream_response_seconds",
                "Time from forwarding a request to the app's response headers.",
            ),
            upstream_failures: CountersBy::register(
                r,
                "upstream_failures",
                "Forwarded requests the app did not answer.",
                "kind",
            ),
            active_connections: {
                let gauge = Gauge::default();
                r.register(
                    "active_connections",
                    "Client connections open now.",
                    gauge.clone(),
                );
                gauge
            },
            connections_total: counter(r, "connections", "Client connections accepted."),
            tls_handshake_failures: counter(
                r,
                "tls_handshake_failures",
                "TLS handshakes that failed or timed out.",
            ),
            cert_reloads: CountersBy::register(
                r,
                "cert_reloads",
                "Certificate reloads from disk, by result.",
                "result",
            ),
            spoofed_identity_headers: counter(
                r,
                "spoofed_identity_headers",
                "Identity headers removed from client requests.",
            ),
            reserved_path_rejections: counter(
                r,
                "reserved_path_rejections",
                "Requests refused for disguising the reserved prefix.",
            ),
            websocket_tunnels: counter(
                r,
                "websocket_tunnels",
                "WebSocket upgrades tunnelled to the app.",
            ),
            refusals: CountersBy::register(
                r,
                "requests_refused",
                "Requests refused at the edge, by reason.",
                "reason",
            ),
            inject_pages: counter(
                r,
                "inject_pages",
                "HTML pages that got the injected snippets.",
            ),
            inject_skips: CountersBy::register(
                r,
                "inject_skipped",
                "Pages under inject.paths passed without the snippets, by reason.",
                "reason",
            ),
            http1_handoffs: counter(
                r,
                "http1_handoffs",
                "HTTP/1.1 connections Tether's engine left to hyper at a request it does not serve \
                 itself (an upgrade, Expect, an injected page, a chunked endpoint body, ...).",
            ),
            inject_csp_warned: AtomicBool::new(false),
        }
    }

    pub fn response(&self, status: u16) {
        self.responses.inc(StatusClass::of(status));
    }

    pub fn upstream_failure(&self, kind: UpstreamFailure) {
        self.upstream_failures.inc(kind);
    }

    pub fn http1_handoff(&self) {
        self.http1_handoffs.inc();
    }

    pub fn connection_opened(&self) {
        self.active_connections.inc();
        self.connections_total.inc();
    }

    pub fn connection_closed(&self) {
        self.active_connections.dec();
    }

    pub fn active_connections(&self) -> i64 {
        self.active_connections.get()
    }

    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    pub fn cert_reload(&self, ok: bool) {
        let result = if ok {
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        };
        self.cert_reloads.inc(result);
    }

    pub fn spoofed_identity_header(&self, count: u64) {
        self.spoofed_identity_headers.inc_by(count);
    }

    pub fn reserved_path_rejected(&self) {
        self.reserved_path_rejections.inc();
    }

    pub fn refused(&self, reason: EdgeRefusal) {
        self.refusals.inc(reason);
    }

    pub fn page_injected(&self) {
        self.inject_pages.inc();
    }

    pub fn page_skipped(&self, reason: InjectSkip) {
        self.inject_skips.inc(reason);
    }

    /// True the first time only: the CSP warning is logged once per process, not per page.
    pub fn first_csp_warning(&self) -> bool {
        !self.inject_csp_warned.swap(true, Relaxed)
    }

    pub fn websocket_tunnel(&self) {
        self.websocket_tunnels.inc();
    }
}

/// The registry in the Prometheus text format (0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    if let Err(err) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        tracing::error!(error = %err, "cannot render the metrics");
    }
    out
}

/// The content type of `render`'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_never_shows_a_bucket_above_inf() {
        let mut registry = Registry::with_prefix("t");
        let histogram = Histogram::register(&mut registry, "latency_seconds", "Latency.");
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_secs(9));
        let text = render(&registry);
        assert!(
            text.contains("t_latency_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("t_latency_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("t_latency_seconds_count 2"), "{text}");
        let (buckets, count) = histogram.read();
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), count);
    }

    #[test]
    fn labelled_counters_show_every_value() {
        let mut registry = Registry::with_prefix("t");
        let metrics = Metrics::new(&mut registry);
        metrics.response(204);
        let text = render(&registry);
        assert!(
            text.contains("t_responses_total{class=\"2xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("t_responses_total{class=\"5xx\"} 0"),
            "{text}"
        );
        assert!(text.contains("# TYPE t_responses_total counter"), "{text}");
    }
}
