//! Notifications on `user:<id>`: mentions to online and offline users, follow/reply/reaction,
//! unread counts and read state synced across a user's connections, and mutes.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_protocol::MessageFrame;
use switchboard_tests::{Backend, Encoding, ServerFrame, TestApp, User, WsClient};

async fn inbox(app: &TestApp, user: &User, since: Option<u64>) -> WsClient {
    let mut ws = app.ws(user, Encoding::Json).await;
    ws.subscribe(&format!("user:{}", user.id), since)
        .await
        .expect("own user channel");
    ws
}

async fn say(app: &TestApp, who: &User, room: &str, text: String) -> u64 {
    let path = format!("/api/v1/channels/room:{room}/messages");
    let (status, body) = app
        .post(
            &path,
            Some(&who.access_token),
            json!({ "data": { "text": text } }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["offset"].as_u64().unwrap()
}

async fn unread(app: &TestApp, user: &User) -> i64 {
    let (status, body) = app
        .get(
            "/api/v1/notifications/unread_count",
            Some(&user.access_token),
        )
        .await;
    assert_eq!(status, 200);
    body["unread_count"].as_i64().unwrap()
}

async fn notifications(app: &TestApp, user: &User) -> Vec<Value> {
    let (status, body) = app
        .get("/api/v1/notifications", Some(&user.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

fn kinds(frames: &[MessageFrame]) -> Vec<&str> {
    frames
        .iter()
        .map(|m| m.data["kind"].as_str().unwrap())
        .collect()
}

on_both_backends!(mentions_reach_online_and_offline_users_who_may_read_the_room);

async fn mentions_reach_online_and_offline_users_who_may_read_the_room(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol, dave) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
        app.user("dave").await,
    );
    let mut bob_inbox = inbox(&app, &bob, None).await;

    let text = format!(
        "hi @{} and @{}, not @{} (me)",
        bob.username, carol.username, alice.username
    );
    let offset = say(&app, &alice, "lounge", text.clone()).await;
    let got = bob_inbox.messages(1).await;
    let m = &got[0];
    assert_eq!(m.channel, format!("user:{}", bob.id));
    assert_eq!(m.data["kind"], "mention");
    assert_eq!(
        m.data["from"],
        json!({ "id": alice.id, "username": alice.username })
    );
    assert_eq!(m.data["room"], "lounge");
    assert_eq!(m.data["channel"], "room:lounge");
    assert_eq!(m.data["message"]["offset"].as_u64(), Some(offset));
    assert_eq!(m.data["message"]["data"]["text"], text.as_str());
    assert!(m.data["id"].is_string());

    // Carol was offline: she finds it in her list and with `since` on her channel.
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = notifications(&app, &carol).await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["kind"].as_str(), listed[0]["read"].as_bool()),
        (Some("mention"), Some(false))
    );
    assert_eq!(unread(&app, &carol).await, 1);
    let mut carol_inbox = inbox(&app, &carol, Some(0)).await;
    let replayed = carol_inbox.messages(1).await;
    assert_eq!(replayed[0].data["id"], listed[0]["id"]);
    assert_eq!(replayed[0].offset, listed[0]["offset"].as_u64().unwrap());
    // Nobody is notified of mentioning themselves.
    assert!(notifications(&app, &alice).await.is_empty());

    // A private room: a non-member mentioned there hears nothing. Dave is named first, so when
    // Bob's notification arrives Dave's has been decided.
    let (status, _) = app
        .post(
            "/api/v1/rooms",
            Some(&alice.access_token),
            json!({ "name": "secret", "private": true, "members": [bob.username] }),
        )
        .await;
    assert_eq!(status, 201);
    say(
        &app,
        &alice,
        "secret",
        format!("@{} @{}", dave.username, bob.username),
    )
    .await;
    let got = bob_inbox.messages(1).await;
    assert_eq!(got[0].data["room"], "secret");
    assert!(notifications(&app, &dave).await.is_empty());
    assert_eq!(unread(&app, &dave).await, 0);
}

on_both_backends!(every_kind_arrives_and_read_state_syncs_across_connections);

async fn every_kind_arrives_and_read_state_syncs_across_connections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut phone = inbox(&app, &bob, None).await;
    let mut laptop = inbox(&app, &bob, None).await;

    let (status, body) = app
        .post(
            "/api/v1/posts",
            Some(&bob.access_token),
            json!({ "data": { "text": "my post" } }),
        )
        .await;
    assert_eq!(status, 201);
    let post_id = body["post"]["id"].as_str().unwrap().to_owned();
    let alice_token = Some(alice.access_token.as_str());
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    assert_eq!(app.post(&follow, alice_token, json!(null)).await.0, 201);
    say(&app, &alice, "lounge", format!("ping @{}", bob.username)).await;
    let replies = format!("/api/v1/posts/{post_id}/replies");
    let (status, reply) = app
        .post(&replies, alice_token, json!({ "data": { "text": "nice" } }))
        .await;
    assert_eq!(status, 201);
    let reactions = format!("/api/v1/posts/{post_id}/reactions");
    assert_eq!(
        app.post(&reactions, alice_token, json!({ "emoji": "🎉" }))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post(&reactions, alice_token, json!({ "emoji": "🎉" }))
            .await
            .0,
        200,
        "same reaction again"
    );
    assert_eq!(
        app.post(&reactions, alice_token, json!({ "emoji": "" }))
            .await
            .0,
        422
    );
    assert_eq!(
        app.post(
            "/api/v1/posts/nope/reactions",
            alice_token,
            json!({ "emoji": "x" })
        )
        .await
        .0,
        404
    );
    // Bob reacting to his own post notifies nobody.
    assert_eq!(
        app.post(
            &reactions,
            Some(&bob.access_token),
            json!({ "emoji": "👍" })
        )
        .await
        .0,
        201
    );

    let on_phone = phone.messages(4).await;
    let on_laptop = laptop.messages(4).await;
    let mut got_kinds = kinds(&on_phone);
    got_kinds.sort();
    assert_eq!(got_kinds, ["follow", "mention", "reaction", "reply"]);
    assert_eq!(
        on_phone.iter().map(|m| m.offset).collect::<Vec<_>>(),
        on_laptop.iter().map(|m| m.offset).collect::<Vec<_>>()
    );
    let by_kind = |kind: &str| {
        on_phone
            .iter()
            .find(|m| m.data["kind"] == kind)
            .unwrap()
            .data
            .clone()
    };
    assert_eq!(by_kind("reply")["post_id"], post_id.as_str());
    assert_eq!(by_kind("reply")["reply"]["id"], reply["post"]["id"]);
    assert_eq!(
        (
            by_kind("reaction")["post_id"].as_str(),
            by_kind("reaction")["emoji"].as_str()
        ),
        (Some(post_id.as_str()), Some("🎉"))
    );
    assert_eq!(
        by_kind("follow")["from"]["username"],
        alice.username.as_str()
    );
    phone.assert_no_message(Duration::from_millis(200)).await;
    assert_eq!(unread(&app, &bob).await, 4);

    let (_, post) = app
        .get(&format!("/api/v1/posts/{post_id}"), alice_token)
        .await;
    assert_eq!(post["post"]["replies"], 1);
    assert_eq!(post["post"]["reactions"].as_array().unwrap().len(), 2);

    // Marking two read on the phone tells the laptop.
    let two: Vec<Value> = on_phone[..2].iter().map(|m| m.data["id"].clone()).collect();
    let bob_token = Some(bob.access_token.as_str());
    let (status, body) = app
        .post(
            "/api/v1/notifications/read",
            bob_token,
            json!({ "ids": two }),
        )
        .await;
    assert_eq!(
        (
            status,
            body["marked"].as_u64(),
            body["unread_count"].as_i64()
        ),
        (200, Some(2), Some(2))
    );
    let read = laptop.messages(1).await;
    assert_eq!(read[0].data["kind"], "read");
    assert_eq!(read[0].data["ids"], json!(two));
    assert_eq!(read[0].data["unread_count"], 2);
    assert_eq!(phone.messages(1).await[0].data["kind"], "read");
    assert_eq!(unread(&app, &bob).await, 2);
    // Marking them again changes nothing and sends nothing.
    let (_, body) = app
        .post(
            "/api/v1/notifications/read",
            bob_token,
            json!({ "ids": two }),
        )
        .await;
    assert_eq!(body["marked"], 0);

    let (status, body) = app
        .post(
            "/api/v1/notifications/read",
            bob_token,
            json!({ "all": true }),
        )
        .await;
    assert_eq!(
        (
            status,
            body["marked"].as_u64(),
            body["unread_count"].as_i64()
        ),
        (200, Some(2), Some(0))
    );
    let all = laptop.messages(1).await;
    assert_eq!(
        (all[0].data["kind"].as_str(), all[0].data["all"].as_bool()),
        (Some("read"), Some(true))
    );
    assert_eq!(
        all[0].data["upto"].as_u64(),
        Some(on_phone.iter().map(|m| m.offset).max().unwrap() + 1)
    );
    laptop.assert_no_message(Duration::from_millis(200)).await;
    let listed = notifications(&app, &bob).await;
    assert_eq!(listed.len(), 4, "read events are not notifications");
    assert!(listed.iter().all(|n| n["read"] == true));

    for bad in [
        json!({}),
        json!({ "ids": [], "all": true }),
        json!({ "everything": true }),
    ] {
        let (status, _) = app
            .post("/api/v1/notifications/read", bob_token, bad.clone())
            .await;
        assert!(status == 422 || status == 400, "{bad} → {status}");
    }
}

