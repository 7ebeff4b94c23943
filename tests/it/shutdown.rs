//! Graceful shutdown: clients are told to reconnect, sockets close with 1001, nothing acked is
//! lost, and the process exits 0 on SIGTERM.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::{close, ClientFrame, ServerFrame};
use switchboard_tests::process::ServerProcess;
use switchboard_tests::{Backend, Encoding, TestApp, TestDb, WsClient, SECRET};

on_both_backends!(shutdown_drains_clients_and_keeps_every_acked_message);

async fn shutdown_drains_clients_and_keeps_every_acked_message(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.drain_window = std::time::Duration::from_millis(500)
    })
    .await;
    let (p, r) = (app.user("pub").await, app.user("reader").await);
    let mut reader = app.ws(&r, Encoding::MsgPack).await;
    reader.subscribe("room:bye", None).await.unwrap();

    // A publisher that keeps going until the server goes away, counting what was acked.
    let (url, token) = (app.ws_url(), p.access_token.clone());
    let publishing = tokio::spawn(async move {
        let mut ws = WsClient::connect(&url, Encoding::Json, None).await.unwrap();
        ws.auth(&token).await;
        let mut acked = Vec::new();
        for id in 0.. {
            ws.send(&ClientFrame::Publish {
                id,
                channel: "room:bye".into(),
                data: json!(id),
                idempotency_key: None,
            })
            .await;
            match ws.next(Duration::from_secs(5)).await {
                Ok(ServerFrame::Ack(a)) => acked.push(a.offset.unwrap()),
                Ok(ServerFrame::Message(_)) => {}
                _ => break, // reconnect hint or close: stop
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.begin_shutdown();

    // The reader gets its messages, then a reconnect hint within the drain window, then 1001.
    let mut hint = None;
    let code = loop {
        match reader.next(Duration::from_secs(10)).await {
            Ok(ServerFrame::Reconnect { after_ms }) => hint = Some(after_ms),
            Ok(_) => {}
            Err(switchboard_tests::client::Ended::Closed(code)) => break code,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!(hint.is_some_and(|ms| ms <= 500), "reconnect hint {hint:?}");
    assert_eq!(code, Some(close::GOING_AWAY));
    let acked = publishing.await.unwrap();
    let db: TestDb = app.stop().await.unwrap();
    assert!(!acked.is_empty());

    // Restart on the same data: every acked message is there.
    let app = TestApp::spawn_on(db, |_| {}).await;
    let (_, body) = app.login(&r.username, &r.password).await;
    let token = body["access_token"].as_str().unwrap();
    let (_, page) = app
        .get("/api/v1/channels/room:bye/messages?limit=200", Some(token))
        .await;
    let stored: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_u64().unwrap())
        .collect();
    let last = *acked.iter().max().unwrap();
    assert!(
        stored.last().copied().unwrap_or(0) >= last,
        "acked up to {last}, stored {stored:?}"
    );
    for offset in &acked {
        assert!(
            stored.contains(offset) || *offset < stored[0],
            "acked offset {offset} missing"
        );
    }
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_process_cleanly() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = ServerProcess::spawn(&[
        ("SWITCHBOARD_DATA_DIR", db.data_dir().display().to_string()),
        ("SWITCHBOARD_SECRET", SECRET.to_owned()),
    ]);
    let url = format!("ws://{}/ws", server.addr);
    let token =
        switchboard_tests::register_and_login(&format!("http://{}", server.addr), "sig").await;
    let mut ws = WsClient::connect(&url, Encoding::Json, None).await.unwrap();
    ws.auth(&token).await;
    ws.subscribe("room:sig", None).await.unwrap();

    server.signal("TERM");
    // The reconnect hint comes next (after our own presence join, if it is still in flight).
    loop {
        match ws.recv().await {
            ServerFrame::Reconnect { .. } => break,
            ServerFrame::Join { .. } => continue,
            other => panic!("expected a reconnect hint, got {other:?}"),
        }
    }
    assert_eq!(ws.closed().await, Some(close::GOING_AWAY));
    let status = server.wait(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
}
