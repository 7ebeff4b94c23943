//! Room membership and moderation (issue 13): roles, adding and removing members, leaving,
//! ownership, archive and delete, bans and timeouts, the audit trail; each change a system
//! message in the room's channel and a notification to the user it concerns, and removals ending
//! live subscriptions at once on every node.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_protocol::{ErrorCode, MessageFrame, ServerFrame};
use switchboard_tests::{Backend, Encoding, TestApp, User, WsClient};

/// The `data.kind` of the system messages among `messages` (`from` is `system`), in order.
fn kinds(messages: &[MessageFrame]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.from == "system")
        .map(|m| m.data["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Waits for the error frame that ends `channel`'s subscription; returns its message.
async fn ended(ws: &mut WsClient, channel: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next(left).await {
            Ok(ServerFrame::Error(e)) if e.channel.as_deref() == Some(channel) => {
                assert_eq!(e.code, ErrorCode::Forbidden);
                return e.message;
            }
            Ok(_) => continue,
            Err(e) => panic!("the subscription to {channel} did not end: {e:?}"),
        }
    }
}

async fn room_kinds_of_notifications(app: &TestApp, user: &User) -> Vec<(String, String)> {
    let (status, body) = app
        .get("/api/v1/notifications", Some(&user.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "room")
        .map(|n| {
            (
                n["room"].as_str().unwrap().to_owned(),
                n["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn create(app: &TestApp, owner: &User, name: &str, private: bool, members: &[&User]) {
    let names: Vec<&str> = members.iter().map(|u| u.username.as_str()).collect();
    let (status, body) = app
        .post(
            "/api/v1/rooms",
            Some(&owner.access_token),
            json!({"name": name, "private": private, "members": names}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["room"]["role"], "owner");
}

fn roles(page: &Value) -> Vec<(String, String)> {
    page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_backends!(roles_membership_and_ownership);

async fn roles_membership_and_ownership(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("a_alice").await,
        app.user("b_bob").await,
        app.user("c_carol").await,
    );
    create(&app, &alice, "team", true, &[&bob]).await;
    // A watcher in MessagePack: system messages travel in both encodings.
    let mut watch = app.ws(&bob, Encoding::MsgPack).await;
    watch.subscribe("room:team", Some(0)).await.unwrap();

    // A member who is not an admin cannot add anyone.
    let (status, body) = app
        .post(
            "/api/v1/rooms/team/members",
            Some(&bob.access_token),
            json!({"user": carol.id}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // The owner adds carol (by username); a repeat changes nothing and announces nothing.
    let (status, body) = app
        .post(
            "/api/v1/rooms/team/members",
            Some(&alice.access_token),
            json!({"username": carol.username}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["member"]["role"], "member");
    let (status, _) = app
        .post(
            "/api/v1/rooms/team/members",
            Some(&alice.access_token),
            json!({"user": carol.id}),
        )
        .await;
    assert_eq!(status, 200);
    let mut carol_ws = app.ws(&carol, Encoding::Json).await;
    carol_ws.subscribe("room:team", Some(0)).await.unwrap();

    // Paginated member list, by username, with roles.
    let (status, first) = app
        .get(
            "/api/v1/rooms/team/members?limit=2",
            Some(&carol.access_token),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let after = first["next_after"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = app
        .get(
            &format!("/api/v1/rooms/team/members?limit=2&after={after}"),
            Some(&carol.access_token),
        )
        .await;
    assert!(second["next_after"].is_null());
    let mut all = roles(&first);
    all.extend(roles(&second));
    assert_eq!(
        all,
        vec![
            (alice.username.clone(), "owner".into()),
            (bob.username.clone(), "member".into()),
            (carol.username.clone(), "member".into()),
        ]
    );

    // Promote bob; as an admin he removes carol, whose live subscription ends at once.
    let (status, body) = app
        .patch(
            &format!("/api/v1/rooms/team/members/{}", bob.id),
            Some(&alice.access_token),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(
        (status, body["member"]["role"].as_str()),
        (200, Some("admin")),
        "{body}"
    );
    // An admin cannot touch the owner.
    let (status, _) = app
        .delete(
            &format!("/api/v1/rooms/team/members/{}", alice.id),
            Some(&bob.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .delete(
            &format!("/api/v1/rooms/team/members/{}", carol.id),
            Some(&bob.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    ended(&mut carol_ws, "room:team", Duration::from_secs(5)).await;
    let (status, _) = app
        .get(
            "/api/v1/channels/room:team/messages",
            Some(&carol.access_token),
        )
        .await;
    assert_eq!(status, 403, "a removed member reads no history");
    assert_eq!(
        room_kinds_of_notifications(&app, &carol).await,
        vec![
            ("team".to_owned(), "member_removed".to_owned()),
            ("team".to_owned(), "member_added".to_owned()),
        ]
    );

    // The owner cannot leave before handing the room over; after a transfer they can.
    let (status, body) = app
        .post(
            "/api/v1/rooms/team/leave",
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/api/v1/rooms/team/owner",
            Some(&alice.access_token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(
        (status, body["member"]["role"].as_str()),
        (200, Some("owner")),
        "{body}"
    );
    let (_, room) = app
        .get("/api/v1/rooms/team", Some(&alice.access_token))
        .await;
    assert_eq!(room["room"]["role"], "admin");
    let (status, _) = app
        .post(
            "/api/v1/rooms/team/leave",
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);

    // Every change is a system message, under offsets of the room's own sequence, seen live
    // and in history alike.
    let expected = [
        "member_added",
        "role_changed",
        "member_removed",
        "ownership_transferred",
        "member_left",
    ];
    let live = watch.messages(expected.len()).await;
    assert_eq!(kinds(&live), expected);
    assert_eq!(
        live.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(live[0].data["user"]["id"], carol.id);
    assert_eq!(live[0].data["by"]["id"], alice.id);
    assert_eq!(live[1].data["role"], "admin");
    let (_, history) = app
        .get(
            "/api/v1/channels/room:team/messages",
            Some(&bob.access_token),
        )
        .await;
    let stored: Vec<MessageFrame> = serde_json::from_value(history["messages"].clone()).unwrap();
    assert_eq!(stored, live);
    app.stop().await.unwrap();
}

on_both_backends!(bans_timeouts_and_the_audit_trail);

async fn bans_timeouts_and_the_audit_trail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, eve) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("eve").await,
    );
    create(&app, &alice, "town", false, &[]).await;
    // Anyone joins a public room themselves; nobody adds others without being an admin.
    let (status, _) = app
        .post(
            "/api/v1/rooms/town/members",
            Some(&eve.access_token),
            json!({"user": eve.id}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            "/api/v1/rooms/town/members",
            Some(&eve.access_token),
            json!({"user": bob.id}),
        )
        .await;
    assert_eq!(status, 403);
    let mut eve_ws = app.ws(&eve, Encoding::Json).await;
    eve_ws.subscribe("room:town", None).await.unwrap();
    let mut sink = Vec::new();
    eve_ws
        .publish("room:town", json!({"text": "hi"}), &mut sink)
        .await
        .unwrap();

    // A timeout: eve reads but cannot publish, over either transport, until it is lifted.
    let (status, body) = app
        .post(
            "/api/v1/rooms/town/timeouts",
            Some(&alice.access_token),
            json!({"user": eve.id, "seconds": 600}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let refused = eve_ws
        .publish("room:town", json!({"text": "spam"}), &mut sink)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(refused.message.contains("timed out"), "{}", refused.message);
    let (status, _) = app
        .post(
            "/api/v1/channels/room:town/messages",
            Some(&eve.access_token),
            json!({"data": {"text": "spam"}}),
        )
        .await;
    assert_eq!(status, 403);
    // Eve cannot time herself out of it, nor an admin out of the room.
    let (status, _) = app
        .post(
            "/api/v1/rooms/town/timeouts",
            Some(&eve.access_token),
            json!({"user": alice.id, "seconds": 60}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .delete(
            &format!("/api/v1/rooms/town/timeouts/{}", eve.id),
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    eve_ws
        .publish("room:town", json!({"text": "sorry"}), &mut sink)
        .await
        .unwrap();

    // A ban: the live subscription ends, and subscribing, history, publishing and joining again
    // are all refused; the room drops out of eve's room list.
    let (status, _) = app
        .post(
            "/api/v1/rooms/town/bans",
            Some(&alice.access_token),
            json!({"user": eve.id}),
        )
        .await;
    assert_eq!(status, 201);
    let why = ended(&mut eve_ws, "room:town", Duration::from_secs(5)).await;
    assert!(why.contains("banned"), "{why}");
    assert_eq!(
        eve_ws.subscribe("room:town", None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
    let (status, _) = app
        .get(
            "/api/v1/channels/room:town/messages",
            Some(&eve.access_token),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/api/v1/channels/room:town/messages",
            Some(&eve.access_token),
            json!({"data": {"text": "back"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post(
            "/api/v1/rooms/town/members",
            Some(&eve.access_token),
            json!({"user": eve.id}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (_, listed) = app.get("/api/v1/rooms", Some(&eve.access_token)).await;
    assert!(listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] != "town"));
    // Others still see it, and read eve's earlier messages.
    let (_, listed) = app.get("/api/v1/rooms", Some(&bob.access_token)).await;
    assert!(listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "town"));

    // The audit trail: who did what to whom, newest first, for admins only.
    let (status, _) = app
        .get("/api/v1/rooms/town/audit", Some(&bob.access_token))
        .await;
    assert_eq!(status, 403);
    let (status, trail) = app
        .get("/api/v1/rooms/town/audit", Some(&alice.access_token))
        .await;
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<(&str, &str, &str)> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("banned", alice.id.as_str(), eve.id.as_str()),
            ("timeout_lifted", alice.id.as_str(), eve.id.as_str()),
            ("timed_out", alice.id.as_str(), eve.id.as_str()),
            ("member_added", eve.id.as_str(), eve.id.as_str()),
        ]
    );
    // Unbanned, eve may join again.
    let (status, _) = app
        .delete(
            &format!("/api/v1/rooms/town/bans/{}", eve.id),
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    eve_ws.subscribe("room:town", None).await.unwrap();
    app.stop().await.unwrap();
}

on_both_backends!(archived_rooms_are_read_only_and_deleted_rooms_are_gone);

async fn archived_rooms_are_read_only_and_deleted_rooms_are_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    create(&app, &alice, "old", true, &[&bob]).await;
    let mut bob_ws = app.ws(&bob, Encoding::Json).await;
    bob_ws.subscribe("room:old", None).await.unwrap();
    let mut seen = Vec::new();
    bob_ws
        .publish("room:old", json!({"text": "a secret"}), &mut seen)
        .await
        .unwrap();

    // Only the owner renames and archives.
    let (status, _) = app
        .patch(
            "/api/v1/rooms/old",
            Some(&bob.access_token),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .patch(
            "/api/v1/rooms/old",
            Some(&alice.access_token),
            json!({"title": "The old room", "archived": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["room"]["title"].as_str(),
            body["room"]["archived"].as_bool()
        ),
        (Some("The old room"), Some(true))
    );
    let refused = bob_ws
        .publish("room:old", json!({"text": "more"}), &mut seen)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(refused.message.contains("archived"), "{}", refused.message);
    let (status, _) = app
        .get(
            "/api/v1/channels/room:old/messages",
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(status, 200, "an archived room is still readable");
    seen.extend(bob_ws.messages(3 - seen.len()).await);
    assert_eq!(kinds(&seen), vec!["renamed", "archived"]);
    assert_eq!(seen[1].data["title"], "The old room");

    // Deleting: the owner only; subscriptions end, the content is gone from storage, the name
    // stays taken.
    let (status, _) = app
        .delete("/api/v1/rooms/old", Some(&bob.access_token), json!(null))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .delete("/api/v1/rooms/old", Some(&alice.access_token), json!(null))
        .await;
    assert_eq!(status, 204);
    let why = ended(&mut bob_ws, "room:old", Duration::from_secs(5)).await;
    assert!(why.contains("deleted"), "{why}");
    let (status, _) = app
        .get("/api/v1/rooms/old", Some(&alice.access_token))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(
            "/api/v1/channels/room:old/messages",
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/api/v1/rooms",
            Some(&bob.access_token),
            json!({"name": "old", "private": false}),
        )
        .await;
    assert_eq!(status, 409);
    let db = app.stop().await.unwrap();
    let pool = db.pool().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE channel = 'room:old'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "a deleted room's messages are gone from storage");
}

/// A removed member's subscriptions end at once on every node, not only the one where the
/// change was made (the control event carries the new rules; the 5 s storage poll is the net).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_receiving_on_every_node() {
    let (_db, nodes) = TestApp::spawn_cluster(3, |_| {}).await;
    let (alice, carol) = (nodes[0].user("alice").await, nodes[0].user("carol").await);
    create(&nodes[0], &alice, "crew", true, &[&carol]).await;
    let mut on_b = nodes[1].ws(&carol, Encoding::Json).await;
    let mut on_c = nodes[2].ws(&carol, Encoding::MsgPack).await;
    on_b.subscribe("room:crew", None).await.unwrap();
    on_c.subscribe("room:crew", None).await.unwrap();
    let (status, _) = nodes[0]
        .delete(
            &format!("/api/v1/rooms/crew/members/{}", carol.id),
            Some(&alice.access_token),
            json!(null),
        )
        .await;
    assert_eq!(status, 204);
    // Within the poll interval, so it was the event, not the poll.
    ended(&mut on_b, "room:crew", Duration::from_secs(4)).await;
    ended(&mut on_c, "room:crew", Duration::from_secs(4)).await;
    // And alice's later messages reach neither.
    let mut a = nodes[0].ws(&alice, Encoding::Json).await;
    a.subscribe("room:crew", None).await.unwrap();
    a.publish("room:crew", json!({"text": "after"}), &mut Vec::new())
        .await
        .unwrap();
    on_b.assert_no_message(Duration::from_millis(300)).await;
    on_c.assert_no_message(Duration::from_millis(300)).await;
    assert_eq!(
        on_b.subscribe("room:crew", None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

on_both_backends!(a_change_left_unannounced_by_a_dead_node_is_announced_once);

/// A node that dies between a change's commit and its system message leaves the change pending
/// (its audit row, written in the change's transaction): the next change in the room announces
/// it first, and the sweep announces one nobody follows; each once, in order.
async fn a_change_left_unannounced_by_a_dead_node_is_announced_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    create(&app, &alice, "crew", true, &[]).await;
    create(&app, &alice, "quiet", true, &[]).await;
    let pool = app.db.as_ref().unwrap().pool().await;
    // What the dead node committed: the change and its pending announcement, nothing more.
    for (room, user, at) in [("crew", &bob, now_ms()), ("quiet", &carol, 0)] {
        sqlx::query(
            "INSERT INTO room_audit (room, actor, action, target, detail, at, announce_pending) \
             VALUES ($1, $2, 'member_added', $3, NULL, $4, 1)",
        )
        .bind(room)
        .bind(&alice.id)
        .bind(&user.id)
        .bind(at)
        .execute(&pool)
        .await
        .unwrap();
    }
    let mut a = app.ws(&alice, Encoding::Json).await;
    a.subscribe("room:crew", None).await.unwrap();
    a.subscribe("room:quiet", None).await.unwrap();
    let (status, _) = app
        .post(
            "/api/v1/rooms/crew/members",
            Some(&alice.access_token),
            json!({"user": carol.id}),
        )
        .await;
    assert_eq!(status, 201);
    let crew = a.messages(2).await;
    let added: Vec<(&str, &str)> = crew
        .iter()
        .map(|m| {
            (
                m.data["kind"].as_str().unwrap(),
                m.data["user"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        added,
        vec![
            ("member_added", bob.id.as_str()),
            ("member_added", carol.id.as_str())
        ],
        "the dead node's change first, then the new one"
    );
    assert!(crew
        .iter()
        .all(|m| m.channel == "room:crew" && m.from == "system"));
    // Nobody changes "quiet" again: the sweep (every 10 s) announces its change.
    let quiet = loop {
        match a.next(Duration::from_secs(25)).await {
            Ok(ServerFrame::Message(m)) => break m,
            Ok(_) => continue,
            Err(e) => panic!("the sweep announced nothing: {e:?}"),
        }
    };
    assert_eq!(quiet.channel, "room:quiet");
    assert_eq!(quiet.data["user"]["id"], carol.id);
    a.assert_no_message(Duration::from_secs(11)).await;
    let history = |room: &'static str| {
        let app = &app;
        let token = alice.access_token.clone();
        async move {
            let (_, page) = app
                .get(
                    &format!("/api/v1/channels/room:{room}/messages"),
                    Some(&token),
                )
                .await;
            page["messages"].as_array().unwrap().len()
        }
    };
    assert_eq!(
        (history("crew").await, history("quiet").await),
        (2, 1),
        "each once"
    );
    app.stop_node().await.unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
