//! Keep-alive connections to the app, kept per serving core.
//!
//! Each serving core runs its own single-threaded runtime (see `server`), so a connection is
//! opened, used, parked and reused on one thread: its socket stays registered with that core's
//! reactor, and the task serving a request drives the connection itself (no connection task, no
//! channel hand-off). The idle lists are therefore thread-local, one per `Upstream`.

use super::RequestBody;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

pub type Driver = Connection<TokioIo<TcpStream>, RequestBody>;

/// One HTTP/1.1 connection to the app: the handle requests are sent through, and the state
/// machine that reads and writes the socket, polled by whoever holds the connection.
pub struct AppConnection {
    pub sender: SendRequest<RequestBody>,
    /// Boxed once per connection: it is large, and a connection moves between the pool, the
    /// request's future and the response body on every request.
    pub driver: Box<Driver>,
}

impl AppConnection {
    /// Polls the connection's I/O once. `Ready` means it is finished (closed or failed).
    pub fn drive(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        Pin::new(&mut *self.driver).poll(cx)
    }

    /// Whether the connection can take another request, after letting it notice a close by the
    /// app and settle into its idle state (hyper marks it ready only when polled while idle).
    /// Always polled: hyper notices an idle connection's end only when polled before the next
    /// request is queued; with a request queued, it writes it and then waits for an answer that
    /// never comes. (The poll costs no system call unless the socket has news: tokio clears a
    /// socket's readiness after a short read.)
    fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx).is_pending() && self.sender.is_ready()
    }
}

/// Which pool the idle lists belong to, and how long and how many it keeps.
pub struct Pool {
    id: u64,
    idle_timeout: Duration,
    max_idle_per_core: usize,
}

struct Idle {
    connection: AppConnection,
    since: Instant,
}

/// One pool's idle connections on one core.
#[derive(Default)]
struct CoreList {
    /// Most recently parked last: reuse takes the warmest, the reaper finds the oldest first.
    idle: VecDeque<Idle>,
    /// A reaper task is running for this list.
    reaping: bool,
}

thread_local! {
    static IDLE: RefCell<HashMap<u64, CoreList>> = RefCell::new(HashMap::new());
}

impl Pool {
    pub fn new(idle_timeout: Duration, max_idle_per_core: usize) -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            idle_timeout,
            max_idle_per_core,
        })
    }

    /// The most recently parked connection of this core that is still usable. Each candidate is
    /// polled once first, so one the app closed while it was idle is noticed and dropped here
    /// rather than failing the request sent on it.
    pub fn take(&self, cx: &mut Context<'_>) -> Option<AppConnection> {
        loop {
            let idle = IDLE
                .try_with(|lists| lists.borrow_mut().get_mut(&self.id)?.idle.pop_back())
                .ok()
                .flatten()?;
            let mut connection = idle.connection;
            if idle.since.elapsed() < self.idle_timeout && connection.reusable(cx) {
                return Some(connection);
            }
        }
    }

    /// Parks a connection whose exchange is complete for the next request on this core; one
    /// that cannot take another request (closed, or still sending a body the app did not wait
    /// for) is dropped, which closes it.
    pub fn put(self: &Arc<Self>, mut connection: AppConnection, cx: &mut Context<'_>) {
        // Usually hyper has already settled it (ready) while delivering the body's end; the poll
        // before reuse in `take` is the one that must not be skipped.
        let parkable = connection.sender.is_ready() || connection.reusable(cx);
        if self.max_idle_per_core == 0 || !parkable {
            return;
        }
        let idle = Idle {
            connection,
            since: Instant::now(),
        };
        let start_reaper = IDLE.try_with(|lists| {
            let mut lists = lists.borrow_mut();
            let list = lists.entry(self.id).or_default();
            if list.idle.len() >= self.max_idle_per_core {
                list.idle.pop_front(); // the longest idle goes
            }
            list.idle.push_back(idle);
            !std::mem::replace(&mut list.reaping, true)
        });
        if start_reaper == Ok(true) {
            self.clone().spawn_reaper();
        }
    }

    /// Parks a connection where no task context is at hand (a body dropped at its end).
    pub fn put_without_context(self: &Arc<Self>, connection: AppConnection) {
        self.put(connection, &mut Context::from_waker(Waker::noop()));
    }

    /// Closes this core's connections idle for longer than the timeout, while there are any:
    /// an idle connection is not polled, so without this a close by the app would leave the
    /// socket half-open until the next request on this core.
    fn spawn_reaper(self: Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.reaped_all(); // no runtime: parked until the next request here
        };
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(self.idle_timeout / 2).await;
                if self.reap() {
                    return;
                }
            }
        });
    }

    /// Drops the expired connections of this core; true when none is left (the reaper stops).
    fn reap(&self) -> bool {
        IDLE.try_with(|lists| {
            let mut lists = lists.borrow_mut();
            let Some(list) = lists.get_mut(&self.id) else {
                return true;
            };
            list.idle
                .retain(|idle| idle.since.elapsed() < self.idle_timeout);
            list.reaping = !list.idle.is_empty();
            !list.reaping
        })
        .unwrap_or(true)
    }

    fn reaped_all(&self) {
        let _ = IDLE.try_with(|lists| {
            if let Some(list) = lists.borrow_mut().get_mut(&self.id) {
                list.reaping = false;
            }
        });
    }
}
