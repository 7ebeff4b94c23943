//! Direct messages and blocks (issue 13): one conversation per pair, private to it, the same
//! from either side; a block refuses opening it and writing to it on every transport, and stops
//! the blocked user's notifications (mentions) to the blocker; the `dm.` names are reserved.

use serde_json::json;
use switchboard_protocol::ErrorCode;
use switchboard_tests::{Backend, Encoding, TestApp};

on_both_backends!(direct_messages_and_blocks);

async fn direct_messages_and_blocks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, eve) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("eve").await,
    );
    let (status, first) = app
        .post(
            "/api/v1/dms",
            Some(&alice.access_token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let channel = first["dm"]["channel"].as_str().unwrap().to_owned();
    assert_eq!(first["dm"]["user"]["id"], bob.id);
    // The same conversation from the other side, and again: created once.
    let (status, again) = app
        .post(
            "/api/v1/dms",
            Some(&bob.access_token),
            json!({"user": alice.id}),
        )
        .await;
    assert_eq!(
        (status, again["dm"]["channel"].as_str()),
        (200, Some(channel.as_str()))
    );
    let (status, _) = app
        .post(
            "/api/v1/dms",
            Some(&alice.access_token),
            json!({"user": alice.id}),
        )
        .await;
    assert_eq!(status, 422);

    // Private to the pair; nobody can join, add or squat the name.
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut b = app.ws(&bob, Encoding::MsgPack).await;
    b.subscribe(&channel, None).await.unwrap();
    a.publish(&channel, json!({"text": "hi bob"}), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(b.messages(1).await[0].data["text"], "hi bob");
    let mut e = app.ws(&eve, Encoding::Json).await;
    assert_eq!(
        e.subscribe(&channel, None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
    let room = channel.trim_start_matches("room:");
    let (status, _) = app
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&alice.access_token),
            json!({"user": eve.id}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/api/v1/rooms",
            Some(&eve.access_token),
            json!({"name": "dm.squat", "private": false}),
        )
        .await;
    assert_eq!(status, 422);
    // An uncreated dm. name is not an open room either.
    assert_eq!(
        e.subscribe("room:dm.0000", None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );

    // Bob blocks alice: she cannot write to him (WebSocket or HTTP) nor open it again, and her
    // mention of him in a public room notifies him of nothing.
    let (status, _) = app
        .post(
            "/api/v1/blocks",
            Some(&bob.access_token),
            json!({"user": alice.id}),
        )
        .await;
    assert_eq!(status, 201);
    let refused = a
        .publish(&channel, json!({"text": "still there?"}), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let (status, _) = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&alice.access_token),
            json!({"data": {"text": "http?"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/api/v1/dms",
            Some(&alice.access_token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(status, 403);
    let mut lobby = app.ws(&alice, Encoding::Json).await;
    lobby
        .publish(
            "room:lobby",
            json!({"text": format!("hey @{} and @{}", bob.username, eve.username)}),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    // Eve is notified (the mention works), bob is not.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, n) = app
            .get("/api/v1/notifications", Some(&eve.access_token))
            .await;
        if n["notifications"].as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "eve was never notified"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, n) = app
        .get("/api/v1/notifications", Some(&bob.access_token))
        .await;
    assert!(
        n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "mention"),
        "{n}"
    );
    let (_, list) = app.get("/api/v1/blocks", Some(&bob.access_token)).await;
    assert_eq!(list["users"][0]["id"], alice.id);

    // Unblocked, the conversation is writable again.
    let (status, _) = app
        .delete(
            &format!("/api/v1/blocks/{}", alice.id),
            Some(&bob.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    a.publish(&channel, json!({"text": "back"}), &mut Vec::new())
        .await
        .unwrap();
    app.stop().await.unwrap();
}
