//! Opening a WebSocket: the Origin check, the upgrade itself, and authentication (a bearer
//! header at the upgrade or an `auth` first frame, within the auth timeout).

use std::time::Duration;

use futures::StreamExt;
use switchboard_protocol::{close, ClientFrame, ErrorCode, ServerFrame};
use switchboard_tests::{Backend, Encoding, TestApp, WsClient};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn origins_are_checked_before_the_upgrade() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://app.example".into()]
    })
    .await;
    let try_origin = |origin: Option<&'static str>| {
        let url = app.ws_url();
        async move {
            let mut req = url.into_client_request().unwrap();
            if let Some(o) = origin {
                req.headers_mut()
                    .insert("Origin", HeaderValue::from_static(o));
            }
            match tokio_tungstenite::connect_async(req).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(try_origin(Some("https://evil.example")).await, 403);
    assert_eq!(try_origin(Some("https://app.example")).await, 101);
    assert_eq!(try_origin(None).await, 101);
    app.stop().await.unwrap();

    // Default: same-origin only.
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static("http://elsewhere:3000"));
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{}", app.addr)).unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_authentication_rules() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.auth_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let alice = app.user("alice").await;

    // No auth frame in time: closed with 1008.
    let mut ws = WsClient::connect(&app.ws_url(), Encoding::Json, None)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert_eq!(ws.closed().await, Some(close::POLICY));
    assert!(started.elapsed() < Duration::from_secs(5));

    // Anything but auth first: refused and closed.
    let mut ws = WsClient::connect(&app.ws_url(), Encoding::MsgPack, None)
        .await
        .unwrap();
    ws.send(&ClientFrame::Subscribe {
        id: 3,
        channel: "room:a".into(),
        since: None,
    })
    .await;
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!((e.id, e.code), (Some(3), ErrorCode::Unauthorized));
    assert_eq!(ws.closed().await, Some(close::POLICY));

    // A forged token: refused.
    let mut ws = WsClient::connect(&app.ws_url(), Encoding::Json, None)
        .await
        .unwrap();
    ws.send(&ClientFrame::Auth {
        id: 1,
        token: alice.access_token.replace('.', ".x"),
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Unauthorized));
    assert_eq!(ws.closed().await, Some(close::POLICY));

    // A bearer header on the upgrade authenticates without an auth frame...
    let mut ws = WsClient::connect(&app.ws_url(), Encoding::Json, Some(&alice.access_token))
        .await
        .unwrap();
    assert!(ws.subscribe("room:a", None).await.is_ok());
    // ...and a bad one is refused with 401 before the upgrade.
    let err = WsClient::connect(&app.ws_url(), Encoding::Json, Some("nonsense"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("401"), "{err}");

    // Logout closes the session's sockets with 4001.
    assert_eq!(app.logout(&alice.access_token).await, 204);
    assert_eq!(ws.closed().await, Some(close::SESSION_REVOKED));
    app.stop().await.unwrap();
}

/// A request to `/ws` that is not a WebSocket upgrade gets a 400 with a JSON body naming what is
/// wrong, not a bare status; a proper upgrade with a wrong version is refused the same way.
#[tokio::test]
async fn a_plain_request_to_the_socket_endpoint_is_a_clear_400() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, body) = app.get("/ws", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("upgrade"), "{body}");

    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Version", HeaderValue::from_static("8"));
    let err = tokio_tungstenite::connect_async(req).await.err().unwrap();
    assert!(err.to_string().contains("400"), "{err}");
    app.stop().await.unwrap();
}

/// A client that never authenticates cannot hold its connection open past the authentication
/// timeout by sending pings it never reads the answers to; and a close sent before
/// authenticating gets a close back.
#[tokio::test]
async fn unauthenticated_clients_cannot_outstay_the_auth_timeout() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.auth_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let addr = app
        .ws_url()
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    // Masked client pings with a 125-byte payload, as fast as the socket takes them, never
    // reading a byte: the server's pongs pile up in its send buffer until writes would block.
    let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(0u8, 125));
    let flood = async {
        loop {
            if tcp.write_all(&ping).await.is_err() {
                return;
            }
        }
    };
    // The server must drop the connection (the flood's writes then fail) within the auth
    // timeout plus slack, without our reading anything, rather than block on a pong forever.
    let dropped = tokio::time::timeout(Duration::from_secs(10), flood).await;
    assert!(
        dropped.is_ok(),
        "the server kept the unauthenticated connection open"
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    ws.close(None).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert!(
        matches!(reply, Some(Ok(Message::Close(_)))),
        "a close before authenticating got {reply:?}"
    );
    app.stop().await.unwrap();
}
