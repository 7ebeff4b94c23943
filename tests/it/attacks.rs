//! Attacks from the December 2026 security audit (`shared/audits/security-2026-12.md`), each as a
//! black-box test named after its finding: what an attacker does, and what they must get instead
//! of what they were after. Frames are read as plain JSON so a test states exactly what is on the
//! wire.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_tests::raw::{frame, next, request, Got};
use switchboard_tests::{Backend, Encoding, TestApp, TestDb, User, WsClient, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What came off a socket: a frame as JSON (MessagePack frames are converted), or its close.
async fn subscribe(ws: &mut WsClient, channel: &str, since: Option<u64>) -> Value {
    let mut frame = json!({"type": "subscribe", "channel": channel});
    if let Some(since) = since {
        frame["since"] = since.into();
    }
    request(ws, frame, &mut Vec::new()).await
}

async fn publish(ws: &mut WsClient, channel: &str, data: Value) -> Value {
    let frame = json!({"type": "publish", "channel": channel, "data": data});
    request(ws, frame, &mut Vec::new()).await
}

/// `[[[…1…]]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

/// The same as raw JSON text (for request bodies deeper than serde_json would build).
fn nested_text(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

async fn post_raw(app: &TestApp, path: &str, token: &str, body: String) -> (u16, String) {
    let resp = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers (an empty reply means the handler died)");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn create_room(
    app: &TestApp,
    owner: &User,
    name: &str,
    private: bool,
    members: &[&User],
) -> (u16, Value) {
    let members: Vec<&str> = members.iter().map(|u| u.username.as_str()).collect();
    app.post(
        "/api/v1/rooms",
        Some(&owner.access_token),
        json!({"name": name, "private": private, "members": members}),
    )
    .await
}

fn room_name() -> String {
    format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

// ---------------------------------------------------------------------------------------------
// F1: a subscription (or publish right) taken before a room is created private survives it.

on_both_backends!(f1_an_outsider_subscribed_before_a_room_went_private_hears_nothing);

async fn f1_an_outsider_subscribed_before_a_room_went_private_hears_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    let name = room_name();
    let channel = format!("room:{name}");
    let mut spy = app.ws(&mallory, Encoding::Json).await;
    assert_eq!(subscribe(&mut spy, &channel, None).await["type"], "ack");
    let mut bob_ws = app.ws(&bob, Encoding::Json).await;
    assert_eq!(subscribe(&mut bob_ws, &channel, None).await["type"], "ack");
    // The name is in use (Mallory listens), so claiming it is refused; were it not, Mallory's
    // subscription would have to end. Either way she must hear nothing private.
    let (status, body) = create_room(&app, &alice, &name, true, &[&bob]).await;
    if status == 201 {
        let got = frame(next(&mut spy, PATIENCE).await);
        assert_eq!(
            (got["type"].as_str(), got["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{got}"
        );
        assert_eq!(got["channel"], channel, "{got}");
        let mut alice_ws = app.ws(&alice, Encoding::Json).await;
        let ack = publish(&mut alice_ws, &channel, json!({"text": "confidential"})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let got = frame(next(&mut bob_ws, PATIENCE).await);
        assert_eq!(got["data"]["text"], "confidential", "{got}");
        assert_silent(&mut spy, Duration::from_millis(500)).await;
        let refused = publish(&mut spy, &channel, json!({"text": "injected"})).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
    } else {
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "conflict", "{body}");
    }
    app.stop().await.unwrap();
}

/// Asserts that no channel message arrives within `quiet` (other frames are ignored).
async fn assert_silent(ws: &mut WsClient, quiet: Duration) {
    loop {
        match next(ws, quiet).await {
            Got::Frame(f) => assert_ne!(f["type"], "message", "an outsider got {f}"),
            _ => return,
        }
    }
}

on_both_backends!(f1_f18_access_changed_in_storage_ends_subscriptions_and_publish_rights);

/// The storage poll is the safety net for a lost control event: a room made private in storage
/// (here written directly, as another node would) ends every live subscription and cached
/// publish right it refuses, within the poll interval.
async fn f1_f18_access_changed_in_storage_ends_subscriptions_and_publish_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, mallory) = (app.user("alice").await, app.user("mallory").await);
    let name = room_name();
    let channel = format!("room:{name}");
    let mut spy = app.ws(&mallory, Encoding::Json).await;
    assert_eq!(subscribe(&mut spy, &channel, None).await["type"], "ack");
    assert_eq!(
        publish(&mut spy, &channel, json!({"t": 1})).await["type"],
        "ack"
    );
    // A second socket holds only a publish right (it published, never subscribed).
    let mut injector = app.ws(&mallory, Encoding::Json).await;
    assert_eq!(
        publish(&mut injector, &channel, json!({"t": 2})).await["type"],
        "ack"
    );
    let db = app.db.as_ref().unwrap().pool().await;
    sqlx::query("INSERT INTO rooms (name, private, created_by, created_at, acl_changed_at) VALUES ($1, 1, $2, $3, $3)")
        .bind(&name)
        .bind(&alice.id)
        .bind(switchboard_server::store::now_ms())
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO room_members (room, user_id) VALUES ($1, $2)")
        .bind(&name)
        .bind(&alice.id)
        .execute(&db)
        .await
        .unwrap();
    let got = loop {
        let got = frame(next(&mut spy, PATIENCE).await);
        if got["type"] != "message" {
            break got;
        }
    };
    assert_eq!(
        (got["type"].as_str(), got["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{got}"
    );
    assert_eq!(got["channel"], channel, "{got}");
    let mut alice_ws = app.ws(&alice, Encoding::Json).await;
    assert_eq!(
        publish(&mut alice_ws, &channel, json!({"text": "confidential"})).await["type"],
        "ack"
    );
    assert_silent(&mut spy, Duration::from_millis(500)).await;
    for ws in [&mut spy, &mut injector] {
        let refused = publish(ws, &channel, json!({"text": "injected"})).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
    }
    // A replay is checked too.
    let refused = subscribe(&mut spy, &channel, Some(0)).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    app.stop().await.unwrap();
}

/// Outsiders on another node keep subscribing while the room is created private: whatever the
/// interleaving, none of them hears a message published after the creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_creation_racing_subscribers_on_another_node_leaks_nothing() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let (alice, mallory) = (nodes[0].user("alice").await, nodes[0].user("mallory").await);
    let name = room_name();
    let channel = format!("room:{name}");
    let mut spies = Vec::new();
    for _ in 0..6 {
        spies.push(nodes[1].ws(&mallory, Encoding::Json).await);
    }
    // Each spy subscribes once, at staggered moments before, around and after the creation.
    let mut tasks = Vec::new();
    for (i, mut spy) in spies.into_iter().enumerate() {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40 * i as u64)).await;
            let reply = subscribe(&mut spy, &channel, None).await;
            if reply["type"] == "error" {
                assert_eq!(reply["code"], "forbidden", "{reply}");
            }
            spy
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = create_room(&nodes[0], &alice, &name, true, &[]).await;
    assert!(status == 201 || status == 409, "{status} {body}");
    let mut spies = Vec::new();
    for task in tasks {
        spies.push(task.await.unwrap());
    }
    if status == 201 {
        let mut alice_ws = nodes[0].ws(&alice, Encoding::Json).await;
        let ack = publish(&mut alice_ws, &channel, json!({"text": "confidential"})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        for spy in &mut spies {
            assert_silent(spy, Duration::from_millis(700)).await;
        }
    }
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// F13: claiming an in-use public room as private.

on_both_backends!(f13_a_room_with_history_or_listeners_cannot_be_claimed);

async fn f13_a_room_with_history_or_listeners_cannot_be_claimed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, mallory) = (app.user("alice").await, app.user("mallory").await);
    // History.
    let lobby = room_name();
    let mut aws = app.ws(&alice, Encoding::Json).await;
    assert_eq!(
        publish(&mut aws, &format!("room:{lobby}"), json!({"text": "hi"})).await["type"],
        "ack"
    );
    let (status, body) = create_room(&app, &mallory, &lobby, true, &[]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    // Alice still reads it.
    let (status, _) = app
        .get(
            &format!("/api/v1/channels/room:{lobby}/messages"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 200);
    // Live subscribers, no history yet.
    let quiet = room_name();
    assert_eq!(
        subscribe(&mut aws, &format!("room:{quiet}"), None).await["type"],
        "ack"
    );
    let (status, body) = create_room(&app, &mallory, &quiet, true, &[]).await;
    assert_eq!(status, 409, "{body}");
    // Nor under another case: the room would refuse every variant of its name.
    let (status, body) = create_room(&app, &mallory, &lobby.to_uppercase(), true, &[]).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = create_room(&app, &mallory, &quiet.to_uppercase(), true, &[]).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app
        .get(
            &format!("/api/v1/channels/room:{lobby}/messages"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F2: one deeply nested post kills the feed fan-out worker.

on_both_backends!(f2_a_deeply_nested_post_is_refused_and_feeds_keep_flowing);

async fn f2_a_deeply_nested_post_is_refused_and_feeds_keep_flowing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    for whom in [&alice, &mallory] {
        let path = format!("/api/v1/users/{}/follow", whom.id);
        assert_eq!(
            app.post(&path, Some(&bob.access_token), json!(null))
                .await
                .0,
            201
        );
    }
    let mut feed = app.ws(&bob, Encoding::Json).await;
    assert_eq!(
        subscribe(&mut feed, &format!("feed:{}", bob.id), None).await["type"],
        "ack"
    );
    let (status, body) = post_raw(
        &app,
        "/api/v1/posts",
        &mallory.access_token,
        format!("{{\"data\":{}}}", nested_text(200)),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("nest"), "the refusal says why: {body}");
    let (status, body) = app
        .post(
            "/api/v1/posts",
            Some(&alice.access_token),
            json!({"data": {"text": "hello followers"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let got = frame(next(&mut feed, PATIENCE).await);
    assert_eq!(
        got["data"]["post"]["data"]["text"], "hello followers",
        "{got}"
    );
    app.stop().await.unwrap();
}

/// Every way `data` enters is bounded by the same documented depth: WebSocket JSON and
/// MessagePack publishes, HTTP publishes, posts and replies. Depth 32 passes, 33 does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f2_nesting_depth_is_bounded_at_every_entry_point() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let channel = format!("room:{}", room_name());
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let mut ws = app.ws(&alice, encoding).await;
        let ok = publish(&mut ws, &channel, nested(31)).await;
        assert_eq!(ok["type"], "ack", "{encoding:?}: {ok}");
        let refused = publish(&mut ws, &channel, json!({"deep": nested(40)})).await;
        assert_eq!(refused["code"], "bad_request", "{encoding:?}: {refused}");
        assert!(
            refused["message"].as_str().unwrap().contains("nest"),
            "{refused}"
        );
    }
    let deep = |d| format!("{{\"data\":{}}}", nested_text(d));
    let path = format!("/api/v1/channels/{channel}/messages");
    let (status, body) = post_raw(&app, &path, &alice.access_token, deep(200)).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post_raw(&app, &path, &alice.access_token, deep(31)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/posts",
            Some(&alice.access_token),
            json!({"data": {"t": "parent"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let parent = body["post"]["id"].as_str().unwrap().to_owned();
    let (status, body) = post_raw(
        &app,
        &format!("/api/v1/posts/{parent}/replies"),
        &alice.access_token,
        deep(200),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // The thread still renders for everyone.
    let (status, body) = app
        .get(
            &format!("/api/v1/posts/{parent}/replies"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F16: what is stored can always be delivered, in both encodings (here: a payload stored deeper
// than any parser limit, as data written before the depth limit existed could be).

on_both_backends!(f16_every_stored_offset_reaches_messagepack_subscribers);

async fn f16_every_stored_offset_reaches_messagepack_subscribers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let channel = format!("room:{}", room_name());
    let db = app.db.as_ref().unwrap().pool().await;
    sqlx::query("INSERT INTO channels (name, last_offset) VALUES ($1, 2)")
        .bind(&channel)
        .execute(&db)
        .await
        .unwrap();
    for (seq, data) in [
        (1i64, nested_text(300)),
        (2, r#"{"text":"after"}"#.to_owned()),
    ] {
        sqlx::query("INSERT INTO messages (channel, seq, id, sender, ts, data) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&channel)
            .bind(seq)
            .bind(format!("legacy-{seq}"))
            .bind(&alice.id)
            .bind(1_700_000_000_000i64)
            .bind(data)
            .execute(&db)
            .await
            .unwrap();
    }
    // Valid JSON text that no JSON value holds (a lone surrogate, a number beyond f64), through
    // the HTTP publish, which keeps the text as it is.
    let path = format!("/api/v1/channels/{channel}/messages");
    for data in [r#""\ud800""#, "1e400"] {
        let (status, body) = post_raw(
            &app,
            &path,
            &alice.access_token,
            format!("{{\"data\":{data}}}"),
        )
        .await;
        assert_eq!(status, 201, "{data}: {body}");
    }
    let mut ws = app.ws(&alice, Encoding::MsgPack).await;
    assert_eq!(subscribe(&mut ws, &channel, Some(0)).await["type"], "ack");
    let mut offsets = Vec::new();
    while offsets.len() < 4 {
        match next(&mut ws, PATIENCE).await {
            Got::Frame(f) if f["type"] == "message" => offsets.push(f["offset"].as_u64().unwrap()),
            Got::Frame(_) => {}
            other => panic!("after offsets {offsets:?}: {other:?}"),
        }
    }
    assert_eq!(offsets, [1, 2, 3, 4]);
    // And as a history page over the socket.
    let page = request(
        &mut ws,
        json!({"type": "history", "channel": channel}),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(4), "{page}");
    // HTTP history shows the stored data, not `null`.
    let resp = app
        .http
        .get(app.url(&format!("/api/v1/channels/{channel}/messages")))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains(&nested_text(300)), "history lost the payload");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F10: sockets outlive their access token.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_a_socket_on_an_expiring_token_is_warned_then_closed() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.access_ttl = std::time::Duration::from_secs(3)
    })
    .await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    let started = tokio::time::Instant::now();
    let warned = frame(next(&mut ws, Duration::from_secs(5)).await);
    assert_eq!(warned["type"], "token_expiring", "{warned}");
    assert!(
        warned["expires_in"].as_u64().is_some_and(|s| s <= 3),
        "{warned}"
    );
    // Not re-authenticated: closed once the token is no longer accepted anywhere (its expiry
    // plus the validation leeway), with the documented code.
    let closed = loop {
        match next(&mut ws, Duration::from_secs(15)).await {
            Got::Frame(_) => continue,
            other => break other,
        }
    };
    assert_eq!(closed, Got::Closed(Some(4002)));
    assert!(started.elapsed() < Duration::from_secs(15));
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_reauthenticating_in_band_keeps_the_socket() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.access_ttl = std::time::Duration::from_secs(4)
    })
    .await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, tokens) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": alice.refresh_token}),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let reply = request(
        &mut ws,
        json!({"type": "auth", "token": tokens["access_token"]}),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(reply["type"], "ack", "{reply}");
    // Past the first token's expiry and grace (4 + 5 s), the socket still answers.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let pong = request(&mut ws, json!({"type": "ping"}), &mut Vec::new()).await;
    assert_eq!(pong["type"], "ack", "{pong}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F12 and F26: secrets, files and configuration.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f12_a_short_stored_secret_is_refused_at_start() {
    for contents in ["", "\n", "   \n", "too-short-0123456789"] {
        let db = TestDb::new(Backend::Sqlite).await;
        std::fs::write(db.data_dir().join("secret"), contents).unwrap();
        let mut config = switchboard_tests::test_config(&db);
        config.secret = None;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = switchboard_server::run(listener, config, Default::default());
        let result = tokio::time::timeout(Duration::from_secs(10), run).await;
        let err = match result {
            Ok(Err(e)) => format!("{e:#}"),
            Ok(Ok(())) => panic!("started and stopped with secret {contents:?}"),
            Err(_) => panic!("started (and signs tokens) with secret {contents:?}"),
        };
        assert!(err.contains("secret"), "{err}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f26_generated_secret_data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = db.data_dir().join("fresh");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let app = TestApp::spawn_node(&db, |c| {
        c.secret = None;
        c.data_dir = dir.clone();
    })
    .await;
    let alice = app.user("alice").await;
    assert!(!alice.access_token.is_empty());
    assert_eq!(mode(&dir), 0o700, "data dir");
    assert_eq!(mode(&dir.join("secret")), 0o600, "secret");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("switchboard.db")
        {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    app.stop_node().await.unwrap();
    // No temporary file is left behind by the atomic write.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n == "secret" || n.starts_with("switchboard.db")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f26_configuration_that_would_panic_later_is_refused_at_start() {
    type Tweak = fn(&mut switchboard_server::config::Config);
    let tweaks: [(&str, Tweak); 3] = [
        ("history_max", |c| c.history_max = 0),
        ("store_batch", |c| c.store_batch = 0),
        ("max_frame_bytes", |c| c.max_frame_bytes = 0),
    ];
    for (what, tweak) in tweaks {
        let db = TestDb::new(Backend::Sqlite).await;
        let mut config = switchboard_tests::test_config(&db);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = switchboard_server::run(listener, config, Default::default());
        match tokio::time::timeout(Duration::from_secs(10), run).await {
            Ok(Err(e)) => assert!(
                format!("{e:#}")
                    .to_lowercase()
                    .contains(&what.replace('_', ""))
                    || format!("{e:#}").contains(what)
                    || format!("{e:#}").contains("SWITCHBOARD_"),
                "{what}: {e:#}"
            ),
            other => panic!("{what}: started anyway ({:?})", other.map(|r| r.is_ok())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// F15: refresh-reuse detection that anyone with a session id can trigger.

on_both_backends!(f15_a_forged_refresh_token_does_not_revoke_the_session);

async fn f15_a_forged_refresh_token_does_not_revoke_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let sid = alice.refresh_token.split_once('.').unwrap().0;
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": format!("{sid}.AAAA")}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        app.get("/api/v1/rooms", Some(&alice.access_token)).await.0,
        200,
        "the forged token revoked the session"
    );
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": alice.refresh_token}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await.unwrap();
}

on_both_backends!(f15_a_concurrent_or_retried_refresh_does_not_log_the_user_out);

async fn f15_a_concurrent_or_retried_refresh_does_not_log_the_user_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let body = json!({"refresh_token": alice.refresh_token});
    let (a, b) = tokio::join!(
        app.post("/api/v1/auth/refresh", None, body.clone()),
        app.post("/api/v1/auth/refresh", None, body.clone())
    );
    // A retry of the same token right after it was rotated (a lost response).
    let retried = app.post("/api/v1/auth/refresh", None, body.clone()).await;
    let answers = [a, b, retried];
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    assert!(!winners.is_empty(), "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 401, "{status} {body}");
    }
    // Whoever got tokens can use them: the session was not revoked.
    for won in winners {
        let access = won["access_token"].as_str().unwrap();
        assert_eq!(
            app.get("/api/v1/rooms", Some(access)).await.0,
            200,
            "{answers:?}"
        );
    }
    assert_eq!(
        app.get("/api/v1/rooms", Some(&alice.access_token)).await.0,
        200,
        "{answers:?}"
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F21: case-variant identities.

on_both_backends!(f21_usernames_and_room_names_are_unique_ignoring_case);

async fn f21_usernames_and_room_names_are_unique_ignoring_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let upper = alice.username.to_uppercase();
    let (status, body) = app.register(&upper, "correct horse battery").await;
    assert_eq!(status, 409, "{body}");
    // Lookups ignore case too, and keep the display case.
    let (status, body) = app.login(&upper, &alice.password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["username"], alice.username.as_str());
    let (status, body) = app
        .get(
            &format!("/api/v1/users?username={upper}"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let name = format!("Gen{}", room_name());
    let bob = app.user("bob").await;
    // Members are named in any case.
    let (status, body) = app
        .post(
            "/api/v1/rooms",
            Some(&alice.access_token),
            json!({"name": name, "private": false, "members": [bob.username.to_uppercase()]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["room"]["members"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    let mallory = app.user("mallory").await;
    let (status, body) = create_room(&app, &mallory, &name.to_lowercase(), true, &[]).await;
    assert_eq!(status, 409, "{body}");
    // The lookalike channel is not a second room either.
    let mut ws = app.ws(&mallory, Encoding::Json).await;
    let reply = publish(
        &mut ws,
        &format!("room:{}", name.to_lowercase()),
        json!({"t": "phish"}),
    )
    .await;
    assert_eq!(reply["type"], "error", "{reply}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F24: Origin details.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f24_origin_scheme_is_compared_and_a_malformed_origin_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let host = app.addr.to_string();
    let origins: [(&[u8], bool); 4] = [
        (format!("http://{host}").into_bytes().leak(), true),
        (format!("https://{host}").into_bytes().leak(), false),
        (b"http://\xff\xfe", false),
        (b"not an origin", false),
    ];
    for (origin, allowed) in origins {
        let mut request = app.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_bytes(origin).unwrap());
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {}", alice.access_token)).unwrap(),
        );
        let result = tokio_tungstenite::connect_async(request).await;
        assert_eq!(
            result.is_ok(),
            allowed,
            "Origin {:?}",
            String::from_utf8_lossy(origin)
        );
    }
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A close the server starts reaches the client (the TCP connection ends with a FIN, not a reset
// that makes the client report 1006 instead of the close code).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_close_after_an_oversized_frame_reaches_the_client() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        app.addr, alice.access_token
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // One masked text frame of 16 MiB, far over the 64 KiB limit: more than the kernel's socket
    // buffers hold, so the client is still sending when the server refuses it.
    let len: u64 = 16 << 20;
    let mut wire = vec![0x81u8, 0x80 | 127];
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(&[1, 2, 3, 4]);
    wire.extend(std::iter::repeat_n(b'a' ^ 1, len as usize));
    let written = tcp.write_all(&wire).await;
    assert!(
        written.is_ok(),
        "the server reset the connection while the client was sending: {written:?}"
    );
    let mut got = Vec::new();
    let ended = loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(PATIENCE, tcp.read(&mut buf)).await {
            Err(_) => panic!("the server never closed the connection"),
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break Err(e),
        }
    };
    assert!(
        ended.is_ok(),
        "connection reset instead of closed: {ended:?}"
    );
    // The close frame: 0x88, length, code 1009.
    assert!(got.len() >= 4 && got[0] == 0x88, "{got:?}");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 1009);
    app.stop().await.unwrap();
}

on_both_backends!(f21_a_database_with_case_variant_names_refuses_to_start);

/// Data from before names were unique ignoring case: the server refuses to start and names the
/// conflicts, instead of failing inside the migration.
async fn f21_a_database_with_case_variant_names_refuses_to_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("carol").await;
    let db = app.stop().await.unwrap();
    {
        // Undo what the migration enforces, as on a database that never ran it.
        let pool = db.pool().await;
        for sql in [
            "DELETE FROM _sqlx_migrations WHERE version = 3",
            "DROP INDEX users_username_nocase",
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ('x1', 'Dup_Name', 'h', 0)",
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ('x2', 'dup_name', 'h', 0)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let config = switchboard_tests::test_config(&db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = switchboard_server::run(listener, config, Default::default());
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Err(e)) => {
            let e = format!("{e:#}");
            assert!(e.contains("Dup_Name") && e.contains("dup_name"), "{e}");
            assert!(e.contains("ignoring case"), "{e}");
        }
        other => panic!("started anyway ({:?})", other.map(|r| r.is_ok())),
    }
}

// ---------------------------------------------------------------------------------------------
// F11: one IP locking out accounts it does not own.

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8 address is on loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, http: &reqwest::Client, username: &str, password: &str) -> u16 {
    http.post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f11_a_throttled_ip_cannot_lock_out_other_accounts() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.login_per_ip_per_min = switchboard_tests::nz(5)
    })
    .await;
    let alice = app.user("alice").await;
    let attacker = client_from("127.0.0.2");
    // The attacker spends their own IP's budget...
    for i in 0..5 {
        assert_eq!(
            login_from(&app, &attacker, &format!("nobody{i}"), "guess-guess").await,
            401
        );
    }
    // ...and is throttled from then on, whoever they aim at.
    for _ in 0..15 {
        assert_eq!(
            login_from(&app, &attacker, &alice.username, "guess-guess").await,
            429
        );
    }
    // Names that cannot exist are not limiter keys (and cost no hash): refused all the same.
    let huge = "a".repeat(100_000);
    assert_eq!(login_from(&app, &attacker, &huge, "guess-guess").await, 429);
    // Alice, from elsewhere, with her password: in.
    let elsewhere = client_from("127.0.0.3");
    assert_eq!(
        login_from(&app, &elsewhere, &alice.username, &alice.password).await,
        200
    );
    // A malformed name from an IP with budget left gets the plain 401.
    assert_eq!(
        login_from(&app, &elsewhere, &huge, "guess-guess").await,
        401
    );
    app.stop().await.unwrap();
}
