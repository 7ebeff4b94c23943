//! CORS on the HTTP API (`SWITCHBOARD_CORS_ORIGINS`): preflights answered before anything can
//! refuse them, every answer to a listed origin readable (errors too), and nothing at all when
//! the setting is unset or the path is not the API.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use switchboard_tests::{nz, Backend, TestApp};

const APP: &str = "https://app.example";
const ELSEWHERE: &str = "https://elsewhere.example";
const HISTORY: &str = "/api/v1/channels/room:cors/messages";

fn allow_origin(response: &Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[track_caller]
fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", response.headers()))
        .to_str()
        .unwrap()
}

/// What a browser sends before a cross-origin `method` with an `Authorization` header and a
/// JSON body.
async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Response {
    app.http
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

/// A request as a page on `origin` makes it, with `token` as its bearer (and a message to
/// publish when it is a POST).
async fn from(
    app: &TestApp,
    origin: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Response {
    let post = method == Method::POST;
    let mut req = app
        .http
        .request(method, app.url(path))
        .header("origin", origin);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if post {
        req = req.json(&json!({ "data": { "text": "hi" } }));
    }
    req.send().await.unwrap()
}

async fn error_code(response: Response) -> Value {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"].clone()
}

#[tokio::test]
async fn a_listed_origin_gets_preflights_and_readable_answers_errors_included() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_origins = format!("{APP}, http://localhost:5173").parse().unwrap();
        // One page read, then 429.
        c.http_read_rate = nz(1);
        c.http_read_burst = nz(1);
    })
    .await;

    // Preflights are answered by the CORS layer: on a route that needs a token (none is sent),
    // on a GET-only route asked about POST (the router would say 405), on no route at all (404).
    for path in [HISTORY, "/api/v1/feed", "/api/v1/no-such-route"] {
        let response = preflight(&app, path, APP, "POST").await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(allow_origin(&response), Some(APP), "{path}");
        let methods = header(&response, "access-control-allow-methods").to_ascii_uppercase();
        for method in ["GET", "POST", "DELETE"] {
            assert!(methods.contains(method), "{methods}");
        }
        let headers = header(&response, "access-control-allow-headers").to_ascii_lowercase();
        for name in ["authorization", "content-type", "idempotency-key"] {
            assert!(headers.contains(name), "{headers}");
        }
        assert_eq!(header(&response, "access-control-max-age"), "600");
        // Answered before routing: no route's 405 handling saw it (it would add `Allow`).
        assert!(response.headers().get("allow").is_none(), "{path}");
        assert!(response
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
    }
    let other = preflight(&app, HISTORY, "http://localhost:5173", "GET").await;
    assert_eq!(allow_origin(&other), Some("http://localhost:5173"));

    // Another origin's preflight is not allowed, so its browser sends nothing.
    let refused = preflight(&app, HISTORY, ELSEWHERE, "POST").await;
    assert_eq!(allow_origin(&refused), None);

    // The requests themselves: success and every kind of refusal carry the header.
    let user = app.user("cors").await;
    let token = Some(user.access_token.as_str());
    let posted = from(&app, APP, Method::POST, HISTORY, token).await;
    assert_eq!(posted.status(), 201);
    assert_eq!(allow_origin(&posted), Some(APP));
    let read = from(&app, APP, Method::GET, HISTORY, token).await;
    assert_eq!(read.status(), 200);
    assert_eq!(allow_origin(&read), Some(APP));
    let unauthorized = from(&app, APP, Method::GET, HISTORY, None).await;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(allow_origin(&unauthorized), Some(APP));
    assert_eq!(error_code(unauthorized).await, "unauthorized");
    let limited = from(&app, APP, Method::GET, HISTORY, token).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(allow_origin(&limited), Some(APP));
    assert_eq!(error_code(limited).await, "rate_limited");
    let missing = from(&app, APP, Method::GET, "/api/v1/no-such-route", token).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(allow_origin(&missing), Some(APP));
    let not_allowed = from(&app, APP, Method::DELETE, "/api/v1/feed", token).await;
    assert_eq!(not_allowed.status(), 405);
    assert_eq!(allow_origin(&not_allowed), Some(APP));

    // Another origin's request is served (the browser, not the server, withholds the answer)
    // without the header.
    let profile = format!("/api/v1/users/{}", user.id);
    let elsewhere = from(&app, ELSEWHERE, Method::GET, &profile, token).await;
    assert_eq!(elsewhere.status(), 200);
    assert_eq!(allow_origin(&elsewhere), None);

    // Only the API: not the probes, not the WebSocket route (which checks Origin itself).
    for path in ["/healthz", "/ws"] {
        let response = preflight(&app, path, APP, "GET").await;
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(allow_origin(&response), None, "{path}");
    }
    let probe = from(&app, APP, Method::GET, "/healthz", None).await;
    assert_eq!(probe.status(), 200);
    assert_eq!(allow_origin(&probe), None);

    // An OPTIONS that is no preflight still gets the usual 405.
    let options = app
        .http
        .request(Method::OPTIONS, app.url(HISTORY))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 405);
    assert_eq!(error_code(options).await, "method_not_allowed");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_star_allows_any_origin() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.cors_origins = "*".parse().unwrap()).await;
    let response = preflight(&app, HISTORY, "http://localhost:3000", "POST").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(allow_origin(&response), Some("*"));
    let unauthorized = from(&app, ELSEWHERE, Method::GET, HISTORY, None).await;
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(allow_origin(&unauthorized), Some("*"));
    app.stop().await.unwrap();
}

/// The default: no CORS headers anywhere, and a preflight is an OPTIONS like any (405).
#[tokio::test]
async fn unset_means_no_cors_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = preflight(&app, HISTORY, APP, "POST").await;
    assert_eq!(response.status(), 405);
    assert_eq!(allow_origin(&response), None);
    assert!(response
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-")));
    let user = app.user("nocors").await;
    let read = from(&app, APP, Method::GET, HISTORY, Some(&user.access_token)).await;
    assert_eq!(read.status(), 200);
    assert!(read
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-")));
    app.stop().await.unwrap();
}
