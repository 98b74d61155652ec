//! Listeners and connections: binding, TLS handshakes, HTTP/1.1 and HTTP/2 serving with the
//! configured limits, idle timeouts, and graceful shutdown.

use crate::admin::{self, Readiness, UpstreamReachable};
use crate::admin_store::StoreAdmin;
use crate::config::{Config, StoreKind};
use crate::io::{Activity, ActivityIo};
use crate::lifecycle::stopped;
pub use crate::lifecycle::StartError;
use crate::metrics::Metrics;
use crate::proxy::framing::{AmbiguousRequests, Follower};
use crate::proxy::{ConnInfo, Proxy};
use crate::router::Extensions;
use crate::tls::{self, CertStore};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// What every connection needs, shared.
struct Shared {
    proxy: Arc<Proxy>,
    metrics: Arc<Metrics>,
    config: Config,
    connections: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: watch::Receiver<bool>,
}

/// A started Tether: its bound addresses and the handle to stop it.
pub struct Running {
    pub tls_addr: SocketAddr,
    pub plain_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: watch::Sender<bool>,
    /// The admin listener stops last, so /readyz reports the drain while it happens.
    admin_stop: watch::Sender<bool>,
    tracker: TaskTracker,
    grace: Duration,
    delay: Duration,
    /// Joined on shutdown, so everything they hold (stores, clients) is released when it returns.
    cores: Vec<std::thread::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every in-flight request finished within the grace period.
    pub drained: bool,
}

/// Starts Tether with the vendor endpoints its configuration enables.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let extensions = crate::router::build(&config).await?;
    start_with(config, extensions).await
}

/// Starts the proxy alone: everything under the prefix answers 404.
pub async fn start_proxy_only(config: Config) -> Result<Running, StartError> {
    start_with(config, Extensions::none()).await
}

/// Starts Tether with the given reserved-path endpoints, readiness checks and metrics.
async fn start_with(config: Config, extensions: Extensions) -> Result<Running, StartError> {
    let Extensions {
        endpoints,
        mut checks,
        mut registry,
        eraser,
        page,
    } = extensions;
    let certs = CertStore::load(&config.tls)
        .map_err(|err| StartError::Config(config.origin.error_at(err.key, err.message)))?;
    tls::register_metrics(&certs, &mut registry);
    let metrics = Arc::new(Metrics::new(&mut registry));
    let registry = Arc::new(registry);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(
        certs.clone(),
        config.tls.min_version,
    )));
    checks.push(Arc::new(tls::ExpiryWarning {
        store: certs.clone(),
        threshold: config.tls.expiry_warning,
    }));
    checks.insert(
        0,
        Arc::new(UpstreamReachable {
            authority: config.upstream.url.clone(),
            timeout: config.upstream.connect_timeout,
        }),
    );
    let readiness = Arc::new(Readiness::new(checks));

    // Thread per core: each core runs its own runtime with its own listener (SO_REUSEPORT) and
    // its own pool of upstream connections, so a request and the upstream connection it uses never
    // change threads. (A shared multi-threaded runtime spent most of its time in cross-thread
    // wake-ups; see the README's benchmark notes.)
    let cores = serving_cores(config.server.worker_threads);
    let tls_group = bind_group(config.server.listen, cores)?;
    let plain_group = match config.server.listen_plain {
        Some(addr) => Some(bind_group(addr, cores)?),
        None => None,
    };
    let admin_listener = match config.server.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let tls_addr = tls_group[0]
        .local_addr()
        .map_err(|error| StartError::Bind {
            addr: config.server.listen,
            error,
        })?;
    let plain_addr = plain_group
        .as_ref()
        .and_then(|group| group[0].local_addr().ok());
    let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(config.limits.max_connections.max(1)));
    let mut plain_group = plain_group.map(Vec::into_iter);
    let mut cores = Vec::new();
    for (core, tls_listener) in tls_group.into_iter().enumerate() {
        let shared = Arc::new(Shared {
            proxy: Arc::new(Proxy::new(
                &config,
                metrics.clone(),
                endpoints(),
                page.as_ref(),
            )),
            metrics: metrics.clone(),
            connections: connections.clone(),
            tracker: tracker.clone(),
            stop: stop_rx.clone(),
            config: config.clone(),
        });
        let plain_listener = plain_group.as_mut().and_then(Iterator::next);
        let acceptor = acceptor.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tether-core-{core}"))
            .spawn(move || serve_core(tls_listener, plain_listener, acceptor, shared))
            .map_err(|error| StartError::Bind {
                addr: tls_addr,
                error,
            })?;
        cores.push(thread);
    }
    let shared_config = config;
    let mut background = Vec::new();
    let store_admin = eraser.map(|eraser| {
        if shared_config.store.kind == StoreKind::Redis {
            // Other replicas erase too: follow the shared erasure log.
            background.push(tokio::spawn(
                eraser.clone().follow_erasures(stop_rx.clone()),
            ));
        }
        Arc::new(StoreAdmin {
            eraser,
            token: shared_config.server.admin_token.clone(),
        })
    });
    if let Some(listener) = admin_listener {
        background.push(tokio::spawn(admin::serve(
            listener,
            readiness.clone(),
            registry,
            store_admin,
            admin_stop_rx,
        )));
    }
    background.push(tokio::spawn(tls::watch(
        certs.clone(),
        shared_config.tls.reload_interval,
        metrics.clone(),
        stop_rx,
    )));
    tracing::info!(%tls_addr, ?plain_addr, ?admin_addr, cores = cores.len(), upstream = %shared_config.upstream.url, "tether is serving");
    Ok(Running {
        tls_addr,
        plain_addr,
        admin_addr,
        metrics,
        readiness,
        stop: stop_tx,
        admin_stop: admin_stop_tx,
        tracker,
        grace: shared_config.server.shutdown_grace,
        delay: shared_config.server.shutdown_delay,
        cores,
        background,
    })
}

