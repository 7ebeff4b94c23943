//! Registration, login, refresh rotation and reuse detection, logout, WebSocket authentication.

use serde_json::json;
use switchboard_tests::{Backend, TestApp};

on_both_backends!(register_login_refresh_logout);

async fn register_login_refresh_logout(backend: Backend) {
    // No grace: reusing the token rotated away a moment ago counts as theft at once.
    let app = TestApp::spawn_with(backend, |c| {
        c.refresh_grace = std::time::Duration::from_secs(0)
    })
    .await;
    let (status, body) = app.register("carol", "longenough").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], "carol");
    assert!(body["user"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    let (status, body) = app.register("carol", "otherpassword").await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");

    let (status, body) = app.login("carol", "longenough").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/rooms", Some(&access)).await.0, 200);

    let (status, rotated) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    // Reusing the spent token revokes the whole session: the rotated token dies with it.
    let (status, body) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        app.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh2})
        )
        .await
        .0,
        401
    );
    assert_eq!(app.get("/api/v1/rooms", Some(&access)).await.0, 401);

    // A new login, then logout: its token stops working.
    let (_, body) = app.login("carol", "longenough").await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.logout(&access).await, 204);
    assert_eq!(app.get("/api/v1/rooms", Some(&access)).await.0, 401);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn registration_validates_input() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (username, password) in [
        ("ab", "longenough"),
        ("bad name", "longenough"),
        ("fine_name", "short"),
        (&*"x".repeat(33), "longenough"),
    ] {
        let (status, body) = app.register(username, password).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("unprocessable")),
            "{username}"
        );
    }
    let (status, body) = app.register(&"p".repeat(8), &"é".repeat(128)).await;
    assert_eq!(
        status, 201,
        "128 characters (not bytes) are allowed: {body}"
    );
    let resp = app
        .http
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = app.get("/api/v1/nope", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn login_is_throttled_and_unknown_users_look_like_wrong_passwords() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.login_per_user_per_min = switchboard_tests::nz(3);
    })
    .await;
    let alice = app.user("alice").await;

    // One login already happened in `user`; two more wrong guesses, then throttled even with the
    // right password.
    assert_eq!(app.login(&alice.username, "wrong-password").await.0, 401);
    assert_eq!(app.login(&alice.username, "wrong-password").await.0, 401);
    let (status, body) = app.login(&alice.username, &alice.password).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // Unknown user and wrong password look the same.
    let (s1, b1) = app.login("nobody_here", "whatever-pass").await;
    let other = app.user("bob").await;
    let (s2, b2) = app.login(&other.username, "wrong-password").await;
    assert_eq!((s1, b1), (s2, b2));
    app.stop().await.unwrap();
}
