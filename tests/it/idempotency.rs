//! Idempotent publish: a retry with the same `idempotency_key` by the same publisher on the same
//! channel is stored once and answered with the first offset, over WebSocket and HTTP alike,
//! across a restart and across nodes; a reuse for different data is refused.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_protocol::{ClientFrame, ErrorCode};
use switchboard_server::store::messages::{Appended, NewMessage};
use switchboard_server::store::Store;
use switchboard_tests::client::WsClient;
use switchboard_tests::{Backend, Encoding, TestApp, TestDb};

async fn publish_keyed(
    ws: &mut WsClient,
    channel: &str,
    data: Value,
    key: &str,
) -> Result<u64, switchboard_protocol::ErrorFrame> {
    let id = ws.id();
    ws.request(
        ClientFrame::Publish {
            id,
            channel: channel.into(),
            data,
            idempotency_key: Some(key.into()),
        },
        &mut Vec::new(),
    )
    .await
    .map(|a| a.offset.expect("publish ack carries offset"))
}

async fn post_keyed(
    app: &TestApp,
    token: &str,
    channel: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/v1/channels/{channel}/messages")))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn history(app: &TestApp, token: &str, channel: &str) -> Vec<(u64, Value)> {
    let (status, body) = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?limit=200"),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["offset"].as_u64().unwrap(), m["data"].clone()))
        .collect()
}

on_both_backends!(a_retried_publish_is_stored_once_and_acked_with_the_first_offset);

async fn a_retried_publish_is_stored_once_and_acked_with_the_first_offset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    let mut watcher = app.ws(&bob, Encoding::MsgPack).await;
    watcher.subscribe("room:idem", None).await.unwrap();

    let first = publish_keyed(&mut ws, "room:idem", json!({"n": 1}), "k-1")
        .await
        .unwrap();
    let again = publish_keyed(&mut ws, "room:idem", json!({"n": 1}), "k-1")
        .await
        .unwrap();
    assert_eq!((first, again), (1, 1), "the retry answers the first offset");
    // Over HTTP, by the header or the body's field, it is the same publish too.
    let token = alice.access_token.as_str();
    let (status, body) = post_keyed(
        &app,
        token,
        "room:idem",
        json!({"data": {"n": 1}}),
        Some("k-1"),
    )
    .await;
    assert_eq!((status, body["offset"].as_u64()), (201, Some(1)), "{body}");
    let (status, body) = post_keyed(
        &app,
        token,
        "room:idem",
        json!({"data": {"n": 1}, "idempotency_key": "k-1"}),
        None,
    )
    .await;
    assert_eq!((status, body["offset"].as_u64()), (201, Some(1)), "{body}");

    // Other keys, no key, and the same key on another channel or by another user are new.
    assert_eq!(
        publish_keyed(&mut ws, "room:idem", json!({"n": 2}), "k-2")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ws.publish("room:idem", json!({"n": 3}), &mut Vec::new())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        publish_keyed(&mut ws, "room:other", json!({"n": 1}), "k-1")
            .await
            .unwrap(),
        1
    );
    let mut bobs = app.ws(&bob, Encoding::Json).await;
    assert_eq!(
        publish_keyed(&mut bobs, "room:idem", json!({"n": 1}), "k-1")
            .await
            .unwrap(),
        4
    );

    let seen: Vec<u64> = watcher.messages(4).await.iter().map(|m| m.offset).collect();
    assert_eq!(
        seen,
        vec![1, 2, 3, 4],
        "subscribers get each stored message once"
    );
    watcher.assert_no_message(Duration::from_millis(300)).await;
    assert_eq!(
        history(&app, token, "room:idem").await,
        vec![
            (1, json!({"n": 1})),
            (2, json!({"n": 2})),
            (3, json!({"n": 3})),
            (4, json!({"n": 1})),
        ]
    );
}

on_both_backends!(a_key_reused_for_different_data_is_refused_and_stores_nothing);

async fn a_key_reused_for_different_data_is_refused_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    assert_eq!(
        publish_keyed(&mut ws, "room:reuse", json!("one"), "same")
            .await
            .unwrap(),
        1
    );
    let refused = publish_keyed(&mut ws, "room:reuse", json!("two"), "same")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::BadRequest, "{refused:?}");
    assert!(
        refused.message.contains("idempotency key"),
        "{}",
        refused.message
    );
    let token = alice.access_token.as_str();
    let (status, body) = post_keyed(
        &app,
        token,
        "room:reuse",
        json!({"data": "three"}),
        Some("same"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(
        history(&app, token, "room:reuse").await,
        vec![(1, json!("one"))]
    );
    // The offset the refusal did not use is not a hole: the next publish is 2.
    assert_eq!(
        ws.publish("room:reuse", json!("next"), &mut Vec::new())
            .await
            .unwrap(),
        2
    );
}

on_both_backends!(malformed_keys_are_refused);

async fn malformed_keys_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    let long = "k".repeat(65);
    for key in ["", long.as_str(), "has space", "naïve"] {
        let e = publish_keyed(&mut ws, "room:keys", json!(1), key)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "key {key:?}");
        let (status, _) = post_keyed(
            &app,
            &alice.access_token,
            "room:keys",
            json!({"data": 1, "idempotency_key": key}),
            None,
        )
        .await;
        assert_eq!(status, 422, "key {key:?}");
    }
    let (status, body) = post_keyed(
        &app,
        &alice.access_token,
        "room:keys",
        json!({"data": 1, "idempotency_key": "a"}),
        Some("b"),
    )
    .await;
    assert_eq!(status, 422, "header and body disagree: {body}");
    let sixty_four = "k".repeat(64);
    assert_eq!(
        publish_keyed(&mut ws, "room:keys", json!(1), &sixty_four)
            .await
            .unwrap(),
        1
    );
}