fn serving_cores(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One listening socket per core on the same address (SO_REUSEPORT: the kernel spreads new
/// connections across them). Port 0 is resolved by the first socket and reused by the others.
fn bind_group(addr: SocketAddr, cores: usize) -> Result<Vec<std::net::TcpListener>, StartError> {
    // SO_REUSEPORT would let this process share a port another one already serves; a plain bind
    // first makes "address in use" an error again.
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr).map_err(|error| StartError::Bind { addr, error })?);
    }
    let mut group: Vec<std::net::TcpListener> = Vec::with_capacity(cores);
    let mut target = addr;
    for _ in 0..cores {
        let listener = bind_reuseport(target).map_err(|error| StartError::Bind { addr, error })?;
        target = listener
            .local_addr()
            .map_err(|error| StartError::Bind { addr, error })?;
        group.push(listener);
    }
    Ok(group)
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// A serving core: a single-threaded runtime running this core's accept loops and connections.
/// After the listeners stop it keeps running until its connections finish or the grace ends.
fn serve_core(
    tls_listener: std::net::TcpListener,
    plain_listener: Option<std::net::TcpListener>,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start a serving core");
            return;
        }
    };
    runtime.block_on(async move {
        let mut loops = Vec::new();
        for (listener, tls) in std::iter::once((tls_listener, Some(acceptor)))
            .chain(plain_listener.map(|listener| (listener, None)))
        {
            match TcpListener::from_std(listener) {
                Ok(listener) => {
                    loops.push(tokio::spawn(accept_loop(listener, tls, shared.clone())))
                }
                Err(err) => tracing::error!(error = %err, "cannot register a listener"),
            }
        }
        for accept in loops {
            let _ = accept.await;
        }
        let grace = shared.config.server.shutdown_grace;
        let _ = tokio::time::timeout(grace, shared.tracker.wait()).await;
    });
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| StartError::Bind { addr, error })
}

impl Running {
    /// Graceful shutdown: /readyz fails first, then (after `shutdown_delay`) the listeners close
    /// and every connection is asked to finish; in-flight requests get `shutdown_grace`.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.readiness.start_draining();
        tracing::info!(grace = ?self.grace, "shutting down: readiness now fails");
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let _ = self.stop.send(true);
        self.tracker.close();
        let drained = tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_ok();
        if drained {
            tracing::info!("all connections drained");
        } else {
            tracing::warn!(
                remaining = self.metrics.active_connections(),
                "shutdown grace period over; closing the remaining connections"
            );
        }
        let _ = self.admin_stop.send(true);
        // Each core stops once its connections are done (or its own grace runs out).
        let cores = std::mem::take(&mut self.cores);
        let _ = tokio::task::spawn_blocking(move || {
            for core in cores {
                let _ = core.join();
            }
        })
        .await;
        for task in std::mem::take(&mut self.background) {
            let _ = task.await;
        }
        ShutdownReport { drained }
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    let local = listener.local_addr().ok();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        // Past max_connections, this connection waits unserved and accepting pauses, so further
        // clients wait in the kernel's backlog.
        let permit = tokio::select! {
            permit = shared.connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let local = local.unwrap_or(peer);
        let tls = tls.clone();
        // Spawned on this core's runtime; tracked so shutdown can wait for it.
        tokio::spawn(shared.tracker.clone().track_future(async move {
            shared.metrics.connection_opened();
            serve_connection(stream, peer, local, tls, &shared).await;
            shared.metrics.connection_closed();
            drop(permit);
        }));
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: &Shared,
) {
    let limits = &shared.config.limits;
    let conn = Arc::new(ConnInfo::new(
        peer,
        local,
        tls.is_some(),
        &shared.config.server.trusted_proxies,
    ));
    let activity = Activity::new();
    match tls {
        None => serve_http(stream, false, conn, activity, shared).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    shared.metrics.tls_handshake_failed();
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    shared.metrics.tls_handshake_failed();
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            serve_http(stream, h2, conn, activity, shared).await;
        }
    }
}

