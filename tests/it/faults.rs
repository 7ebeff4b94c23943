//! Faults of the storage path: a node stalled inside a transaction must not stall the others;
//! PostgreSQL going away and coming back.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode};
use switchboard_server::store::Store;
use switchboard_tests::pgcluster::PrivatePostgres;
use switchboard_tests::{Backend, Encoding, TestApp, TestDb};

/// A node paused mid-commit (SIGSTOP, a VM stall) holds its channels' counter rows locked. Here
/// "another node" is a session of a node's own storage pool, inside a transaction that holds
/// `room:stall`'s counter row and then goes quiet. The server ends that session after the idle
/// timeout, so this node's publish to the channel waits about that long, not until the paused
/// one wakes up (in this test: never).
#[tokio::test]
async fn a_session_paused_inside_a_transaction_holds_others_up_only_for_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.db_idle_tx_timeout = idle).await;
    let alice = app.user("alice").await;
    let token = Some(alice.access_token.as_str());
    let path = "/api/v1/channels/room:stall/messages";
    let (status, body) = app.post(path, token, json!({"data": 1})).await;
    assert_eq!((status, body["offset"].as_u64()), (201, Some(1)), "{body}");

    // "Another node": a storage handle opened the way every node opens its own, so the
    // session it holds the lock in has exactly the nodes' settings.
    let db = app.db.as_ref().expect("the app owns its database");
    let other = Store::open_with(db.url().as_deref(), &db.data_dir(), 1, idle)
        .await
        .unwrap();
    let mut tx = other.pool_for_tests().begin().await.unwrap();
    sqlx::query("UPDATE channels SET last_offset = last_offset WHERE name = 'room:stall'")
        .execute(&mut *tx)
        .await
        .unwrap();

    let started = Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(20),
        app.post(path, token, json!({"data": 2})),
    )
    .await
    .expect("the publish waited for the paused session to come back");
    eprintln!(
        "publish behind a paused session's lock waited {:?}",
        started.elapsed()
    );
    assert_eq!((status, body["offset"].as_u64()), (201, Some(2)), "{body}");
    assert!(
        tx.commit().await.is_err(),
        "the server ended the paused session, so its transaction is gone"
    );
}

/// PostgreSQL goes away under a running node and comes back: publishes are refused with
/// `unavailable` (not left hanging), `/readyz` says 503, sockets stay up and answer, and once
/// PostgreSQL is back the node publishes again without a restart, and subscribers get what is
/// published then, live.
#[tokio::test]
async fn while_postgres_is_down_publishes_are_refused_sockets_stay_and_it_heals_by_itself() {
    let pg = PrivatePostgres::start().unwrap();
    let db = TestDb::new(Backend::Sqlite).await; // only for the data dir; storage is `pg`
    let url = pg.url();
    let app = TestApp::spawn_node(&db, |c| c.database_url = Some(url)).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut publisher = app.ws(&alice, Encoding::Json).await;
    let mut watcher = app.ws(&bob, Encoding::MsgPack).await;
    watcher.subscribe("room:down", None).await.unwrap();
    assert_eq!(
        publisher
            .publish("room:down", json!(1), &mut Vec::new())
            .await
            .unwrap(),
        1
    );
    assert_eq!(watcher.messages(1).await[0].offset, 1);

    pg.stop().unwrap();
    let started = Instant::now();
    let refused = tokio::time::timeout(
        Duration::from_secs(15),
        publisher.publish("room:down", json!(2), &mut Vec::new()),
    )
    .await
    .expect("a publish while PostgreSQL is down is answered, not left hanging")
    .unwrap_err();
    eprintln!(
        "publish refused {:?} after PostgreSQL stopped",
        started.elapsed()
    );
    assert_eq!(refused.code, ErrorCode::Unavailable, "{refused:?}");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    for ws in [&mut publisher, &mut watcher] {
        let id = ws.id();
        ws.request(ClientFrame::Ping { id }, &mut Vec::new())
            .await
            .expect("the socket stays up and answers");
    }

    pg.resume().unwrap();
    let back = Instant::now();
    let offset = loop {
        match publisher
            .publish("room:down", json!(3), &mut Vec::new())
            .await
        {
            Ok(offset) => break offset,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
                assert!(
                    back.elapsed() < Duration::from_secs(60),
                    "the node did not recover"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!(
        "publishing again {:?} after PostgreSQL came back",
        back.elapsed()
    );
    assert_eq!(offset, 2, "the refused publish took no offset");
    let live = watcher.messages(1).await;
    assert_eq!((live[0].offset, &live[0].data), (2, &json!(3)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "readyz stayed 503");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop_node().await.unwrap();
}
