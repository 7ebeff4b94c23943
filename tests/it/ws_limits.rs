//! Bad input and overload on a connection: malformed and oversized frames, rate and subscription
//! limits, slow consumers, idle timeouts and pings, and the per-user HTTP write budget.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use switchboard_protocol::{close, ClientFrame, ErrorCode, ServerFrame};
use switchboard_tests::client::Ended;
use switchboard_tests::{Backend, Encoding, TestApp};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_frames_get_errors_and_the_connection_stays_usable() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;

    ws.send_raw(Message::Text("this is not json".into())).await;
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!((e.id, e.code), (None, ErrorCode::BadRequest));

    ws.send_raw(Message::Text(r#"{"type":"launch","id":7}"#.into()))
        .await;
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!((e.id, e.code), (Some(7), ErrorCode::BadRequest));

    ws.send_raw(Message::Text(
        r#"{"type":"publish","id":8,"channel":"room:x"}"#.into(),
    ))
    .await;
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!((e.id, e.code), (Some(8), ErrorCode::BadRequest));

    let id = ws.id();
    let err = ws
        .request(
            ClientFrame::Subscribe {
                id,
                channel: "nowhere".into(),
                since: None,
            },
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    ws.send_raw(Message::Binary(vec![0xc1, 0xff, 0x00].into()))
        .await;
    let ServerFrame::Error(e) = ws.recv().await else {
        panic!("expected an error frame")
    };
    assert_eq!(e.code, ErrorCode::BadRequest);

    // Still usable.
    let id = ws.id();
    assert_eq!(
        ws.request(ClientFrame::Ping { id }, &mut Vec::new())
            .await
            .unwrap()
            .id,
        id
    );
    assert_eq!(
        ws.publish("room:x", json!(1), &mut Vec::new())
            .await
            .unwrap(),
        1
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.max_frame_bytes = 2048).await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    // Just under the limit passes; the payload limit applies to HTTP publishes as well.
    assert!(ws
        .publish("room:big", json!("x".repeat(1800)), &mut Vec::new())
        .await
        .is_ok());
    let (status, body) = app
        .post(
            "/api/v1/channels/room:big/messages",
            Some(&alice.access_token),
            json!({"data": "x".repeat(4000)}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    ws.send(&ClientFrame::Publish {
        id: 1,
        channel: "room:big".into(),
        data: json!("x".repeat(4000)),
        idempotency_key: None,
    })
    .await;
    assert_eq!(ws.closed().await, Some(close::TOO_BIG));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn publish_rate_and_subscription_limits_answer_with_errors() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.publish_rate = switchboard_tests::nz(2);
        c.publish_burst = switchboard_tests::nz(5);
        c.max_subscriptions = 2;
    })
    .await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    for id in 1..=20 {
        ws.send(&ClientFrame::Publish {
            id,
            channel: "room:rate".into(),
            data: json!(id),
            idempotency_key: None,
        })
        .await;
    }
    let (mut acks, mut limited) = (0, 0);
    while acks + limited < 20 {
        match ws.recv().await {
            ServerFrame::Ack(_) => acks += 1,
            ServerFrame::Error(e) if e.code == ErrorCode::RateLimited => limited += 1,
            ServerFrame::Error(e) => panic!("unexpected error {e:?}"),
            _ => {}
        }
    }
    assert!(
        (5..=7).contains(&acks),
        "burst of 5 (plus refill) allowed, got {acks}"
    );
    assert_eq!(acks + limited, 20);

    ws.subscribe("room:a", None).await.unwrap();
    ws.subscribe("room:b", None).await.unwrap();
    assert_eq!(
        ws.subscribe("room:c", None).await.unwrap_err().code,
        ErrorCode::TooLarge
    );
    // Re-subscribing to a channel already held does not count twice.
    ws.subscribe("room:a", None).await.unwrap();
    app.stop().await.unwrap();
}

on_both_backends!(a_slow_consumer_is_cut_off_without_slowing_the_others);

async fn a_slow_consumer_is_cut_off_without_slowing_the_others(backend: Backend) {
    const N: usize = 4000;
    let app = TestApp::spawn_with(backend, |c| {
        c.outbound_queue_bytes = 2 * 1024 * 1024;
        c.publish_rate = switchboard_tests::nz(100_000);
        c.publish_burst = switchboard_tests::nz(100_000);
        c.user_publish_rate = switchboard_tests::nz(100_000);
        c.user_publish_burst = switchboard_tests::nz(100_000);
    })
    .await;
    let (p, slow_user, fast_user) = (
        app.user("pub").await,
        app.user("slow").await,
        app.user("fast").await,
    );
    let mut slow = app.ws(&slow_user, Encoding::Json).await;
    slow.subscribe("room:flood", None).await.unwrap();
    let mut fast = app.ws(&fast_user, Encoding::Json).await;
    fast.subscribe("room:flood", None).await.unwrap();

    let reader = tokio::spawn(async move { fast.messages(N).await });
    // 4000 × 8 KiB = 31 MiB: far more than loopback socket buffers (a few MiB each way) and the
    // 2 MiB queue hold, so the never-reading client must overflow. Published in steps, so that
    // a reader sharing this (debug, loaded) test process is not itself outrun by the bursts.
    let mut ws = app.ws(&p, Encoding::Json).await;
    let payload = "y".repeat(8 * 1024);
    for id in 0..N as i64 {
        ws.send(&ClientFrame::Publish {
            id,
            channel: "room:flood".into(),
            data: json!(payload),
            idempotency_key: None,
        })
        .await;
        if id % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let got = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast reader kept up")
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (1..=N as u64).collect::<Vec<_>>()
    );

    // The slow client now reads: some messages, then the close with the slow-consumer code.
    let code = loop {
        match slow.next(Duration::from_secs(10)).await {
            Ok(_) => continue,
            Err(Ended::Closed(code)) => break code,
            Err(Ended::TimedOut) => panic!("slow consumer was never disconnected"),
        }
    };
    assert_eq!(code, Some(close::SLOW_CONSUMER));
    app.stop().await.unwrap();
}

on_both_backends!(social_writes_over_http_are_rate_limited_per_user);

/// Follows and posts draw on one per-user budget: with a burst of 3 at 1/s, a follow and two
/// posts spend it and the next writes get 429 `rate_limited` (one refill at most while they run);
/// another user's budget is untouched.
async fn social_writes_over_http_are_rate_limited_per_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.http_write_rate = switchboard_tests::nz(1);
        c.http_write_burst = switchboard_tests::nz(3);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let alice_token = Some(alice.access_token.as_str());
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    assert_eq!(app.post(&follow, alice_token, json!(null)).await.0, 201);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, body) = app
            .post("/api/v1/posts", alice_token, json!({ "data": 1 }))
            .await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..2], [201, 201], "within the burst");
    assert!(statuses[2..].contains(&429), "past the burst: {statuses:?}");
    let (status, _) = app
        .post(
            "/api/v1/posts",
            Some(&bob.access_token),
            json!({ "data": 1 }),
        )
        .await;
    assert_eq!(status, 201, "budgets are per user");
}

/// The server pings a quiet connection every ping interval, and the client's pongs count as
/// hearing from it: a client that only reads stays connected well past the idle timeout. A
/// plain WebSocket client (tungstenite answers pings as it reads) sees the pings themselves.
#[tokio::test]
async fn server_pings_keep_a_reading_client_alive() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.idle_timeout = Duration::from_secs(1);
        c.ping_interval = Duration::from_millis(250);
    })
    .await;
    let alice = app.user("alice").await;
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {}", alice.access_token)).unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(2000);
    while let Ok(next) = tokio::time::timeout_at(until, ws.next()).await {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(frame))) => panic!("closed while answering pings: {frame:?}"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings in 2 s at four per second");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn silent_clients_time_out() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        // Durations take milliseconds: the test waits 0.6 s, not 1.5.
        c.idle_timeout = Duration::from_millis(400);
        c.ping_interval = Duration::from_secs(30);
    })
    .await;
    let alice = app.user("alice").await;
    let mut ws = app.ws(&alice, Encoding::Json).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ws.closed().await, Some(close::IDLE_TIMEOUT));
    app.stop().await.unwrap();
}
