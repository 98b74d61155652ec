//! The probe on the wire, against an app scripted byte by byte: answers framed every way
//! HTTP/1.1 allows (chunked with extensions and trailers, close-delimited, after interim 1xx
//! answers), a kept connection the app closes under the next probe (sent again on a new one),
//! and an answer that is not HTTP (fail closed, 503); and the probe's own request head.

use crate::support::{TestCerts, TestTether};
use crate::{tether_in_front_of, who};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The app: answers each probe by the `session` cookie's value (see `script`), and records
/// the request heads it read and the connections it took.
struct ScriptedApp {
    addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

fn json(user: &str) -> String {
    format!(r#"{{"user":{{"id":"{user}"}}}}"#)
}

/// The answer to the `nth` request (from 1) on a connection, and whether the app closes after
/// it; None: close without answering.
fn script(session: &str, nth: usize) -> Option<(String, bool)> {
    let answer = match session {
        "chunked" => {
            let body = json("carol");
            let (a, b) = body.split_at(7);
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x};x=1\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nx-trailer: 1\r\n\r\n",
                a.len(),
                b.len()
            )
        }
        "interim" => format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}",
            json("dave").len(),
            json("dave")
        ),
        "closing" => return Some((format!("HTTP/1.1 200 OK\r\n\r\n{}", json("erin")), true)),
        "once" if nth > 1 => return None,
        "once" => format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}",
            json("frank").len(),
            json("frank")
        ),
        // Header mode: the fields in the case the app wrote them, the name padded.
        "fields" => "HTTP/1.1 200 OK\r\nX-Authenticated-User: grace\r\nX-AUTHENTICATED-NAME:  Grace Hopper \r\nContent-Length: 0\r\n\r\n".to_string(),
        // Two users in one answer, whatever their case: ambiguous.
        "twice" => "HTTP/1.1 200 OK\r\nx-authenticated-user: heidi\r\nX-Authenticated-User: ivan\r\ncontent-length: 0\r\n\r\n".to_string(),
        "nobody" => "HTTP/1.1 200 OK\r\nx-authenticated-user:   \r\ncontent-length: 0\r\n\r\n".to_string(),
        _ => return Some(("SSH-2.0-OpenSSH_9.2\r\n\r\n".to_string(), true)),
    };
    Some((answer, false))
}

impl ScriptedApp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = Self {
            addr: listener.local_addr().unwrap(),
            heads: Arc::default(),
            connections: Arc::default(),
        };
        let (heads, connections) = (app.heads.clone(), app.connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, SeqCst);
                tokio::spawn(serve(stream, heads.clone()));
            }
        });
        app
    }
}

async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut nth = 0;
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        buf.drain(..end + 4);
        nth += 1;
        let session = head
            .split("session=")
            .nth(1)
            .and_then(|rest| rest.split("\r\n").next())
            .unwrap_or("")
            .to_string();
        heads.lock().unwrap().push(head);
        let Some((answer, close)) = script(&session, nth) else {
            return;
        };
        if stream.write_all(answer.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// Whom `tether` names for a caller with the cookie `session=SESSION` and `headers`.
async fn ask_as(
    client: &reqwest::Client,
    tether: &TestTether,
    session: &str,
    headers: &[(&str, &str)],
) -> Result<(String, Option<String>), u16> {
    let cookie = format!("session={session}");
    let mut all = vec![("cookie", cookie.as_str())];
    all.extend_from_slice(headers);
    who(client, tether, &all).await
}

#[tokio::test]
async fn probe_answers_are_read_by_their_framing_and_kept_connections_replaced() {
    let app = ScriptedApp::start().await;
    let certs = TestCerts::new();
    let tether = tether_in_front_of(app.addr, &certs, |config| {
        config.identity.probe_path = "/api/me".into();
        config.identity.probe_json_user = "/user/id".into();
        // One serving thread: every probe below shares one pool of kept connections.
        config.server.worker_threads = 1;
    })
    .await;
    let client = certs.client();
    let caller = [("authorization", "Bearer abc"), ("x-other", "1")];
    let ask = |session| ask_as(&client, &tether, session, &caller);
    assert_eq!(ask("chunked").await, Ok(("carol".into(), None)));
    assert_eq!(ask("interim").await, Ok(("dave".into(), None)));
    assert_eq!(ask("closing").await, Ok(("erin".into(), None)));
    assert_eq!(
        app.connections.load(SeqCst),
        1,
        "the connection is kept after a chunked answer and after interim answers"
    );
    assert_eq!(ask("garbage").await, Err(503), "not HTTP: fail closed");
    assert_eq!(
        app.connections.load(SeqCst),
        2,
        "a close-delimited answer ends its connection"
    );

    // The probe asks with the caller's Host, Cookie and Authorization, and Accept for JSON.
    let first = app.heads.lock().unwrap()[0].clone();
    let port = tether.tls_addr.port();
    assert_eq!(
        first,
        format!(
            "GET /api/me HTTP/1.1\r\nhost: localhost:{port}\r\ncookie: session=chunked\r\n\
             authorization: Bearer abc\r\naccept: application/json\r\n\r\n"
        )
    );

    // When the app closes a kept connection under the next probe without an answer, the probe
    // is sent again on a new connection.
    assert_eq!(ask("once").await, Ok(("frank".into(), None)));
    assert_eq!(ask("once").await, Ok(("frank".into(), None)));
    assert_eq!(
        (
            app.heads.lock().unwrap().len(),
            app.connections.load(SeqCst)
        ),
        (7, 4),
        "the second probe met the closed connection and went again on a new one"
    );
}

#[tokio::test]
async fn header_mode_reads_the_answers_fields_in_any_case_and_refuses_two_users() {
    let app = ScriptedApp::start().await;
    let certs = TestCerts::new();
    let tether = tether_in_front_of(app.addr, &certs, |config| {
        config.identity.probe_path = "/api/me".into();
    })
    .await;
    let client = certs.client();
    let ask = |session| ask_as(&client, &tether, session, &[]);
    assert_eq!(
        ask("fields").await,
        Ok(("grace".into(), Some("Grace Hopper".into())))
    );
    assert_eq!(ask("twice").await, Err(502), "two users: fail closed");
    assert_eq!(ask("nobody").await, Err(401), "an empty user: nobody");
    assert_eq!(
        app.connections.load(SeqCst),
        1,
        "every answer had a length: one kept connection"
    );
}
