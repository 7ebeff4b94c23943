//! Live delivery in rooms and user channels, across both encodings, and who may read what.

use serde_json::json;
use switchboard_protocol::ErrorCode;
use switchboard_tests::{Backend, Encoding, TestApp};

on_both_backends!(json_and_msgpack_clients_share_a_room);

async fn json_and_msgpack_clients_share_a_room(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut b = app.ws(&bob, Encoding::MsgPack).await;
    assert_eq!(
        a.subscribe("room:lobby", None).await.unwrap().offset,
        Some(0)
    );
    assert_eq!(
        b.subscribe("room:lobby", None).await.unwrap().offset,
        Some(0)
    );

    // Messages that arrive while a client waits for its publish ack are kept, not dropped.
    let (mut seen_by_a, mut seen_by_b) = (Vec::new(), Vec::new());
    let o1 = a
        .publish(
            "room:lobby",
            json!({"text": "hi from json", "n": 1}),
            &mut seen_by_a,
        )
        .await
        .unwrap();
    let o2 = b
        .publish(
            "room:lobby",
            json!({"text": "hi from msgpack", "list": [1, 2.5, null, true]}),
            &mut seen_by_b,
        )
        .await
        .unwrap();
    assert_eq!((o1, o2), (1, 2));

    for (client, mut got) in [(&mut a, seen_by_a), (&mut b, seen_by_b)] {
        got.extend(client.messages(2 - got.len()).await);
        assert_eq!(got.iter().map(|m| m.offset).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(got[0].data, json!({"text": "hi from json", "n": 1}));
        assert_eq!(got[0].from, alice.id);
        assert_eq!(
            got[1].data,
            json!({"text": "hi from msgpack", "list": [1, 2.5, null, true]})
        );
        assert_eq!(got[1].from, bob.id);
        assert!(got
            .iter()
            .all(|m| m.channel == "room:lobby" && !m.id.is_empty() && m.ts.ends_with('Z')));
        client
            .assert_no_message(std::time::Duration::from_millis(200))
            .await;
    }
    app.stop().await.unwrap();
}

on_both_backends!(private_rooms_admit_members_only);

async fn private_rooms_admit_members_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, member, outsider) = (
        app.user("owner").await,
        app.user("member").await,
        app.user("outsider").await,
    );
    let (status, body) = app
        .post(
            "/api/v1/rooms",
            Some(&owner.access_token),
            json!({"name": "secret", "private": true, "members": [member.username]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["room"]["members"].as_array().unwrap().len(), 2);
    let (status, _) = app
        .post(
            "/api/v1/rooms",
            Some(&outsider.access_token),
            json!({"name": "secret"}),
        )
        .await;
    assert_eq!(status, 409);

    let (_, listed) = app.get("/api/v1/rooms", Some(&outsider.access_token)).await;
    assert!(listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] != "secret"));
    let (_, listed) = app.get("/api/v1/rooms", Some(&member.access_token)).await;
    assert!(listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "secret"));

    let mut out = app.ws(&outsider, Encoding::Json).await;
    assert_eq!(
        out.subscribe("room:secret", None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
    let err = out
        .publish("room:secret", json!("let me in"), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    let (status, _) = app
        .get(
            "/api/v1/channels/room:secret/messages",
            Some(&outsider.access_token),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/api/v1/channels/room:secret/messages",
            Some(&outsider.access_token),
            json!({"data": 1}),
        )
        .await;
    assert_eq!(status, 403);

    let mut m = app.ws(&member, Encoding::Json).await;
    m.subscribe("room:secret", None).await.unwrap();
    let (status, body) = app
        .post(
            "/api/v1/channels/room:secret/messages",
            Some(&owner.access_token),
            json!({"data": {"t": "psst"}}),
        )
        .await;
    assert_eq!((status, &body), (201, &json!({"offset": 1})));
    let got = m.messages(1).await;
    assert_eq!(got[0].data, json!({"t": "psst"}));
    // The outsider's refused attempts left nothing behind.
    out.assert_no_message(std::time::Duration::from_millis(200))
        .await;
    app.stop().await.unwrap();
}

on_both_backends!(user_channels_are_private_to_their_owner);

async fn user_channels_are_private_to_their_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut a = app.ws(&alice, Encoding::Json).await;
    let mut b = app.ws(&bob, Encoding::MsgPack).await;
    let own = format!("user:{}", alice.id);
    assert!(a.subscribe(&own, None).await.is_ok());
    assert_eq!(
        b.subscribe(&own, None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        b.publish(&own, json!("spoof"), &mut Vec::new())
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        a.publish(&own, json!("self"), &mut Vec::new())
            .await
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/channels/{own}/messages"),
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get(
            &format!("/api/v1/channels/{own}/messages"),
            Some(&alice.access_token),
        )
        .await;
    assert_eq!(status, 200);
    app.stop().await.unwrap();
}
