//! The demo web app on the public listener (`SWITCHBOARD_DEMO`): the embedded files with their
//! security headers and revalidation when on; when off, its paths are unknown routes like any.

use reqwest::{Method, Response};
use serde_json::Value;
use switchboard_tests::{Backend, TestApp};

/// The files the server embedded, read the same way, from the same paths.
const INDEX: &[u8] = include_bytes!("../../clients/demo/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../clients/demo/dist/app.js");
const STYLE: &[u8] = include_bytes!("../../clients/demo/dist/app.css");

const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   style-src 'self'; script-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

#[track_caller]
fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", response.headers()))
        .to_str()
        .unwrap()
}

async fn call(app: &TestApp, method: Method, path: &str) -> Response {
    app.http
        .request(method, app.url(path))
        .send()
        .await
        .unwrap()
}

/// The JSON error of a refused request: its status and `error.code`.
async fn refusal(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].clone())
}

#[tokio::test]
async fn the_demo_is_served_embedded_with_its_security_headers() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.demo = Some(true)).await;
    for (path, content_type, bytes) in [
        ("/", "text/html; charset=utf-8", INDEX),
        ("/demo/app.js", "text/javascript; charset=utf-8", SCRIPT),
        ("/demo/app.css", "text/css; charset=utf-8", STYLE),
    ] {
        let response = call(&app, Method::GET, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "content-security-policy"), CSP, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        let etag = header(&response, "etag").to_owned();
        assert_eq!(&response.bytes().await.unwrap()[..], bytes, "{path}");

        // Revalidation: the current tag gets an empty 304 with the same tag, a stale one the file.
        let again = app
            .http
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "etag"), etag);
        assert_eq!(header(&again, "cache-control"), "no-cache");
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = app
            .http
            .get(app.url(path))
            .header("if-none-match", "\"stale\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200, "{path}");

        let head = call(&app, Method::HEAD, path).await;
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(header(&head, "content-type"), content_type);
        assert!(head.bytes().await.unwrap().is_empty());
    }

    // Other methods: the usual JSON 405; other paths under /demo: the usual JSON 404.
    let (status, code) = refusal(call(&app, Method::POST, "/").await).await;
    assert_eq!((status, code.as_str()), (405, Some("method_not_allowed")));
    let (status, code) = refusal(call(&app, Method::DELETE, "/demo/app.js").await).await;
    assert_eq!((status, code.as_str()), (405, Some("method_not_allowed")));
    let (status, code) = refusal(call(&app, Method::GET, "/demo/other.js").await).await;
    assert_eq!((status, code.as_str()), (404, Some("not_found")));
    app.stop().await.unwrap();
}

/// Off (explicitly, or by default on PostgreSQL): `/` and `/demo/*` are JSON 404s, as any path
/// the server does not know.
#[tokio::test]
async fn without_the_demo_its_paths_are_unknown_routes() {
    let off = TestApp::spawn_with(Backend::Sqlite, |c| c.demo = Some(false)).await;
    let by_default = TestApp::spawn(Backend::Postgres).await;
    for app in [&off, &by_default] {
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/demo/app.js"),
            (Method::GET, "/demo/app.css"),
            (Method::POST, "/"),
        ] {
            let response = call(app, method.clone(), path).await;
            assert!(
                response.headers().get("content-security-policy").is_none(),
                "{method} {path}"
            );
            let (status, code) = refusal(response).await;
            assert_eq!((status, code.as_str()), (404, Some("not_found")), "{path}");
        }
    }
    off.stop().await.unwrap();
    by_default.stop().await.unwrap();
}
