//! History pages over HTTP and WebSocket.

use serde_json::json;
use switchboard_protocol::ClientFrame;
use switchboard_tests::{Backend, Encoding, TestApp};

on_both_backends!(history_pages_back_in_ascending_order);

async fn history_pages_back_in_ascending_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let token = Some(alice.access_token.as_str());
    for i in 1..=120 {
        let (status, body) = app
            .post(
                "/api/v1/channels/room:hist/messages",
                token,
                json!({"data": {"i": i}}),
            )
            .await;
        assert_eq!((status, body["offset"].as_u64()), (201, Some(i)));
    }
    let offsets = |body: &serde_json::Value| -> Vec<u64> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect()
    };
    let (status, newest) = app.get("/api/v1/channels/room:hist/messages", token).await;
    assert_eq!(status, 200);
    assert_eq!(offsets(&newest), (71..=120).collect::<Vec<_>>());
    let m = &newest["messages"][0];
    assert_eq!(
        (m["channel"].as_str(), m["from"].as_str(), &m["data"]),
        (
            Some("room:hist"),
            Some(alice.id.as_str()),
            &json!({"i": 71})
        )
    );

    let (_, page) = app
        .get(
            "/api/v1/channels/room:hist/messages?before=71&limit=50",
            token,
        )
        .await;
    assert_eq!(offsets(&page), (21..=70).collect::<Vec<_>>());
    let (_, page) = app
        .get(
            "/api/v1/channels/room:hist/messages?before=21&limit=50",
            token,
        )
        .await;
    assert_eq!(offsets(&page), (1..=20).collect::<Vec<_>>());
    let (_, page) = app
        .get("/api/v1/channels/room:hist/messages?before=1", token)
        .await;
    assert_eq!(offsets(&page), Vec::<u64>::new());
    // The limit is capped, not refused.
    let (_, page) = app
        .get("/api/v1/channels/room:hist/messages?limit=100000", token)
        .await;
    assert_eq!(offsets(&page).len(), 120);
    let (status, body) = app
        .get("/api/v1/channels/room:hist/messages?limit=abc", token)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (status, _) = app.get("/api/v1/channels/bogus/messages", token).await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/api/v1/channels/room:hist/messages", None).await;
    assert_eq!(status, 401);

    // The same page over WebSocket, in both encodings.
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        let mut ws = app.ws(&alice, encoding).await;
        let id = ws.id();
        let frame = ClientFrame::History {
            id,
            channel: "room:hist".into(),
            before: Some(18),
            limit: Some(5),
        };
        let ack = ws.request(frame, &mut Vec::new()).await.unwrap();
        let got: Vec<u64> = ack.messages.unwrap().iter().map(|m| m.offset).collect();
        assert_eq!(got, vec![13, 14, 15, 16, 17]);
    }
    app.stop().await.unwrap();
}
