//! Typing indicators (issue 13): passed to the room's subscribers on every node, in both
//! encodings, never stored and never given an offset, one per connection per channel every 2 s,
//! and only where the user may publish.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ErrorFrame, ServerFrame};
use switchboard_tests::{Encoding, TestApp, WsClient};

/// The next typing frame on `ws` within `within`, skipping presence events.
async fn typing_frame(ws: &mut WsClient, within: Duration) -> Option<ServerFrame> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next(left).await {
            Ok(f @ ServerFrame::Typing { .. }) => return Some(f),
            // Membership changes are system messages; anything else would be a stored signal.
            Ok(ServerFrame::Message(m)) if m.from == "system" => continue,
            Ok(ServerFrame::Message(m)) => panic!("a typing signal became a message: {m:?}"),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// The error reply to the request `id`.
async fn error_reply(ws: &mut WsClient, id: i64) -> ErrorFrame {
    loop {
        if let ServerFrame::Error(e) = ws.recv().await {
            if e.id == Some(id) {
                return e;
            }
        }
    }
}

async fn typing(ws: &mut WsClient, channel: &str, id: Option<i64>, typing: bool) {
    ws.send(&ClientFrame::Typing {
        id,
        channel: channel.into(),
        typing,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_every_node_and_is_never_stored() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let (alice, bob) = (nodes[0].user("alice").await, nodes[0].user("bob").await);
    let mut a = nodes[0].ws(&alice, Encoding::Json).await;
    let mut b = nodes[1].ws(&bob, Encoding::MsgPack).await;
    a.subscribe("room:talk", None).await.unwrap();
    b.subscribe("room:talk", None).await.unwrap();

    // Not subscribed, or not a room: refused.
    typing(&mut a, "room:elsewhere", Some(90), true).await;
    let err = error_reply(&mut a, 90).await;
    assert_eq!(err.code, ErrorCode::BadRequest);

    typing(&mut a, "room:talk", Some(1), true).await;
    match typing_frame(&mut b, Duration::from_secs(5)).await {
        Some(ServerFrame::Typing {
            channel,
            user,
            typing,
            ttl_ms,
        }) => {
            assert_eq!(
                (channel.as_str(), user.id.as_str(), typing),
                ("room:talk", alice.id.as_str(), true)
            );
            assert!(
                ttl_ms >= 2000,
                "an indicator outlives the interval between renewals"
            );
        }
        other => panic!("no typing frame on the other node: {other:?}"),
    }
    // A second start within 2 s is refused (with an id) or dropped (without); a stop passes.
    typing(&mut a, "room:talk", Some(2), true).await;
    let err = error_reply(&mut a, 2).await;
    assert_eq!(err.code, ErrorCode::RateLimited);
    typing(&mut a, "room:talk", None, true).await;
    typing(&mut a, "room:talk", None, false).await;
    match typing_frame(&mut b, Duration::from_secs(5)).await {
        Some(ServerFrame::Typing { typing, .. }) => {
            assert!(!typing, "the dropped start came through")
        }
        other => panic!("no stop frame: {other:?}"),
    }
    assert!(typing_frame(&mut b, Duration::from_millis(300))
        .await
        .is_none());

    // Nothing of it is in the channel: a real message takes offset 1.
    let offset = a
        .publish("room:talk", json!({"text": "hi"}), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(offset, 1, "typing signals took no offsets");
    let (_, history) = nodes[1]
        .get(
            "/api/v1/channels/room:talk/messages",
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_user_cannot_signal_typing() {
    let app = TestApp::spawn(switchboard_tests::Backend::Sqlite).await;
    let (alice, eve) = (app.user("alice").await, app.user("eve").await);
    let (status, _) = app
        .post(
            "/api/v1/rooms",
            Some(&alice.access_token),
            json!({"name": "quiet", "private": false}),
        )
        .await;
    assert_eq!(status, 201);
    let mut watcher = app.ws(&alice, Encoding::Json).await;
    watcher.subscribe("room:quiet", None).await.unwrap();
    let mut e = app.ws(&eve, Encoding::Json).await;
    e.subscribe("room:quiet", None).await.unwrap();
    let (status, _) = app
        .post(
            "/api/v1/rooms/quiet/timeouts",
            Some(&alice.access_token),
            json!({"user": eve.id, "seconds": 60}),
        )
        .await;
    assert_eq!(status, 201);
    typing(&mut e, "room:quiet", Some(5), true).await;
    let err = error_reply(&mut e, 5).await;
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(typing_frame(&mut watcher, Duration::from_millis(500))
        .await
        .is_none());
    app.stop().await.unwrap();
}
