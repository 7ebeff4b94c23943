//! Reconnect with `since`: nothing lost, nothing twice, in order — while publishing goes on.

use std::time::Duration;

use rand::Rng;
use serde_json::json;
use switchboard_protocol::{ClientFrame, MessageFrame, ServerFrame};
use switchboard_tests::{Backend, Encoding, TestApp, User, WsClient};

/// Publishes `n` messages `{"seq": i}` on one connection, waiting for each ack; returns the
/// acked offsets.
async fn publish_sequence(
    app: &TestApp,
    who: &User,
    channel: &str,
    n: u64,
    pause: Duration,
) -> Vec<u64> {
    let mut ws = app.ws(who, Encoding::Json).await;
    let mut acked = Vec::new();
    for seq in 1..=n {
        acked.push(
            ws.publish(channel, json!({ "seq": seq }), &mut Vec::new())
                .await
                .expect("publish acked"),
        );
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    acked
}

on_both_backends!(reconnecting_with_since_recovers_exactly_what_was_missed);

async fn reconnecting_with_since_recovers_exactly_what_was_missed(backend: Backend) {
    const N: u64 = 400;
    let app = TestApp::spawn(backend).await;
    let (publisher, reader) = (app.user("pub").await, app.user("sub").await);
    let channel = "room:recover";

    // Subscribe first so the publisher's first message is already live for us.
    let mut ws = app.ws(&reader, Encoding::Json).await;
    ws.subscribe(channel, Some(0)).await.unwrap();
    let publishing = {
        let (app_addr, publisher) = (app.ws_url(), publisher.clone());
        tokio::spawn(async move {
            let mut ws = WsClient::connect(&app_addr, Encoding::Json, None)
                .await
                .unwrap();
            ws.auth(&publisher.access_token).await;
            let mut acked = Vec::new();
            for seq in 1..=N {
                acked.push(
                    ws.publish(channel, json!({ "seq": seq }), &mut Vec::new())
                        .await
                        .unwrap(),
                );
                if seq % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            acked
        })
    };

    let mut received: Vec<MessageFrame> = Vec::new();
    let mut reconnects = 0;
    while received.last().map_or(0, |m| m.offset) < N {
        // Read a random number of messages, then drop the socket without a close handshake
        // (whatever was in flight is lost with it) and come back with `since`.
        let take = rand::thread_rng().gen_range(10..80);
        for _ in 0..take {
            match ws.next(switchboard_tests::PATIENCE).await {
                Ok(ServerFrame::Message(m)) => received.push(m),
                Ok(_) => {}
                Err(e) => panic!("connection ended unexpectedly: {e:?}"),
            }
            if received.last().map_or(0, |m| m.offset) == N {
                break;
            }
        }
        if received.last().map_or(0, |m| m.offset) == N {
            break;
        }
        drop(ws);
        reconnects += 1;
        let encoding = if reconnects % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::MsgPack
        };
        ws = app.ws(&reader, encoding).await;
        let since = received.last().map_or(0, |m| m.offset);
        ws.subscribe(channel, Some(since)).await.unwrap();
    }

    let acked = publishing.await.unwrap();
    assert_eq!(
        acked,
        (1..=N).collect::<Vec<_>>(),
        "acked offsets are gapless"
    );
    let offsets: Vec<u64> = received.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (1..=N).collect::<Vec<_>>(),
        "every message once, in order, across {reconnects} reconnects"
    );
    for m in &received {
        assert_eq!(m.data["seq"].as_u64(), Some(m.offset));
    }
    assert!(
        reconnects >= 3,
        "the test reconnected only {reconnects} times"
    );
    ws.assert_no_message(Duration::from_millis(200)).await;
    app.stop().await.unwrap();
}

on_both_backends!(subscribers_joining_mid_stream_get_a_seamless_sequence);

