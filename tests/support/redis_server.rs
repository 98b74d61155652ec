//! A real redis-server for tests, started from the binary on PATH on a free port, with
//! `appendonly yes` and `appendfsync always` in its own directory, so it can be killed with
//! SIGKILL and restarted with every acknowledged write intact. Under `CI=true` a missing binary
//! fails the test; elsewhere the test is skipped with a message.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// The redis-server binary, or None (after saying why) when the test should be skipped.
fn binary() -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("redis-server"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path.display().to_string()),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("redis-server is not on PATH (CI installs it: apt-get install redis-server)")
        }
        None => {
            eprintln!("SKIPPED: redis-server is not on PATH");
            None
        }
    }
}

impl RedisServer {
    /// Starts a server and waits until it answers PING; None if the test is to be skipped.
    pub async fn start() -> Option<Self> {
        let binary = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn(&binary);
        server.wait_ready().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self, binary: &str) {
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush anything it had not already written.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (its append-only file is replayed).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn(&binary().expect("found before"));
        self.wait_ready().await;
    }

    /// A connection for the test's own look at the data.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn wait_ready(&mut self) {
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut connection).await;
                if pong.is_ok() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("redis-server exited: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