on_both_backends!(a_retry_after_a_restart_finds_the_first_publish);

async fn a_retry_after_a_restart_finds_the_first_publish(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    assert_eq!(
        publish_keyed(&mut ws, "room:restart", json!({"n": 1}), "before")
            .await
            .unwrap(),
        1
    );
    drop(ws);
    let db = app.stop().await.unwrap();
    let app = TestApp::spawn_on(db, |_| {}).await;
    let (_, login) = app.login(&alice.username, &alice.password).await;
    let token = login["access_token"]
        .as_str()
        .expect("logged in again")
        .to_owned();
    let (status, body) = post_keyed(
        &app,
        &token,
        "room:restart",
        json!({"data": {"n": 1}}),
        Some("before"),
    )
    .await;
    assert_eq!((status, body["offset"].as_u64()), (201, Some(1)), "{body}");
    assert_eq!(history(&app, &token, "room:restart").await.len(), 1);
}

#[tokio::test]
async fn the_same_key_through_two_nodes_at_once_is_stored_once() {
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let alice = nodes[0].user("alice").await;
    let mut clients = Vec::new();
    for node in &nodes {
        for _ in 0..3 {
            clients.push(node.ws(&alice, Encoding::Json).await);
        }
    }
    for round in 0..20 {
        let key = format!("race-{round}");
        let attempts = clients.iter_mut().map(|ws| {
            let key = key.clone();
            async move { publish_keyed(ws, "room:race", json!({ "round": round }), &key).await }
        });
        let offsets: Vec<u64> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.expect("every attempt is acked"))
            .collect();
        assert!(
            offsets.iter().all(|&o| o == round + 1),
            "round {round}: six attempts through two nodes, one offset: {offsets:?}"
        );
    }
    let stored = history(&nodes[1], &alice.access_token, "room:race").await;
    assert_eq!(stored.len(), 20, "stored once per key");
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, (o, _))| *o == i as u64 + 1),
        "gapless"
    );
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

fn keyed(channel: &str, from: &str, key: &str, n: u64) -> NewMessage {
    NewMessage {
        channel: Arc::from(channel),
        id: uuid::Uuid::now_v7().to_string(),
        from: from.into(),
        ts_ms: 1_700_000_000_000,
        data: serde_json::value::to_raw_value(&json!({ "n": n })).unwrap(),
        published_at: None,
        notification: None,
        idempotency_key: Some(key.into()),
        effect: None,
    }
}

on_both_backends!(one_batch_with_repeats_and_reuses_stays_gapless);

/// The storage layer on its own: a batch holding a repeat of an earlier batch, a repeat of its
/// own earlier message and a reuse for different data stores only the new ones, gaplessly.
async fn one_batch_with_repeats_and_reuses_stays_gapless(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(db.url().as_deref(), &db.data_dir(), 4)
        .await
        .unwrap();
    let first = store
        .append(&mut [keyed("room:b", "u", "a", 1)])
        .await
        .unwrap();
    assert_eq!(first, vec![Appended::Stored(1)]);
    let mut batch = [
        keyed("room:b", "u", "a", 1), // a repeat of the first batch
        keyed("room:b", "u", "b", 2), // new
        keyed("room:c", "u", "a", 1), // new: another channel
        keyed("room:b", "u", "b", 2), // a repeat within this batch
        keyed("room:b", "u", "a", 9), // key a, different data
        keyed("room:b", "v", "a", 1), // new: another sender
    ];
    let outcomes = store.append(&mut batch).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            Appended::Repeat(1),
            Appended::Stored(2),
            Appended::Stored(1),
            Appended::Repeat(2),
            Appended::KeyReused,
            Appended::Stored(3),
        ]
    );
    assert_eq!(
        store.last_offset("room:b").await.unwrap(),
        3,
        "the repeats' offsets were given back"
    );
    let next = store
        .append(&mut [keyed("room:b", "u", "z", 1)])
        .await
        .unwrap();
    assert_eq!(next, vec![Appended::Stored(4)]);
    let name: Arc<str> = "room:b".into();
    let page = store
        .messages_after(&name, 0, 100, usize::MAX)
        .await
        .unwrap();
    let offsets: Vec<u64> = page.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, vec![1, 2, 3, 4]);
}
