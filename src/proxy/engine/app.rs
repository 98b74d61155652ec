//! The engine's connections to the app: plain TCP, kept idle per serving core (LIFO) and
//! checked before reuse, so a connection the app closed while it waited is not handed a request.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Idle = Arc<Mutex<Vec<(TcpStream, Instant)>>>;

pub struct AppConnections {
    host: String,
    port: u16,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Idle,
    /// A task closes connections idle past the timeout while any are kept.
    reaping: Arc<AtomicBool>,
}

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Failed(std::io::Error),
}

impl AppConnections {
    pub fn new(
        authority: &http::uri::Authority,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        Self {
            host,
            port: authority.port_u16().unwrap_or(80),
            connect_timeout,
            idle_timeout,
            max_idle,
            idle: Arc::default(),
            reaping: Arc::default(),
        }
    }

    /// An idle connection that is still open, newest first; None when there is none.
    pub fn take(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() >= self.idle_timeout {
                continue;
            }
            // Readable now means the app closed it (or sent what nobody asked for).
            match stream.try_read(&mut [0u8; 1]) {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    /// A new connection within the connect timeout.
    pub async fn connect(&self) -> Result<TcpStream, ConnectError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(ConnectError::Failed)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Keeps a connection whose last exchange ended cleanly.
    pub fn put(&self, stream: TcpStream) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max_idle {
            idle.remove(0);
        }
        idle.push((stream, Instant::now()));
        drop(idle);
        if !self.reaping.swap(true, Relaxed) {
            tokio::spawn(reap(
                self.idle.clone(),
                self.reaping.clone(),
                self.idle_timeout,
            ));
        }
    }
}

/// Closes connections idle past `timeout` (the app would close them soon anyway, and a kept
/// socket is a file descriptor); ends when none are left.
async fn reap(idle: Idle, reaping: Arc<AtomicBool>, timeout: Duration) {
    loop {
        let oldest = {
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|(_, since)| since.elapsed() < timeout);
            if idle.is_empty() {
                reaping.store(false, Relaxed);
                return;
            }
            idle.iter()
                .map(|(_, since)| *since)
                .min()
                .expect("not empty")
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(oldest + timeout)).await;
    }
}
