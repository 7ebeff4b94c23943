//! Message lifecycle (issue 13): edits, deletes (tombstones whose content is gone from storage),
//! replies and reactions on room messages, each a message of its own seen live and after
//! `since`; history shows the latest state in place; blocked users' messages are hidden from
//! the blocker, live (on every node) and in history, with offsets kept.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_protocol::{ClientFrame, ErrorCode, MessageFrame, ServerFrame};
use switchboard_tests::{Backend, Encoding, TestApp, User, WsClient};

async fn create(app: &TestApp, owner: &User, name: &str, members: &[&User]) {
    let names: Vec<&str> = members.iter().map(|u| u.username.as_str()).collect();
    let (status, body) = app
        .post(
            "/api/v1/rooms",
            Some(&owner.access_token),
            json!({"name": name, "private": true, "members": names}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The room's history as `user` reads it over HTTP, by offset.
async fn history(app: &TestApp, user: &User, channel: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?limit=200"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().unwrap().clone()
}

fn at(page: &[Value], offset: u64) -> &Value {
    page.iter()
        .find(|m| m["offset"] == offset)
        .unwrap_or_else(|| panic!("no offset {offset} in {page:?}"))
}

/// The next `n` channel messages on `ws`, checked to continue `after` without a gap.
async fn next_messages(ws: &mut WsClient, after: u64, n: usize) -> Vec<MessageFrame> {
    let got = ws.messages(n).await;
    let offsets: Vec<u64> = got.iter().map(|m| m.offset).collect();
    let expected: Vec<u64> = (after + 1..=after + n as u64).collect();
    assert_eq!(offsets, expected, "gapless, in order, once each");
    got
}

/// Whether any stored row of `channel` still holds `text` anywhere (payload or reaction).
async fn stored_anywhere(app: &TestApp, channel: &str, text: &str) -> bool {
    let pool = app.db.as_ref().unwrap().pool().await;
    let like = format!("%{text}%");
    let rows = sqlx::query("SELECT seq FROM messages WHERE channel = $1 AND data LIKE $2")
        .bind(channel)
        .bind(&like)
        .fetch_all(&pool)
        .await
        .unwrap();
    !rows.is_empty()
}

on_both_backends!(edit_delete_reply_and_react);

async fn edit_delete_reply_and_react(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    create(&app, &alice, "talk", &[&bob, &carol]).await;
    let ch = "room:talk";
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut b = app.ws(&bob, Encoding::MsgPack).await;
    let base = b.subscribe(ch, None).await.unwrap().offset.unwrap();
    let secret = "the-first-draft-3f9";

    let o1 = a
        .publish(
            ch,
            json!({"text": format!("{secret} @{}", carol.username)}),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    // A reply names its parent; the parent counts it.
    let mut b_pub = app.ws(&bob, Encoding::Json).await;
    let o2 = b_pub
        .publish(ch, json!({"text": "hi", "reply_to": o1}), &mut Vec::new())
        .await
        .unwrap();
    // Server kinds and replies to nothing are refused, on both transports.
    for data in [
        json!({"kind": "edit", "target": o1, "data": {"text": "forged"}}),
        json!({"kind": "member_added", "user": bob.id}),
        json!({"text": "to nothing", "reply_to": 999}),
        json!({"text": "to nothing", "reply_to": "one"}),
    ] {
        let e = a
            .publish(ch, data.clone(), &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{data}");
        let (status, body) = app
            .post(
                &format!("/api/v1/channels/{ch}/messages"),
                Some(&alice.access_token),
                json!({ "data": data }),
            )
            .await;
        assert_eq!(status, 422, "{data}: {body}");
    }

    // Only the author edits.
    let path = format!("/api/v1/rooms/talk/messages/{o1}");
    let (status, _) = app
        .patch(
            &path,
            Some(&bob.access_token),
            json!({"data": {"text": "bob's"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .patch(
            &path,
            Some(&alice.access_token),
            json!({"data": {"text": "hello"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let o3 = body["offset"].as_u64().unwrap();
    // A new version meets a publish's rules and keeps what it replies to.
    for data in [
        json!({"kind": "delete", "target": o1}),
        json!({"text": "x", "reply_to": 999}),
    ] {
        let (status, body) = app
            .patch(&path, Some(&alice.access_token), json!({ "data": data }))
            .await;
        assert_eq!(status, 422, "{data}: {body}");
    }
    let (status, _) = app
        .patch(
            &format!("/api/v1/rooms/talk/messages/{o2}"),
            Some(&bob.access_token),
            json!({"data": {"text": "no longer a reply"}}),
        )
        .await;
    assert_eq!(status, 422);

    // Reactions: one update per change, each with the emoji's count after it.
    let react = format!("/api/v1/rooms/talk/messages/{o1}/reactions");
    let (status, r1) = app
        .post(&react, Some(&alice.access_token), json!({"emoji": "👍"}))
        .await;
    assert_eq!(status, 201, "{r1}");
    let (status, _) = app
        .post(&react, Some(&bob.access_token), json!({"emoji": "👍"}))
        .await;
    assert_eq!(status, 201);
    let (status, again) = app
        .post(&react, Some(&alice.access_token), json!({"emoji": "👍"}))
        .await;
    assert_eq!((status, again.get("offset")), (200, None), "nothing new");
    let (status, _) = app
        .post(&react, Some(&carol.access_token), json!({"emoji": "🎉"}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .delete(
            &format!("{react}/{}", urlencoding("👍")),
            Some(&bob.access_token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .delete(
            &format!("{react}/{}", urlencoding("👍")),
            Some(&bob.access_token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 404, "no such reaction any more");
    for emoji in ["", "two words", &"x".repeat(65)] {
        let (status, _) = app
            .post(&react, Some(&alice.access_token), json!({"emoji": emoji}))
            .await;
        assert_eq!(status, 422, "{emoji:?}");
    }

    // Live, in order: the message, the reply, the edit, four reaction changes.
    let live = next_messages(&mut b, base, 7).await;
    assert_eq!(live[1].data["reply_to"], o1);
    assert_eq!(live[2].offset, o3);
    assert_eq!(
        live[2].data,
        json!({"kind": "edit", "target": o1, "data": {"text": "hello"}})
    );
    assert_eq!(live[2].from, alice.id);
    let counts: Vec<(String, String, u64)> = live[3..]
        .iter()
        .map(|m| {
            assert_eq!(m.data["kind"], "reaction");
            assert_eq!(m.data["target"], o1);
            (
                m.data["emoji"].as_str().unwrap().to_owned(),
                m.data["op"].as_str().unwrap().to_owned(),
                m.data["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("👍".into(), "add".into(), 1),
            ("👍".into(), "add".into(), 2),
            ("🎉".into(), "add".into(), 1),
            ("👍".into(), "remove".into(), 1),
        ]
    );

    // History shows the latest version in place, the reply count, and the reader's reactions.
    let page = history(&app, &alice, ch).await;
    let first = at(&page, o1);
    assert_eq!(first["data"], json!({"text": "hello"}));
    assert!(first["edited_at"].is_string(), "{first}");
    assert_eq!(first["replies"], 1);
    assert_eq!(
        first["reactions"],
        // Most frequent first; a tie in emoji order (U+1F389 before U+1F44D).
        json!([{"emoji": "🎉", "count": 1, "me": false}, {"emoji": "👍", "count": 1, "me": true}])
    );
    let for_bob = history(&app, &bob, ch).await;
    assert_eq!(
        at(&for_bob, o1)["reactions"][1],
        json!({"emoji": "👍", "count": 1, "me": false})
    );
    assert!(at(&page, o2).get("edited_at").is_none());
    // The same over a MessagePack WebSocket, and identical to what a JSON one gets.
    let ws_page = ws_history(&mut b, ch).await;
    assert_eq!(
        ws_page,
        ws_history(&mut b_pub, ch).await,
        "MessagePack = JSON"
    );
    let m1 = ws_page.iter().find(|m| m.offset == o1).unwrap();
    assert_eq!(m1.data, json!({"text": "hello"}));
    assert!(m1.edited_at.is_some());
    assert_eq!(m1.replies, 1);
    assert_eq!(m1.reactions.as_ref().map(Vec::len), Some(2));

    // Carol was mentioned: her notification quotes the message (until it is deleted).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !stored_anywhere(&app, &format!("user:{}", carol.id), secret).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mention notification"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deletes: a member may not delete another's message; the owner may (audited), and the
    // author their own. The content is gone from storage: the message, its edits, its reactions.
    let del = |o: u64| format!("/api/v1/rooms/talk/messages/{o}");
    let (status, _) = app
        .delete(&del(o1), Some(&carol.access_token), Value::Null)
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .delete(&del(o2), Some(&alice.access_token), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .delete(&del(o1), Some(&alice.access_token), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    let o_del = body["offset"].as_u64().unwrap();
    let (status, _) = app
        .patch(
            &path,
            Some(&alice.access_token),
            json!({"data": {"text": "back?"}}),
        )
        .await;
    assert_eq!(status, 404, "a deleted message cannot be edited");
    let (status, _) = app
        .post(&react, Some(&bob.access_token), json!({"emoji": "👍"}))
        .await;
    assert_eq!(status, 404, "nor reacted to");
    let deletes = next_messages(&mut b, base + 7, 2).await;
    assert_eq!(deletes[0].data, json!({"kind": "delete", "target": o2}));
    assert_eq!(deletes[1].data, json!({"kind": "delete", "target": o1}));
    assert_eq!(deletes[1].offset, o_del);
    assert!(
        !stored_anywhere(&app, ch, secret).await,
        "the first version"
    );
    let carols = format!("user:{}", carol.id);
    assert!(
        !stored_anywhere(&app, &carols, secret).await,
        "the mention notification's excerpt"
    );
    assert!(
        !stored_anywhere(&app, ch, "hello").await,
        "the edited version"
    );
    let page = history(&app, &bob, ch).await;
    let tomb = at(&page, o1);
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["data"], Value::Null);
    assert!(tomb.get("reactions").is_none());
    assert_eq!(at(&page, o3)["data"], json!({"kind": "edit", "target": o1}));
    let (_, trail) = app
        .get("/api/v1/rooms/talk/audit", Some(&alice.access_token))
        .await;
    let moderated: Vec<&Value> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "message_deleted")
        .collect();
    assert_eq!(
        moderated.len(),
        1,
        "only deleting another's message: {trail}"
    );
    assert_eq!(moderated[0]["target"], bob.id);

    // `since` recovery sees every one of them, in place, the tombstone included.
    let mut late = app.ws(&carol, Encoding::Json).await;
    late.subscribe(ch, Some(base)).await.unwrap();
    let replayed = next_messages(&mut late, base, 9).await;
    assert!(replayed[0].deleted && replayed[0].data.is_null());
    assert_eq!(replayed[8].data["kind"], "delete");

    // Unread: edits, deletes, reactions and deleted messages are not unread.
    let o_last = a
        .publish(ch, json!({"text": "still here"}), &mut Vec::new())
        .await
        .unwrap();
    assert!(o_last > o_del);
    let (_, rooms) = app.get("/api/v1/rooms", Some(&carol.access_token)).await;
    let talk = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "talk")
        .unwrap()
        .clone();
    assert_eq!(talk["unread"], 1, "{talk}");
    app.stop_node().await.unwrap();
}

/// A history page over the WebSocket `history` request.
async fn ws_history(ws: &mut WsClient, channel: &str) -> Vec<MessageFrame> {
    let id = ws.id();
    ws.send(&ClientFrame::History {
        id,
        channel: channel.into(),
        before: None,
        limit: Some(50),
    })
    .await;
    loop {
        if let ServerFrame::Ack(ack) = ws.recv().await {
            if ack.id == id {
                return ack.messages.unwrap();
            }
        }
    }
}

/// `PATCH` of a room message (an edit) by `user`; the status.
async fn edit(app: &TestApp, user: &User, room: &str, offset: u64, data: Value) -> u16 {
    let path = format!("/api/v1/rooms/{room}/messages/{offset}");
    app.patch(&path, Some(&user.access_token), json!({ "data": data }))
        .await
        .0
}

/// A reaction by `user` on a room message; the status.
async fn react(app: &TestApp, user: &User, room: &str, offset: u64, emoji: &str) -> u16 {
    let path = format!("/api/v1/rooms/{room}/messages/{offset}/reactions");
    app.post(&path, Some(&user.access_token), json!({ "emoji": emoji }))
        .await
        .0
}

/// Percent-encodes a path segment (emoji are UTF-8 bytes).
fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

on_both_backends!(reaction_limits_hold);

async fn reaction_limits_hold(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.reactions_per_user = 2;
        c.reactions_per_message = 3;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    create(&app, &alice, "few", &[&bob]).await;
    let mut a = app.ws(&alice, Encoding::Json).await;
    let o = a
        .publish("room:few", json!({"text": "react"}), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(react(&app, &alice, "few", o, "a").await, 201);
    assert_eq!(react(&app, &alice, "few", o, "b").await, 201);
    assert_eq!(
        react(&app, &alice, "few", o, "c").await,
        409,
        "two per user"
    );
    assert_eq!(react(&app, &bob, "few", o, "c").await, 201);
    assert_eq!(
        react(&app, &bob, "few", o, "d").await,
        409,
        "three per message"
    );
    assert_eq!(
        react(&app, &bob, "few", o, "a").await,
        201,
        "an emoji already there is fine"
    );
    let page = history(&app, &alice, "room:few").await;
    let counts: Vec<u64> = at(&page, o)["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![2, 1, 1]);
    app.stop_node().await.unwrap();
}

on_both_backends!(a_blocked_users_messages_are_hidden_from_the_blocker);

async fn a_blocked_users_messages_are_hidden_from_the_blocker(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.max_blocks = 1).await;
    let (alice, bob, eve) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("eve").await,
    );
    let ch = "room:commons";
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut b = app.ws(&bob, Encoding::MsgPack).await;
    let mut e = app.ws(&eve, Encoding::Json).await;
    b.subscribe(ch, None).await.unwrap();
    e.subscribe(ch, None).await.unwrap();
    let (status, _) = app
        .post(
            "/api/v1/blocks",
            Some(&bob.access_token),
            json!({"user": alice.id}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            "/api/v1/blocks",
            Some(&bob.access_token),
            json!({"user": eve.id}),
        )
        .await;
    assert_eq!(status, 409, "SWITCHBOARD_MAX_BLOCKS");
    // Her typing and her presence do not reach him either; they reach eve.
    a.subscribe(ch, None).await.unwrap();
    a.send(&ClientFrame::Typing {
        id: None,
        channel: ch.into(),
        typing: true,
    })
    .await;
    loop {
        match e.next(Duration::from_secs(10)).await {
            Ok(ServerFrame::Typing { user, .. }) if user.id == alice.id => break,
            Ok(_) => continue,
            Err(err) => panic!("eve saw no typing: {err:?}"),
        }
    }
    while let Ok(frame) = b.next(Duration::from_millis(500)).await {
        match frame {
            ServerFrame::Typing { user, .. } | ServerFrame::Join { user, .. } => {
                assert_ne!(
                    user.id, alice.id,
                    "a blocked user's signal reached the blocker"
                )
            }
            _ => {}
        }
    }
    let o = a
        .publish(ch, json!({"text": "from alice"}), &mut Vec::new())
        .await
        .unwrap();
    let seen = b.messages(1).await;
    assert_eq!((seen[0].offset, seen[0].hidden), (o, true));
    assert!(seen[0].data.is_null(), "no content for the blocker");
    let plain = e.messages(1).await;
    assert_eq!(plain[0].data["text"], "from alice");
    assert!(!plain[0].hidden);
    // Her edit reaches him without its words, her reaction whole (it is the server's count,
    // and his view of the message needs it).
    let edited = json!({"text": "from alice, edited"});
    assert_eq!(edit(&app, &alice, "commons", o, edited).await, 201);
    assert_eq!(react(&app, &alice, "commons", o, "✨").await, 201);
    let changes = b.messages(2).await;
    assert!(changes[0].hidden);
    assert_eq!(changes[0].data, json!({"kind": "edit", "target": o}));
    assert!(!changes[1].hidden);
    assert_eq!(changes[1].data["count"], 1);
    let plain = e.messages(2).await;
    assert_eq!(plain[0].data["data"]["text"], "from alice, edited");
    // History and a new connection hide it too.
    let page = history(&app, &bob, ch).await;
    assert_eq!(at(&page, o)["hidden"], true);
    assert_eq!(at(&page, o)["data"], Value::Null);
    assert_eq!(
        at(&history(&app, &eve, ch).await, o)["data"]["text"],
        "from alice, edited"
    );
    let mut b2 = app.ws(&bob, Encoding::Json).await;
    b2.subscribe(ch, Some(o - 1)).await.unwrap();
    let replayed = b2.messages(3).await;
    assert!(replayed[0].hidden && replayed[0].data.is_null());
    assert_eq!(replayed[1].data, json!({"kind": "edit", "target": o}));
    assert!(!replayed[2].hidden);
    // Unblocked: her next message shows.
    let (status, _) = app
        .delete(
            &format!("/api/v1/blocks/{}", alice.id),
            Some(&bob.access_token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    a.publish(ch, json!({"text": "again"}), &mut Vec::new())
        .await
        .unwrap();
    let seen = b.messages(1).await;
    assert_eq!(seen[0].data["text"], "again");
    assert!(!seen[0].hidden);
    // A connection opened now shares the node's current list (not the one read before).
    let mut b3 = app.ws(&bob, Encoding::MsgPack).await;
    b3.subscribe(ch, Some(o - 1)).await.unwrap();
    let fresh = b3.messages(1).await;
    assert!(!fresh[0].hidden, "unblocked: shown again");
    app.stop_node().await.unwrap();
}

/// On three nodes: an edit and a delete reach subscribers on the other nodes live, and a block
/// made through one node hides the blocked user's messages on the blocker's sockets elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_and_blocks_hold_across_nodes() {
    let (_db, nodes) = TestApp::spawn_cluster(3, |_| {}).await;
    let (alice, bob) = (nodes[0].user("alice").await, nodes[0].user("bob").await);
    create(&nodes[0], &alice, "wide", &[&bob]).await;
    let ch = "room:wide";
    let mut on_b = nodes[1].ws(&bob, Encoding::MsgPack).await;
    let base = on_b.subscribe(ch, None).await.unwrap().offset.unwrap();
    let mut a = nodes[2].ws(&alice, Encoding::Json).await;
    let o = a
        .publish(ch, json!({"text": "v1"}), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        edit(&nodes[0], &alice, "wide", o, json!({"text": "v2"})).await,
        201
    );
    let (status, _) = nodes[2]
        .delete(
            &format!("/api/v1/rooms/wide/messages/{o}"),
            Some(&alice.access_token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let got = next_messages(&mut on_b, base, 3).await;
    assert_eq!(got[1].data["kind"], "edit");
    assert_eq!(got[2].data["kind"], "delete");

    let (status, _) = nodes[0]
        .post(
            "/api/v1/blocks",
            Some(&bob.access_token),
            json!({"user": alice.id}),
        )
        .await;
    assert_eq!(status, 201);
    // The block travels as a control event: allow it a moment to reach node 1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = base + 3;
    loop {
        let o = a
            .publish(ch, json!({"text": "hidden?"}), &mut Vec::new())
            .await
            .unwrap();
        let m = next_messages(&mut on_b, last, 1).await.remove(0);
        last = o;
        if m.hidden {
            assert!(m.data.is_null());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the block never reached the other node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

on_both_backends!(unread_counts_hold_under_concurrent_publishing_and_edits);

/// Two connections publish while the same author edits, reacts to and deletes earlier messages
/// at the same time: the reader's unread count is exactly the chat messages of others that are
/// not deleted.
async fn unread_counts_hold_under_concurrent_publishing_and_edits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    create(&app, &alice, "busy", &[&bob]).await;
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut seeds = Vec::new();
    for n in 0..6 {
        seeds.push(
            a.publish("room:busy", json!({ "n": n }), &mut Vec::new())
                .await
                .unwrap(),
        );
    }
    let publishers = (0..2).map(|k| {
        let (app, alice) = (&app, &alice);
        async move {
            let mut ws = app.ws(alice, Encoding::MsgPack).await;
            for n in 0..10 {
                ws.publish("room:busy", json!({ "k": k, "n": n }), &mut Vec::new())
                    .await
                    .unwrap();
            }
        }
    });
    let changes = async {
        for (i, &o) in seeds.iter().enumerate() {
            let path = format!("/api/v1/rooms/busy/messages/{o}");
            assert_eq!(
                edit(&app, &alice, "busy", o, json!({"n": "edited"})).await,
                201
            );
            assert_eq!(react(&app, &bob, "busy", o, "👀").await, 201);
            if i % 2 == 0 {
                let (status, _) = app
                    .delete(&path, Some(&alice.access_token), Value::Null)
                    .await;
                assert_eq!(status, 200);
            }
        }
    };
    futures::future::join(futures::future::join_all(publishers), changes).await;
    let (_, rooms) = app.get("/api/v1/rooms", Some(&bob.access_token)).await;
    let busy = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "busy")
        .unwrap()
        .clone();
    // 6 seeds (3 deleted) + 20 published concurrently; edits, deletes and bob's reactions are
    // not unread.
    assert_eq!(busy["unread"], 23, "{busy}");
    app.stop_node().await.unwrap();
}
