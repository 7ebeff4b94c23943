//! Faults of the storage path: a node stalled inside a transaction must not stall the others.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, Executor};
use switchboard_server::store::session_settings;
use switchboard_tests::{Backend, TestApp};

/// A node paused mid-commit (SIGSTOP, a VM stall) holds its channels' counter rows locked. Here
/// "another node" is a session with the nodes' own settings, inside a transaction that holds
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

    sqlx::any::install_default_drivers();
    let url = app
        .db
        .as_ref()
        .and_then(|db| db.url())
        .expect("a PostgreSQL test database");
    let mut paused = sqlx::AnyConnection::connect(&url).await.unwrap();
    paused
        .execute(session_settings(idle).as_str())
        .await
        .unwrap();
    let mut tx = paused.begin().await.unwrap();
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
