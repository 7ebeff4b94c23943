//! Read state (issue 13): per user per room markers that only move forward, unread counts in the
//! room list (others' messages only, system messages left out), exact under concurrent
//! publishing, synced to the user's other connections, and read receipts for small rooms.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_protocol::{Ack, ClientFrame, ServerFrame};
use switchboard_tests::{Backend, Encoding, TestApp, User};

fn unread_of(list: &Value, room: &str) -> Option<u64> {
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room)
        .and_then(|r| r["unread"].as_u64())
}

async fn mark(app: &TestApp, user: &User, room: &str, offset: u64) -> Value {
    let (status, body) = app
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            Some(&user.access_token),
            json!({ "offset": offset }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["read"].clone()
}

on_both_backends!(markers_unread_counts_and_receipts);

async fn markers_unread_counts_and_receipts(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.read_receipts_max_members = 3).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    for (room, members) in [("one", vec![&bob.username]), ("two", vec![&bob.username])] {
        let (status, body) = app
            .post(
                "/api/v1/rooms",
                Some(&alice.access_token),
                json!({"name": room, "private": true, "members": members}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Bob's other device listens on his user channel for marker changes.
    let mut device = app.ws(&bob, Encoding::MsgPack).await;
    device
        .subscribe(&format!("user:{}", bob.id), None)
        .await
        .unwrap();

    // Twenty messages from alice over two connections at once, one of bob's own, and a system
    // message (carol added): bob has twenty unread in "one", three in "two".
    let mut a1 = app.ws(&alice, Encoding::Json).await;
    let mut a2 = app.ws(&alice, Encoding::MsgPack).await;
    let (r1, r2) = tokio::join!(
        async {
            for i in 0..10 {
                a1.publish("room:one", json!({"text": i}), &mut Vec::new())
                    .await
                    .unwrap();
            }
        },
        async {
            for i in 10..20 {
                a2.publish("room:one", json!({"text": i}), &mut Vec::new())
                    .await
                    .unwrap();
            }
        }
    );
    let _ = (r1, r2);
    let mut b = app.ws(&bob, Encoding::Json).await;
    b.publish("room:one", json!({"text": "mine"}), &mut Vec::new())
        .await
        .unwrap();
    let (status, _) = app
        .post(
            "/api/v1/rooms/one/members",
            Some(&alice.access_token),
            json!({"user": carol.id}),
        )
        .await;
    assert_eq!(status, 201);
    for i in 0..3 {
        a1.publish("room:two", json!({"text": i}), &mut Vec::new())
            .await
            .unwrap();
    }
    let (_, list) = app.get("/api/v1/rooms", Some(&bob.access_token)).await;
    assert_eq!(unread_of(&list, "one"), Some(20));
    assert_eq!(unread_of(&list, "two"), Some(3));
    assert_eq!(list["unread_total"], 23);
    // Carol, added after the fact, has everything of others unread (alice's 20 and bob's 1).
    let (_, list) = app.get("/api/v1/rooms", Some(&carol.access_token)).await;
    assert_eq!(unread_of(&list, "one"), Some(21));

    // Offsets 1..=22 hold the 20 + 1 + system message; reading to 10 leaves exactly the
    // messages of others after it.
    let read = mark(&app, &bob, "one", 10).await;
    assert_eq!(
        (read["offset"].as_u64(), read["unread"].as_u64()),
        (Some(10), Some(10))
    );
    // Never backwards, never past the end.
    let read = mark(&app, &bob, "one", 3).await;
    assert_eq!(read["offset"], 10);
    let read = mark(&app, &bob, "one", 10_000).await;
    assert_eq!(
        (read["offset"].as_u64(), read["unread"].as_u64()),
        (Some(22), Some(0))
    );

    // The other device heard of both moves (not of the one that moved nothing), in order.
    let mut moves = Vec::new();
    while moves.len() < 2 {
        match device.next(Duration::from_secs(5)).await {
            Ok(ServerFrame::Message(m)) if m.data["kind"] == "room_read" => {
                moves.push((m.data["offset"].as_u64(), m.data["unread"].as_u64()))
            }
            Ok(_) => continue,
            Err(e) => panic!("no room_read event: {e:?}"),
        }
    }
    assert_eq!(moves, vec![(Some(10), Some(10)), (Some(22), Some(0))]);

    // Over WebSocket too.
    let id = b.id();
    let ack: Ack = b
        .request(
            ClientFrame::Read {
                id,
                channel: "room:two".into(),
                offset: 2,
            },
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!((ack.offset, ack.unread), (Some(2), Some(1)));
    let (_, list) = app.get("/api/v1/rooms", Some(&bob.access_token)).await;
    assert_eq!(list["unread_total"], 1);

    // Receipts: how far each member has read.
    let (status, receipts) = app
        .get("/api/v1/rooms/one/read_state", Some(&alice.access_token))
        .await;
    assert_eq!(status, 200, "{receipts}");
    let by_user: Vec<(String, u64)> = receipts["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(by_user.contains(&(bob.id.clone(), 22)), "{by_user:?}");
    assert!(by_user.contains(&(carol.id.clone(), 0)), "{by_user:?}");
    // An outsider has no marker to set and sees no receipts.
    let outsider = app.user("mallory").await;
    let (status, _) = app
        .post(
            "/api/v1/rooms/one/read",
            Some(&outsider.access_token),
            json!({"offset": 1}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get("/api/v1/rooms/one/read_state", Some(&outsider.access_token))
        .await;
    assert_eq!(status, 403);
    // Past the member threshold receipts are off.
    let dave = app.user("dave").await;
    app.post(
        "/api/v1/rooms/one/members",
        Some(&alice.access_token),
        json!({"user": dave.id}),
    )
    .await;
    let (status, body) = app
        .get("/api/v1/rooms/one/read_state", Some(&alice.access_token))
        .await;
    assert_eq!(status, 403, "{body}");
    app.stop().await.unwrap();
}

/// Live read receipts: a member's marker moving reaches the room's subscribers on every node as
/// an offset-less `read` frame, never as a message; in a room above the member threshold none
/// is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_reach_subscribers_on_every_node_in_small_rooms() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |c| c.read_receipts_max_members = 2).await;
    let (alice, bob, carol) = (
        nodes[0].user("alice").await,
        nodes[0].user("bob").await,
        nodes[0].user("carol").await,
    );
    for (room, members) in [
        ("pair", vec![&bob.username]),
        ("trio", vec![&bob.username, &carol.username]),
    ] {
        let (status, body) = nodes[0]
            .post(
                "/api/v1/rooms",
                Some(&alice.access_token),
                json!({"name": room, "private": true, "members": members}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let mut watcher = nodes[1].ws(&alice, Encoding::MsgPack).await;
    watcher.subscribe("room:pair", None).await.unwrap();
    watcher.subscribe("room:trio", None).await.unwrap();
    let mut a = nodes[0].ws(&alice, Encoding::Json).await;
    let (mut pair, mut trio) = (0, 0);
    for _ in 0..3 {
        pair = a
            .publish("room:pair", json!({"text": "x"}), &mut Vec::new())
            .await
            .unwrap();
        trio = a
            .publish("room:trio", json!({"text": "x"}), &mut Vec::new())
            .await
            .unwrap();
    }
    // Bob reads both rooms through node 0.
    mark(&nodes[0], &bob, "trio", trio).await;
    mark(&nodes[0], &bob, "pair", pair).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut receipts = Vec::new();
    let mut messages = 0;
    while tokio::time::Instant::now() < deadline && (receipts.is_empty() || messages < 6) {
        match watcher.next(Duration::from_millis(500)).await {
            Ok(ServerFrame::Read {
                channel,
                user,
                offset,
            }) => receipts.push((channel, user.id, offset)),
            Ok(ServerFrame::Message(_)) => messages += 1,
            Ok(_) | Err(_) => {}
        }
    }
    // Only "pair" (2 members) has receipts; "trio" (3) is above the threshold.
    assert_eq!(
        receipts,
        vec![("room:pair".to_owned(), bob.id.clone(), pair)]
    );
    assert_eq!(messages, 6, "the publishes, and no message for the receipt");
    watcher.assert_no_message(Duration::from_millis(300)).await;
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}