/// Several publishers race on one channel while subscribers join at random moments with various
/// `since`: each subscriber sees exactly `since+1 ..= total` in order, and every connection sees
/// the same message at the same offset.
async fn subscribers_joining_mid_stream_get_a_seamless_sequence(backend: Backend) {
    const PER_PUBLISHER: u64 = 120;
    const PUBLISHERS: u64 = 3;
    let total = PER_PUBLISHER * PUBLISHERS;
    let app = TestApp::spawn(backend).await;
    let channel = "room:race";
    let mut publishers = Vec::new();
    for _ in 0..PUBLISHERS {
        publishers.push(app.user("pub").await);
    }
    let reader = app.user("reader").await;

    let mut tasks = Vec::new();
    for p in &publishers {
        let (url, token) = (app.ws_url(), p.access_token.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = WsClient::connect(&url, Encoding::Json, None).await.unwrap();
            ws.auth(&token).await;
            let mut acked = Vec::new();
            for seq in 1..=PER_PUBLISHER {
                acked.push(
                    ws.publish(channel, json!({ "seq": seq }), &mut Vec::new())
                        .await
                        .unwrap(),
                );
            }
            acked
        }));
    }

    let mut subscribers = Vec::new();
    for k in 0..6u64 {
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(5..60))).await;
        let encoding = if k % 2 == 0 {
            Encoding::Json
        } else {
            Encoding::MsgPack
        };
        let mut ws = app.ws(&reader, encoding).await;
        // Half start from the beginning, half from wherever the channel is now.
        let since = if k % 2 == 0 { Some(k * 3) } else { None };
        let ack = ws.subscribe(channel, since).await.unwrap();
        let start = since.unwrap_or(ack.offset.unwrap());
        subscribers.push((start, ws));
    }

    let mut acked: Vec<u64> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=total).collect::<Vec<_>>(),
        "offsets are gapless and unique across publishers"
    );

    let mut reference: Option<Vec<MessageFrame>> = None;
    for (start, mut ws) in subscribers {
        let got = ws.messages((total - start) as usize).await;
        let offsets: Vec<u64> = got.iter().map(|m| m.offset).collect();
        assert_eq!(
            offsets,
            (start + 1..=total).collect::<Vec<_>>(),
            "subscriber from {start}"
        );
        ws.assert_no_message(Duration::from_millis(100)).await;
        if start == 0 {
            reference = Some(got);
        } else if let Some(all) = &reference {
            for m in &got {
                assert_eq!(
                    &all[(m.offset - 1) as usize],
                    m,
                    "same message at offset {}",
                    m.offset
                );
            }
        }
    }
    // Per publisher, its own messages keep their publish order.
    let all = reference.expect("a subscriber from 0");
    for p in &publishers {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|m| m.from == p.id)
            .map(|m| m.data["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=PER_PUBLISHER).collect::<Vec<_>>());
    }
    app.stop().await.unwrap();
}

on_both_backends!(since_beyond_the_end_and_unsubscribe_behave);

async fn since_beyond_the_end_and_unsubscribe_behave(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (p, r) = (app.user("pub").await, app.user("reader").await);
    assert_eq!(
        publish_sequence(&app, &p, "room:edge", 5, Duration::ZERO).await,
        vec![1, 2, 3, 4, 5]
    );
    let mut ws = app.ws(&r, Encoding::Json).await;
    // A `since` at the end replays nothing; the ack still reports the channel's position.
    assert_eq!(
        ws.subscribe("room:edge", Some(5)).await.unwrap().offset,
        Some(5)
    );
    ws.assert_no_message(Duration::from_millis(150)).await;
    publish_sequence(&app, &p, "room:edge", 1, Duration::ZERO).await;
    assert_eq!(ws.messages(1).await[0].offset, 6);
    let id = ws.id();
    ws.request(
        ClientFrame::Unsubscribe {
            id,
            channel: "room:edge".into(),
        },
        &mut Vec::new(),
    )
    .await
    .unwrap();
    publish_sequence(&app, &p, "room:edge", 1, Duration::ZERO).await;
    ws.assert_no_message(Duration::from_millis(200)).await;
    app.stop().await.unwrap();
}
