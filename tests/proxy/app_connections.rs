//! Tether's connections to the app: reused across requests, and never reused when that would
//! hand a request to a connection the app closed, or leave a response's bytes on it.
//!
//! The app here is a plain TCP server written for the purpose, so the tests see every connection
//! it accepts and every one that ends, and can close them behind Tether's back.

use crate::support::{config_for, wait_until, TestCerts, TestTether};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Connections the app accepted, and how many of them have ended.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    ended: AtomicUsize,
    /// Closes every connection waiting for its next request.
    close_idle: tokio::sync::Notify,
}

/// An HTTP/1.1 app answering by path:
/// `/ok` 200 "ok"; `/silent-close` 200 "ok" and then closes without saying so;
/// `/close` 200 "ok" with `Connection: close`; `/empty` 204; `/big` 8 MiB; HEAD: headers only;
/// `/arm-drop` 200 "ok", and the connection's next request is read and then closed unanswered
/// (an app whose keep-alive timeout struck just as the request arrived).
async fn start_app() -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let app_counts = counts.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            app_counts.accepted.fetch_add(1, SeqCst);
            let counts = app_counts.clone();
            tokio::spawn(async move {
                let _ = serve(stream, &counts.close_idle).await;
                counts.ended.fetch_add(1, SeqCst);
            });
        }
    });
    (addr, counts)
}

async fn serve(stream: TcpStream, close_idle: &tokio::sync::Notify) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut drop_next = false;
    loop {
        let mut request_line = String::new();
        tokio::select! {
            read = stream.read_line(&mut request_line) => if read? == 0 {
                return Ok(()); // Tether closed the connection
            },
            () = close_idle.notified() => return Ok(()),
        }
        let mut body_length = 0usize;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    body_length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; body_length];
        stream.read_exact(&mut body).await?;
        if drop_next {
            return Ok(());
        }
        let mut words = request_line.split(' ');
        let head_only = words.next() == Some("HEAD");
        let target = words.next().unwrap_or("/");
        let path = target.split('?').next().unwrap_or("/").to_owned();
        let (head, body): (&str, Vec<u8>) = match path.as_str() {
            "/empty" => ("HTTP/1.1 204 No Content\r\n\r\n", Vec::new()),
            "/big" => (
                "HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n",
                vec![b'x'; 8 << 20],
            ),
            "/close" => (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
                b"ok".to_vec(),
            ),
            _ => (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
                b"ok".to_vec(),
            ),
        };
        stream.write_all(head.as_bytes()).await?;
        if !head_only {
            stream.write_all(&body).await?;
        }
        stream.flush().await?;
        if path == "/silent-close" || path == "/close" {
            return Ok(());
        }
        drop_next = path == "/arm-drop";
    }
}

async fn tether_for(
    app: SocketAddr,
    configure: impl FnOnce(&mut tether::config::Config),
) -> (TestCerts, TestTether) {
    let certs = TestCerts::new();
    let mut config = config_for(app, &certs);
    // One serving core: the idle connections are kept per core.
    config.server.worker_threads = 1;
    configure(&mut config);
    let tether = TestTether::start(config).await;
    (certs, tether)
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn one_connection_serves_request_after_request() {
    let (app, counts) = start_app().await;
    let (_certs, tether) = tether_for(app, |_| {}).await;
    let client = reqwest::Client::new();
    for i in 0..10 {
        assert_eq!(
            get(&client, format!("{}/ok?{i}", tether.http)).await,
            (200, "ok".into())
        );
        // Answers without a body leave the connection reusable too, read or not.
        assert_eq!(get(&client, format!("{}/empty", tether.http)).await.0, 204);
        let head = client
            .head(format!("{}/ok", tether.http))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], "2");
    }
    assert_eq!(
        counts.accepted.load(SeqCst),
        1,
        "every request on one app connection"
    );
    assert_eq!(counts.ended.load(SeqCst), 0);
}

