//! Presence in rooms: join/leave events (a user with several connections counts once), pages of
//! online users, across nodes, and a crashed node's users leaving within the documented bound.

use std::time::Duration;

use switchboard_protocol::{ClientFrame, PresencePage, ServerFrame, UserInfo};
use switchboard_tests::process::ServerProcess;
use switchboard_tests::{redis_url, Backend, Encoding, TestApp, WsClient, SECRET};

/// Waits for the next join/leave frame on `ws` (skipping others).
async fn next_presence_event(ws: &mut WsClient, within: Duration) -> Option<ServerFrame> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next(left).await {
            Ok(f @ (ServerFrame::Join { .. } | ServerFrame::Leave { .. })) => return Some(f),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

async fn page(ws: &mut WsClient, channel: &str) -> PresencePage {
    let id = ws.id();
    let frame = ClientFrame::Presence {
        id,
        channel: channel.into(),
        cursor: None,
        limit: None,
    };
    ws.request(frame, &mut Vec::new())
        .await
        .unwrap()
        .presence
        .expect("presence page")
}

fn ids(page: &PresencePage) -> Vec<String> {
    let mut ids: Vec<String> = page.users.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn users_join_once_and_leave_once_with_several_connections() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = "room:presence";
    let mut a = app.ws(&alice, Encoding::Json).await;
    a.subscribe(room, None).await.unwrap();
    // Subscribers hear every arrival, their own included.
    let alice_info = UserInfo {
        id: alice.id.clone(),
        username: alice.username.clone(),
    };
    assert_eq!(
        next_presence_event(&mut a, Duration::from_secs(5)).await,
        Some(ServerFrame::Join {
            channel: room.into(),
            user: alice_info
        })
    );
    let mut b1 = app.ws(&bob, Encoding::MsgPack).await;
    b1.subscribe(room, None).await.unwrap();
    let bob_info = UserInfo {
        id: bob.id.clone(),
        username: bob.username.clone(),
    };
    assert_eq!(
        next_presence_event(&mut a, Duration::from_secs(5)).await,
        Some(ServerFrame::Join {
            channel: room.into(),
            user: bob_info.clone()
        })
    );
    // A second connection of the same user is not a second arrival.
    let mut b2 = app.ws(&bob, Encoding::Json).await;
    b2.subscribe(room, None).await.unwrap();
    assert_eq!(
        next_presence_event(&mut a, Duration::from_millis(300)).await,
        None
    );

    let p = page(&mut a, room).await;
    assert_eq!(p.count, 2);
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(ids(&p), expected);

    // Bob leaves only when his last connection goes.
    drop(b1);
    assert_eq!(
        next_presence_event(&mut a, Duration::from_millis(300)).await,
        None
    );
    let id = b2.id();
    b2.request(
        ClientFrame::Unsubscribe {
            id,
            channel: room.into(),
        },
        &mut Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        next_presence_event(&mut a, Duration::from_secs(5)).await,
        Some(ServerFrame::Leave {
            channel: room.into(),
            user: bob_info
        })
    );
    assert_eq!(page(&mut a, room).await.count, 1);
    // Presence is for rooms, and private rooms keep it private.
    let id = a.id();
    let err = a
        .request(
            ClientFrame::Presence {
                id,
                channel: format!("user:{}", alice.id),
                cursor: None,
                limit: None,
            },
            &mut Vec::new(),
        )
        .await;
    assert!(err.is_err());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn large_rooms_report_counts_without_events() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.presence_events_max = 2).await;
    let room = "room:big";
    let first = app.user("u").await;
    let mut watcher = app.ws(&first, Encoding::Json).await;
    watcher.subscribe(room, None).await.unwrap();
    let mut others = Vec::new();
    for _ in 0..3 {
        let u = app.user("u").await;
        let mut ws = app.ws(&u, Encoding::Json).await;
        ws.subscribe(room, None).await.unwrap();
        others.push(ws);
    }
    // Only the arrivals up to 2 online (the watcher's own, then one more) were announced; beyond
    // the threshold, silence.
    for _ in 0..2 {
        assert!(matches!(
            next_presence_event(&mut watcher, Duration::from_secs(2)).await,
            Some(ServerFrame::Join { .. })
        ));
    }
    assert_eq!(
        next_presence_event(&mut watcher, Duration::from_millis(300)).await,
        None
    );
    assert_eq!(page(&mut watcher, room).await.count, 4);
    app.stop().await.unwrap();
}

/// Keys under `prefix` (this test's own) that have no expiry.
async fn persistent_keys(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(switchboard_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "no presence keys under {prefix}");
    let mut persistent = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if ttl == -1 {
            persistent.push(key);
        }
    }
    persistent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_a_crashed_nodes_users_leave() {
    let (db, nodes) = TestApp::spawn_cluster(1, |_| {}).await;
    let room = "room:everywhere";
    let (alice, bob) = (nodes[0].user("alice").await, nodes[0].user("bob").await);
    let mut a = nodes[0].ws(&alice, Encoding::Json).await;
    a.subscribe(room, None).await.unwrap();
    assert!(
        matches!(next_presence_event(&mut a, Duration::from_secs(5)).await, Some(ServerFrame::Join { user, .. }) if user.id == alice.id)
    );

    // Bob connects to a second node, a separate process we can kill -9.
    let prefix = nodes[0].redis_prefix.clone();
    let data = tempfile::tempdir().unwrap();
    let crashing = ServerProcess::spawn(&[
        ("DATABASE_URL", db.url().unwrap()),
        ("REDIS_URL", redis_url()),
        ("SWITCHBOARD_REDIS_PREFIX", prefix),
        ("SWITCHBOARD_SECRET", SECRET.to_owned()),
        ("SWITCHBOARD_DATA_DIR", data.path().display().to_string()),
    ]);
    let mut b = WsClient::connect(
        &format!("ws://{}/ws", crashing.addr),
        Encoding::MsgPack,
        Some(&bob.access_token),
    )
    .await
    .unwrap();
    b.subscribe(room, None).await.unwrap();
    let bob_info = UserInfo {
        id: bob.id.clone(),
        username: bob.username.clone(),
    };
    assert_eq!(
        next_presence_event(&mut a, Duration::from_secs(5)).await,
        Some(ServerFrame::Join {
            channel: room.into(),
            user: bob_info.clone()
        })
    );
    let p = page(&mut b, room).await;
    assert_eq!(p.count, 2, "the other node sees both users: {p:?}");
    // Nothing presence writes may outlive its claims: a release lost to a crash or a Redis
    // timeout must not leave keys behind for good.
    let keys = persistent_keys(&nodes[0].redis_prefix).await;
    assert!(keys.is_empty(), "presence keys without an expiry: {keys:?}");

    crashing.signal("KILL");
    // Documented bound: PRESENCE_TTL (15 s) + one sweep interval (5 s); 5 s of slack for a
    // loaded machine.
    assert_eq!(
        next_presence_event(&mut a, Duration::from_secs(25)).await,
        Some(ServerFrame::Leave {
            channel: room.into(),
            user: bob_info
        })
    );
    assert_eq!(page(&mut a, room).await.count, 1);
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}
