//! WebSocket upgrades are tunnelled to the app after it answers 101.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn websocket_echo_through_tether() {
    let (certs, backend, tether) = start_app_and_tether(|_| {}).await;
    let stream = tls_connect(&certs, tether.tls_addr, &[b"http/1.1"]).await;
    let url = format!("wss://localhost:{}/ws", tether.tls_addr.port());
    let (mut socket, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    for i in 0..20 {
        socket
            .send(Message::text(format!("hello {i}")))
            .await
            .unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text(format!("hello {i}"))
        );
    }
    let blob = vec![7u8; 256 * 1024];
    socket.send(Message::binary(blob.clone())).await.unwrap();
    assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(blob));
    socket.close(None).await.unwrap();
    let seen = backend.last("/ws");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert!(tether
        .metrics()
        .await
        .contains("tether_websocket_tunnels_total 1"));
}

#[tokio::test]
async fn refused_upgrade_is_an_ordinary_response() {
    let (certs, _backend, tether) = start_app_and_tether(|_| {}).await;
    // The app answers /echo with 200, not 101: the client gets that 200 and no tunnel.
    let request = "GET /echo/noupgrade HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
        Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let raw = raw_head(&certs, tether.tls_addr, request.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(tether
        .metrics()
        .await
        .contains("tether_websocket_tunnels_total 0"));
}