#[tokio::test]
async fn a_connection_the_app_closed_is_never_used_again() {
    let (app, counts) = start_app().await;
    let (_certs, tether) = tether_for(app, |_| {}).await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        // The app closes after answering, without Connection: close; the next request must find
        // that out before it is written, not fail with 502.
        let (status, body) = get(&client, format!("{}/silent-close?{i}", tether.http)).await;
        assert_eq!((status, body.as_str()), (200, "ok"), "request {i}");
        let (status, _) = get(&client, format!("{}/close?{i}", tether.http)).await;
        assert_eq!(status, 200, "request {i} after Connection: close");
        // Closed while Tether keeps it idle.
        assert_eq!(get(&client, format!("{}/ok", tether.http)).await.0, 200);
        let ended = counts.ended.load(SeqCst);
        counts.close_idle.notify_waiters();
        wait_until(
            "the app closed its idle connection",
            Duration::from_secs(5),
            || {
                let counts = counts.clone();
                async move { counts.ended.load(SeqCst) == ended + 1 }
            },
        )
        .await;
    }
    assert_eq!(get(&client, format!("{}/ok", tether.http)).await.0, 200);
    assert_eq!(
        counts.accepted.load(SeqCst),
        16,
        "a new connection after each close"
    );
}

#[tokio::test]
async fn a_response_abandoned_mid_body_closes_its_connection() {
    let (app, counts) = start_app().await;
    let (_certs, tether) = tether_for(app, |_| {}).await;
    let addr = tether.running().plain_addr.unwrap();
    // The client reads the head of an 8 MiB answer and goes away.
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 64];
    let read = client.read(&mut first).await.unwrap();
    assert!(first[..read].starts_with(b"HTTP/1.1 200"));
    drop(client);
    // The rest of that body would still arrive on the app connection: it is closed, not pooled.
    wait_until("the app connection closed", Duration::from_secs(5), || {
        let counts = counts.clone();
        async move { counts.ended.load(SeqCst) == 1 }
    })
    .await;
    let fresh = reqwest::Client::new();
    assert_eq!(
        get(&fresh, format!("{}/ok", tether.http)).await,
        (200, "ok".into())
    );
    assert_eq!(counts.accepted.load(SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_close_after_the_pool_timeout_and_the_pool_can_be_off() {
    let (app, counts) = start_app().await;
    let (_certs, tether) = tether_for(app, |c| {
        c.upstream.pool_idle_timeout = Duration::from_millis(200)
    })
    .await;
    let client = reqwest::Client::new();
    assert_eq!(get(&client, format!("{}/ok", tether.http)).await.0, 200);
    wait_until(
        "the idle app connection closed",
        Duration::from_secs(5),
        || {
            let counts = counts.clone();
            async move { counts.ended.load(SeqCst) == 1 }
        },
    )
    .await;
    assert_eq!(get(&client, format!("{}/ok", tether.http)).await.0, 200);
    assert_eq!(counts.accepted.load(SeqCst), 2);

    let (app, counts) = start_app().await;
    let (_certs, tether) = tether_for(app, |c| c.upstream.pool_max_idle = 0).await;
    for _ in 0..3 {
        assert_eq!(get(&client, format!("{}/ok", tether.http)).await.0, 200);
    }
    assert_eq!(
        counts.accepted.load(SeqCst),
        3,
        "pool_max_idle = 0 keeps none"
    );
}

#[tokio::test]
async fn a_bodiless_get_whose_connection_closed_under_it_is_sent_again_but_nothing_else() {
    let (app, counts) = start_app().await;
    let (certs, tether) = tether_for(app, |_| {}).await;
    let client = certs.client_builder().http1_only().build().unwrap();
    let url = |path: &str| format!("{}{path}", tether.https);
    assert_eq!(get(&client, url("/arm-drop")).await, (200, "ok".into()));
    assert_eq!(counts.accepted.load(SeqCst), 1);
    // Written to the pooled connection, which the app then closes unanswered: sent again on a
    // new connection, and the client never knows.
    assert_eq!(get(&client, url("/ok")).await, (200, "ok".into()));
    assert_eq!(
        counts.accepted.load(SeqCst),
        2,
        "one fresh connection for the retry"
    );
    let head = client.head(url("/ok")).send().await.unwrap();
    assert_eq!(head.status(), 200);

    // A POST (with a body) in the same place is not sent twice: the app may have acted on it.
    assert_eq!(get(&client, url("/arm-drop")).await, (200, "ok".into()));
    let before = counts.accepted.load(SeqCst);
    let post = client
        .post(url("/ok"))
        .body("order=1")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 502);
    assert_eq!(counts.accepted.load(SeqCst), before, "no retry connection");
}