on_both_backends!(mutes_silence_rooms_and_users_until_unmuted);

async fn mutes_silence_rooms_and_users_until_unmuted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let bob_token = Some(bob.access_token.as_str());
    assert_eq!(
        app.post("/api/v1/mutes", bob_token, json!({ "room": "noisy" }))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post("/api/v1/mutes", bob_token, json!({ "room": "noisy" }))
            .await
            .0,
        200
    );
    assert_eq!(
        app.post("/api/v1/mutes", bob_token, json!({ "user": carol.id }))
            .await
            .0,
        201
    );
    for bad in [
        json!({}),
        json!({ "room": "a", "user": "b" }),
        json!({ "room": "bad name!" }),
        json!({ "user": bob.id }),
    ] {
        assert_eq!(
            app.post("/api/v1/mutes", bob_token, bad.clone()).await.0,
            422,
            "{bad}"
        );
    }
    let (_, listed) = app.get("/api/v1/mutes", bob_token).await;
    let mutes = listed["mutes"].as_array().unwrap();
    assert_eq!(mutes.len(), 2, "{listed}");
    assert!(mutes.iter().any(|m| m["room"] == "noisy"), "{listed}");
    assert!(
        mutes.iter().any(|m| m["user"] == carol.id.as_str()),
        "{listed}"
    );

    let mut bob_inbox = inbox(&app, &bob, None).await;
    say(
        &app,
        &alice,
        "noisy",
        format!("@{} in a muted room", bob.username),
    )
    .await;
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    assert_eq!(
        app.post(&follow, Some(&carol.access_token), json!(null))
            .await
            .0,
        201
    );
    say(
        &app,
        &carol,
        "quiet",
        format!("@{} from a muted user", bob.username),
    )
    .await;
    // Anything not muted still arrives, and is the first thing that does.
    say(&app, &alice, "quiet", format!("@{} unmuted", bob.username)).await;
    let got = bob_inbox.messages(1).await;
    assert_eq!(
        (
            got[0].data["room"].as_str(),
            got[0].data["from"]["id"].as_str()
        ),
        (Some("quiet"), Some(alice.id.as_str()))
    );
    bob_inbox
        .assert_no_message(Duration::from_millis(300))
        .await;
    assert_eq!(unread(&app, &bob).await, 1);

    // Unmute with a body, and with a query string.
    assert_eq!(
        app.delete("/api/v1/mutes", bob_token, json!({ "room": "noisy" }))
            .await
            .0,
        204
    );
    assert_eq!(
        app.delete("/api/v1/mutes", bob_token, json!({ "room": "noisy" }))
            .await
            .0,
        404
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/mutes?user={}", carol.id),
            bob_token,
            json!(null)
        )
        .await
        .0,
        204
    );
    let (_, listed) = app.get("/api/v1/mutes", bob_token).await;
    assert_eq!(listed["mutes"], json!([]));
    say(
        &app,
        &carol,
        "noisy",
        format!("@{} heard again", bob.username),
    )
    .await;
    let got = bob_inbox.messages(1).await;
    assert_eq!(got[0].data["from"]["id"], carol.id.as_str());
}

