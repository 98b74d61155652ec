//! The parts the chaos run breaks: an app that can be killed and restarted on its port, and
//! Tether replicas as real processes (so they can get SIGKILL and SIGTERM).

use crate::support::{engine_name, pinned_engine, TestCerts};
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// A free port on loopback (bound and released; the run starts its listeners at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The app: `/whoami` recognises `session=NAME`, `/echo` answers 200, `/slow` answers 200; the
/// slow requests (`/slow`, and `slow-*` users' `/whoami`) wait at `hold` first. `kill` closes the
/// port and every connection at once.
pub struct App {
    pub addr: SocketAddr,
    tasks: Option<JoinSet<()>>,
    pub hold: Arc<Hold>,
}

/// Where the app keeps slow requests until the test lets them go: the test knows they are in
/// flight when it acts (a SIGTERM), instead of hoping a delay is long enough.
pub struct Hold {
    /// Slow requests waiting now.
    pub waiting: AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
}

impl Hold {
    /// Slow requests wait from now on.
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Lets every waiting slow request (and later ones) through.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        self.waiting.fetch_add(1, SeqCst);
        let _ = open.wait_for(|open| *open).await;
        self.waiting.fetch_sub(1, SeqCst);
    }
}

impl App {
    pub async fn start() -> Self {
        let mut app = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            tasks: None,
            hold: Arc::new(Hold {
                waiting: AtomicUsize::new(0),
                open: tokio::sync::watch::channel(true).0,
            }),
        };
        app.restart().await;
        app
    }

    pub fn kill(&mut self) {
        self.tasks.take(); // dropping the set aborts the listener and every connection
    }

    pub async fn restart(&mut self) {
        self.kill();
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let mut tasks = JoinSet::new();
        let hold = self.hold.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let hold = hold.clone();
                let service = hyper::service::service_fn(move |request| {
                    let hold = hold.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(request, &hold).await) }
                });
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }
}

async fn answer(
    request: http::Request<Incoming>,
    hold: &Hold,
) -> http::Response<Full<bytes::Bytes>> {
    let path = request.uri().path();
    let mut response = http::Response::new(Full::new(bytes::Bytes::from_static(b"ok")));
    if path == "/whoami" {
        let user = request
            .headers()
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("session="))
            .map(str::to_string);
        let Some(user) = user else {
            *response.status_mut() = http::StatusCode::UNAUTHORIZED;
            return response;
        };
        if user.starts_with("slow-") {
            hold.pass().await;
        }
        response
            .headers_mut()
            .insert("x-authenticated-user", user.parse().unwrap());
    } else if path == "/slow" {
        hold.pass().await;
    }
    response
}

/// One Tether replica: the real binary with its own configuration file and fixed ports.
pub struct Replica {
    pub name: &'static str,
    pub https: String,
    /// The port `https` names.
    pub port: u16,
    pub admin: String,
    config: std::path::PathBuf,
    /// Its log (warnings and errors), kept beside the configuration for a failed run.
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Replica {
    pub fn new(
        name: &'static str,
        dir: &std::path::Path,
        certs: &TestCerts,
        app: SocketAddr,
        redis_url: &str,
        accounts_url: &str,
    ) -> Self {
        let (port, admin) = (free_port(), free_port());
        let sandbox = tether_sandbox::livechat::SandboxConfig::default();
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
shutdown_grace = "10s"
worker_threads = 1
http1_engine = "{engine}"
[tls]
cert = "{cert}"
key = "{key}"
[upstream]
url = "http://{app}"
connect_timeout = "500ms"
response_header_timeout = "5s"
[store]
kind = "redis"
url = "{redis_url}"
timeout = "2s"
[livechat]
enabled = true
license_id = 12345
organization_id = "{org}"
client_id = "{client_id}"
client_secret = "{client_secret}"
refresh_token = "{refresh}"
accounts_url = "{accounts_url}"
api_url = "{accounts_url}"
request_timeout = "1s"
[log]
level = "warn"
"#,
            cert = certs.cert_path.display(),
            key = certs.key_path.display(),
            org = sandbox.organization_id,
            client_id = sandbox.client_id,
            client_secret = sandbox.client_secret,
            refresh = sandbox.refresh_token,
            engine = engine_name(
                pinned_engine().unwrap_or(tether::config::ServerConfig::default().http1_engine)
            ),
        );
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text).unwrap();
        Self {
            name,
            https: format!("https://localhost:{port}"),
            port,
            admin: format!("http://127.0.0.1:{admin}"),
            config,
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts the process and waits until /readyz says 200.
    pub async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log_file(&self.log))
            .spawn()
            .expect("tether starts");
        self.child = Some(child);
        let readyz = format!("{}/readyz", self.admin);
        crate::support::wait_until(
            &format!("{} to be ready", self.name),
            Duration::from_secs(30),
            || async { reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200) },
        )
        .await;
    }

    /// SIGKILL: nothing is finished or flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit; returns its exit status.
    /// SIGTERM; `exited` waits for the process to end.
    pub fn terminate(&mut self) {
        let child = self.child.as_ref().expect("running");
        crate::support::signal(child.id(), "TERM");
    }

    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap()
    }
}

fn log_file(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}