async fn serve_http<I>(
    stream: I,
    h2: bool,
    conn: Arc<ConnInfo>,
    activity: Arc<Activity>,
    shared: &Shared,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    let header_bytes = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
    let stop = shared.stop.clone();
    // Over HTTP/1 the connection's framing follower numbers requests that carried both
    // Content-Length and Transfer-Encoding; HTTP/2 has no such framing and never records one.
    let ambiguous = AmbiguousRequests::new();
    let proxy = shared.proxy.clone();
    let engine_conn = conn.clone();
    let service = {
        let ambiguous = ambiguous.clone();
        service_fn(move |request| {
            let ambiguous_length = ambiguous.next_is_ambiguous();
            proxy
                .clone()
                .handle(request, conn.clone(), ambiguous_length)
        })
    };
    if h2 {
        // Clients refuse to send a header list over the advertised size themselves, with
        // REFUSED_STREAM, which tells them to retry. Advertising more than the limit lets the
        // request arrive, so the proxy can answer 431 as it does over HTTP/1; only lists over the
        // advertised size are refused by the client (or answered 431 by h2 itself).
        let advertised = u32::try_from(header_bytes.saturating_mul(4)).unwrap_or(u32::MAX);
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_header_list_size(advertised)
            .serve_connection(
                TokioIo::new(ActivityIo::new(stream, activity.clone())),
                service,
            );
        drive(connection, activity, limits.idle_timeout, stop).await;
    } else if shared.proxy.has_engine() {
        // Tether's own HTTP/1.1 path first; hyper takes the connection over, with what was
        // read of it, at the first request the engine leaves to it.
        use crate::proxy::engine::Handoff;
        match shared
            .proxy
            .serve_http1(stream, &engine_conn, stop.clone())
            .await
        {
            Handoff::Closed => {}
            Handoff::Hyper(stream, read) => {
                let stream = crate::io::Rewind::new(stream, read.freeze());
                serve_hyper_http1(stream, service, ambiguous, activity, shared, stop).await;
            }
        }
    } else {
        serve_hyper_http1(stream, service, ambiguous, activity, shared, stop).await;
    }
}

/// An HTTP/1.1 connection served by hyper.
async fn serve_hyper_http1<I, S, B>(
    stream: I,
    service: S,
    ambiguous: Arc<AmbiguousRequests>,
    activity: Arc<Activity>,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limits = &shared.config.limits;
    let header_bytes = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
    let follower = Follower::new(header_bytes, limits.max_headers, ambiguous);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(header_bytes)
        .writev(false)
        .serve_connection(
            TokioIo::new(ActivityIo::observed(stream, activity.clone(), follower)),
            service,
        )
        .with_upgrades();
    drive(connection, activity, limits.idle_timeout, stop).await;
}

/// hyper connections that can be asked to finish their in-flight requests and close.
trait GracefulConnection: Future<Output = Result<(), hyper::Error>> {
    fn begin_graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    Self: Future<Output = Result<(), hyper::Error>>,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> GracefulConnection for hyper::server::conn::http2::Connection<I, S, E>
where
    Self: Future<Output = Result<(), hyper::Error>>,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn begin_graceful_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs a connection to completion. On shutdown or after the idle timeout it is closed
/// gracefully (in-flight requests finish); if it then stays idle for another idle timeout (a
/// client stalled mid-request), it is dropped.
async fn drive<C: GracefulConnection>(
    connection: C,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stopped(&mut stop), if !closing => {
                connection.as_mut().begin_graceful_shutdown();
                closing = true;
            }
            _ = activity.idle(idle_timeout) => {
                if closing {
                    tracing::debug!("connection stayed idle while closing; dropping it");
                    return;
                }
                connection.as_mut().begin_graceful_shutdown();
                closing = true;
            }
        }
    }
}