on_both_backends!(a_clean_shutdown_notifies_every_stored_mention);

/// Mentions are found after their chat message commits; a graceful shutdown must not stop
/// looking before the last stored message was seen.
async fn a_clean_shutdown_notifies_every_stored_mention(backend: Backend) {
    // 200 mentioning messages from one sender: past the per-sender budget, which is not what
    // this test is about.
    let app = TestApp::spawn_with(backend, |c| {
        c.mentions_per_min = switchboard_tests::nz(100_000)
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut ws = app.ws(&alice, Encoding::Json).await;
    for n in 0..200 {
        let text = format!("@{} number {n}", bob.username);
        ws.send(&switchboard_protocol::ClientFrame::Publish {
            id: 1000 + n,
            channel: "room:busy".into(),
            data: json!({ "text": text }),
            idempotency_key: None,
        })
        .await;
    }
    // Stop as soon as the first is stored, while the rest are still being stored and scanned.
    while !matches!(ws.recv().await, ServerFrame::Ack(_)) {}
    let db = app.stop().await.unwrap();
    let app = TestApp::spawn_on(db, |c| c.mentions_per_min = switchboard_tests::nz(100_000)).await;
    let token = Some(bob.access_token.as_str());
    let (_, history) = app
        .get(
            "/api/v1/channels/room:busy/messages?limit=200",
            Some(&alice.access_token),
        )
        .await;
    let stored = history["messages"].as_array().unwrap().len();
    let (_, notes) = app.get("/api/v1/notifications?limit=200", token).await;
    let notified = notes["notifications"].as_array().unwrap().len();
    assert!(
        stored > 0,
        "nothing was stored before the stop; the test proves nothing"
    );
    assert_eq!(notified, stored, "every stored mention was notified");
}

on_both_backends!(a_mention_a_dead_node_left_in_the_outbox_is_notified_once_by_another);

/// A node that stored a mentioning message and died before notifying leaves the message in the
/// mention outbox (written in the message's own transaction). Here "the dead node" is a second
/// storage handle that appends the message and does nothing more; the running node's sweep takes
/// the row over once its lease is out and notifies, and a second takeover of the same message
/// (a node that notified, then died before forgetting the row) notifies nobody again.
async fn a_mention_a_dead_node_left_in_the_outbox_is_notified_once_by_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut inbox = inbox(&app, &bob, Some(0)).await;

    let db = app.db.as_ref().expect("the app owns its database");
    let dead = switchboard_server::store::Store::open(db.url().as_deref(), &db.data_dir(), 2)
        .await
        .unwrap();
    let text = format!("hey @{} look", bob.username);
    let message = switchboard_server::store::messages::NewMessage {
        channel: "room:outbox".into(),
        id: uuid::Uuid::now_v7().to_string(),
        from: alice.id.clone(),
        ts_ms: switchboard_server::store::now_ms(),
        data: serde_json::value::to_raw_value(&json!({ "text": text })).unwrap(),
        published_at: None,
        notification: None,
        idempotency_key: None,
        effect: None,
    };
    let stored = dead.append(&mut [message]).await.unwrap();
    let offset = stored[0].offset().unwrap();
    // Its lease runs out (instead of waiting 30 s for it).
    let expire = "UPDATE mention_outbox SET lease_until = 0";
    sqlx::query(expire)
        .execute(dead.pool_for_tests())
        .await
        .unwrap();

    let got = tokio::time::timeout(Duration::from_secs(20), inbox.messages(1))
        .await
        .expect("the sweep notified the mention");
    assert_eq!(got[0].data["kind"], "mention");
    assert_eq!(got[0].data["message"]["offset"], offset);
    assert_eq!(got[0].data["from"]["id"], alice.id.as_str());

    // Done: the row is gone. Put it back, as a node that died after notifying would leave it.
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM mention_outbox")
            .fetch_one(dead.pool_for_tests())
            .await
            .unwrap()
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while rows().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the handled row was deleted");
    sqlx::query(
        "INSERT INTO mention_outbox (channel, seq, lease_until) VALUES ('room:outbox', $1, 0)",
    )
    .bind(offset as i64)
    .execute(dead.pool_for_tests())
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while rows().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the second takeover handled the row");
    inbox.assert_no_message(Duration::from_millis(500)).await;
    assert_eq!(unread(&app, &bob).await, 1, "notified once");
}
