//! Several nodes on one PostgreSQL and one Redis: cross-node delivery in both encodings, the same
//! order everywhere under concurrent publishers, repair after the bus drops messages.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::{ClientFrame, MessageFrame};
use switchboard_tests::{test_config, Backend, Encoding, TestApp, TestDb, WsClient};

/// Publishes `n` messages `{"node": k, "seq": i}` through one connection, pipelined, and returns
/// the acked offsets.
async fn publish_from(
    url: String,
    token: String,
    channel: &'static str,
    node: usize,
    n: u64,
) -> Vec<u64> {
    let mut ws = WsClient::connect(&url, Encoding::Json, None).await.unwrap();
    ws.auth(&token).await;
    let mut acked = Vec::new();
    for seq in 1..=n {
        acked.push(
            ws.publish(
                channel,
                json!({ "node": node, "seq": seq }),
                &mut Vec::new(),
            )
            .await
            .unwrap(),
        );
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_three_nodes_give_every_subscriber_the_same_sequence() {
    const PER_NODE: u64 = 100;
    let (_db, nodes) = TestApp::spawn_cluster(3, |_| {}).await;
    let channel = "room:cluster";
    let reader = nodes[0].user("reader").await;
    // Users live in the shared database: a token from one node works on every node.
    let mut subscribers = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        let encoding = if k % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::MsgPack
        };
        let mut ws = node.ws(&reader, encoding).await;
        ws.subscribe(channel, None).await.unwrap();
        subscribers.push(ws);
    }
    let mut publishing = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        let p = node.user("pub").await;
        publishing.push(tokio::spawn(publish_from(
            node.ws_url(),
            p.access_token,
            channel,
            k,
            PER_NODE,
        )));
    }
    let mut acked = Vec::new();
    for p in publishing {
        acked.extend(p.await.unwrap());
    }
    let total = PER_NODE * nodes.len() as u64;
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=total).collect::<Vec<_>>(),
        "offsets gapless across nodes"
    );

    let mut reference: Option<Vec<MessageFrame>> = None;
    for ws in &mut subscribers {
        let got = ws.messages(total as usize).await;
        assert_eq!(
            got.iter().map(|m| m.offset).collect::<Vec<_>>(),
            (1..=total).collect::<Vec<_>>()
        );
        ws.assert_no_message(Duration::from_millis(200)).await;
        match &reference {
            None => reference = Some(got),
            Some(all) => assert_eq!(all, &got, "identical sequence on every node"),
        }
    }
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bus_connection_is_repaired_from_storage() {
    const N: u64 = 300;
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let channel = "room:repair";
    let (reader, writer) = (nodes[0].user("reader").await, nodes[1].user("writer").await);
    let mut ws = nodes[0].ws(&reader, Encoding::Json).await;
    ws.subscribe(channel, None).await.unwrap();

    let publishing = tokio::spawn(publish_from(
        nodes[1].ws_url(),
        writer.access_token.clone(),
        channel,
        1,
        N,
    ));
    // Cut every pub/sub connection on the Redis server mid-stream (other tests' nodes too: they
    // must survive it as well). Messages published meanwhile are lost on the bus.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let out = std::process::Command::new("redis-cli")
            .args(["CLIENT", "KILL", "TYPE", "pubsub"])
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli failed: {out:?}");
    }
    let acked = publishing.await.unwrap();
    assert_eq!(acked, (1..=N).collect::<Vec<_>>());
    let got = ws.messages(N as usize).await;
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>(),
        "no loss, no duplicate, in order"
    );
    ws.assert_no_message(Duration::from_millis(200)).await;
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test]
async fn several_nodes_on_sqlite_are_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = test_config(&db);
    config.redis_url = Some(switchboard_tests::redis_url());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = switchboard_server::run(listener, config, Default::default())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("postgres"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_since_work_from_any_node() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let alice = nodes[0].user("alice").await;
    let mut a = nodes[0].ws(&alice, Encoding::MsgPack).await;
    for i in 1..=5 {
        a.publish("room:anywhere", json!(i), &mut Vec::new())
            .await
            .unwrap();
    }
    let mut b = nodes[1].ws(&alice, Encoding::Json).await;
    b.subscribe("room:anywhere", Some(2)).await.unwrap();
    let got = b.messages(3).await;
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let id = b.id();
    let ack = b
        .request(
            ClientFrame::History {
                id,
                channel: "room:anywhere".into(),
                before: None,
                limit: Some(2),
            },
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        ack.messages
            .unwrap()
            .iter()
            .map(|m| m.offset)
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
    a.publish("room:anywhere", json!(6), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(b.messages(1).await[0].offset, 6);
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_node_closes_the_session_everywhere() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let alice = nodes[0].user("alice").await;
    let mut on_b = nodes[1].ws(&alice, Encoding::Json).await;
    on_b.subscribe("room:x", None).await.unwrap();
    assert_eq!(nodes[0].logout(&alice.access_token).await, 204);
    assert_eq!(
        on_b.closed().await,
        Some(switchboard_protocol::close::SESSION_REVOKED)
    );
    // The other node refuses the token from now on, over HTTP and WebSocket.
    assert_eq!(
        nodes[1]
            .get("/api/v1/rooms", Some(&alice.access_token))
            .await
            .0,
        401
    );
    assert!(WsClient::connect(
        &nodes[1].ws_url(),
        Encoding::Json,
        Some(&alice.access_token)
    )
    .await
    .is_err());
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_stream_loses_nothing() {
    const N: u64 = 300;
    let mut redis = switchboard_tests::process::PrivateRedis::start();
    let url = redis.url();
    let (_db, nodes) = TestApp::spawn_cluster(2, |c| c.redis_url = Some(url.clone())).await;
    let channel = "room:restart";
    let (reader, writer) = (nodes[0].user("reader").await, nodes[1].user("writer").await);
    let mut ws = nodes[0].ws(&reader, Encoding::MsgPack).await;
    ws.subscribe(channel, None).await.unwrap();

    let publishing = tokio::spawn(publish_from(
        nodes[1].ws_url(),
        writer.access_token.clone(),
        channel,
        1,
        N,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| redis.restart(Duration::from_millis(400)));
    let acked = publishing.await.unwrap();
    assert_eq!(
        acked,
        (1..=N).collect::<Vec<_>>(),
        "publishing carried on through the outage"
    );
    let got = ws.messages(N as usize).await;
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    ws.assert_no_message(Duration::from_millis(200)).await;
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_sharded_fan_out_across_slots_survives_lost_connections() {
    const PER_ROOM: u64 = 60;
    let cluster = switchboard_tests::process::RedisCluster::start();
    let url = cluster.url();
    let (_db, nodes) = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(url.clone());
        c.redis_cluster = true;
    })
    .await;
    let (reader, writer) = (nodes[0].user("reader").await, nodes[1].user("writer").await);
    // Five rooms: their channels hash to different slots, so to different shards.
    let rooms: Vec<String> = (0..5).map(|i| format!("room:shard{i}")).collect();
    let mut subscribers = Vec::new();
    for room in &rooms {
        let mut ws = nodes[0].ws(&reader, Encoding::MsgPack).await;
        ws.subscribe(room, None).await.unwrap();
        subscribers.push(ws);
    }
    let mut pubs = nodes[1].ws(&writer, Encoding::Json).await;
    for seq in 1..=PER_ROOM {
        for room in &rooms {
            pubs.publish(room, json!({ "seq": seq }), &mut Vec::new())
                .await
                .unwrap();
        }
        if seq == PER_ROOM / 2 {
            tokio::task::block_in_place(|| cluster.kill_pubsub_clients());
        }
    }
    for (room, ws) in rooms.iter().zip(&mut subscribers) {
        let got = ws.messages(PER_ROOM as usize).await;
        assert_eq!(
            got.iter().map(|m| m.offset).collect::<Vec<_>>(),
            (1..=PER_ROOM).collect::<Vec<_>>(),
            "{room}"
        );
        ws.assert_no_message(Duration::from_millis(100)).await;
    }
    // Presence runs on the cluster too (its keys share a slot per room).
    let id = subscribers[0].id();
    let page = subscribers[0]
        .request(
            ClientFrame::Presence {
                id,
                channel: rooms[0].clone(),
                cursor: None,
                limit: None,
            },
            &mut Vec::new(),
        )
        .await
        .unwrap()
        .presence
        .unwrap();
    assert_eq!(page.count, 1);
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

/// F25: the bus works over a Redis that wants a password and speaks only TLS (`rediss://`, the
/// CA trusted through `SSL_CERT_FILE`), and a wrong password is refused at start, not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_runs_over_redis_with_a_password_and_tls() {
    let redis = switchboard_tests::process::SecureRedis::start();
    // Only this test talks TLS; rustls reads the variable when it builds a client.
    std::env::set_var("SSL_CERT_FILE", &redis.ca_file);
    let db = TestDb::new(Backend::Postgres).await;
    let mut config = test_config(&db);
    config.redis_url = Some(format!("rediss://:wrong@127.0.0.1:{}", redis.port));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        switchboard_server::run_with(listener, None, config, Default::default()),
    )
    .await
    .expect("a wrong Redis password fails the start in time");
    let refused = format!(
        "{:#}",
        refused.expect_err("a wrong Redis password must fail the start")
    );
    assert!(
        refused.contains("AuthenticationFailed") || refused.contains("WRONGPASS"),
        "refused for the password, over TLS: {refused}"
    );

    let url = redis.url();
    let (_db, nodes) = TestApp::spawn_cluster(2, |c| c.redis_url = Some(url.clone())).await;
    let (reader, writer) = (nodes[0].user("reader").await, nodes[1].user("writer").await);
    let mut ws = nodes[0].ws(&reader, Encoding::Json).await;
    ws.subscribe("room:tls", None).await.unwrap();
    let mut pubs = nodes[1].ws(&writer, Encoding::Json).await;
    for seq in 1..=20 {
        pubs.publish("room:tls", json!({ "seq": seq }), &mut Vec::new())
            .await
            .unwrap();
    }
    let got = ws.messages(20).await;
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

/// F14: while Redis is down, what waits to go out to it is bounded in bytes; past the bound
/// messages go to storage only, and a subscriber on another node still gets every one, in
/// order, once Redis is back (its node re-reads the channel from storage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_past_the_bus_backlog_loses_nothing() {
    const N: u64 = 120;
    let mut redis = switchboard_tests::process::PrivateRedis::start();
    let url = redis.url();
    let (_db, nodes) = TestApp::spawn_cluster(2, |c| {
        c.redis_url = Some(url.clone());
        c.bus_backlog_bytes = 64 * 1024;
    })
    .await;
    let channel = "room:outage";
    let (reader, writer) = (nodes[0].user("reader").await, nodes[1].user("writer").await);
    let mut ws = nodes[0].ws(&reader, Encoding::Json).await;
    ws.subscribe(channel, None).await.unwrap();
    let dropped = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("switchboard_bus_dropped_total"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = nodes[1].admin_url("/metrics");
    let before = dropped(
        &nodes[1]
            .http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    // 120 messages of 4 KB (480 KB, far past the 64 KiB backlog) published while Redis is down.
    let mut pubs = nodes[1].ws(&writer, Encoding::Json).await;
    let publishing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let filler = "x".repeat(4000);
        let mut acked = Vec::new();
        for seq in 1..=N {
            let data = json!({ "seq": seq, "filler": filler });
            acked.push(pubs.publish(channel, data, &mut Vec::new()).await.unwrap());
        }
        acked
    });
    tokio::task::block_in_place(|| redis.restart(Duration::from_millis(2500)));
    let acked = publishing.await.unwrap();
    assert_eq!(
        acked,
        (1..=N).collect::<Vec<_>>(),
        "publishing went on (acks mean stored)"
    );
    let after = dropped(
        &nodes[1]
            .http
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        after > before,
        "the backlog bound was reached ({before} → {after})"
    );
    let got = ws.messages(N as usize).await;
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    ws.assert_no_message(Duration::from_millis(200)).await;
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}
