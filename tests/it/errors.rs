//! One error table: a domain error reaches both transports with the same code (HTTP with the
//! status `ErrorCode::http_status` gives it).

use switchboard_protocol::{Encoding, ErrorCode};
use switchboard_tests::{Backend, TestApp};

on_both_backends!(a_storage_failure_during_an_access_check_is_unavailable_on_both_transports);

/// Before the error table was one, the same failed access check was `unavailable` over
/// WebSocket but `500 internal` over HTTP.
async fn a_storage_failure_during_an_access_check_is_unavailable_on_both_transports(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("broken").await;
    let mut ws = app.ws(&user, Encoding::Json).await;
    let pool = app.db.as_ref().expect("a test database").pool().await;
    // A room's rules cannot be read: every check on a room not yet cached fails in storage.
    sqlx::query("ALTER TABLE rooms RENAME TO rooms_away")
        .execute(&pool)
        .await
        .unwrap();
    let history = "/api/v1/channels/room:fresh/messages";
    let (status, body) = app.get(history, Some(&user.access_token)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let refused = ws.subscribe("room:fresh", None).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable, "{refused:?}");

    // Storage back: the same requests are served.
    sqlx::query("ALTER TABLE rooms_away RENAME TO rooms")
        .execute(&pool)
        .await
        .unwrap();
    let (status, body) = app.get(history, Some(&user.access_token)).await;
    assert_eq!(status, 200, "{body}");
    ws.subscribe("room:fresh", None).await.unwrap();
    app.stop().await.unwrap();
}
