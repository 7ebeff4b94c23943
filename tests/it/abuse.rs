//! Abuse bounds from Hardening II (findings F3-F9, F17, F19 and F25 of the December 2026
//! security audit, `shared/audits/security-2026-12.md`), each as a black-box test named for the
//! property it asserts: what a client that abuses the server tries, and what it must get
//! instead. Limits are configured small so each bound is reached in a few requests; frames are
//! read as plain JSON so a test states exactly what is on the wire.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard_server::testing::Cidr;
use switchboard_server::testing::Seal;
use switchboard_tests::raw::{frame, next, request, Got};
use switchboard_tests::{Backend, Encoding, TestApp, User, WsClient, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn subscribe(ws: &mut WsClient, channel: &str) -> Value {
    let frame = json!({"type": "subscribe", "channel": channel});
    request(ws, frame, &mut Vec::new()).await
}

async fn publish(ws: &mut WsClient, channel: &str, data: Value) -> Value {
    let frame = json!({"type": "publish", "channel": channel, "data": data});
    request(ws, frame, &mut Vec::new()).await
}

/// The next channel message on `ws` (other frames are skipped).
async fn next_message(ws: &mut WsClient) -> Value {
    loop {
        let got = frame(next(ws, PATIENCE).await);
        if got["type"] == "message" {
            return got;
        }
    }
}

/// An HTTP client whose connections come from `ip` (any 127.0.0.0/8 address is on loopback).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `POST path` with a JSON body and extra headers; returns the status and the body as JSON.
async fn post_with(
    app: &TestApp,
    http: &reqwest::Client,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(app.url(path)).json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// How a raw TCP read ended.
#[derive(Debug, PartialEq)]
enum Ending {
    Eof,
    Error,
    /// Nothing came, and the socket stayed open, until the deadline.
    StillOpen,
}

/// Reads from `tcp` until EOF, an error or `deadline`; returns what came and how it ended.
async fn read_until_end(tcp: &mut TcpStream, deadline: tokio::time::Instant) -> (Vec<u8>, Ending) {
    let mut got = Vec::new();
    loop {
        let mut buf = [0u8; 64 * 1024];
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return (got, Ending::StillOpen),
            Ok(Ok(0)) => return (got, Ending::Eof),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (got, Ending::Error),
        }
    }
}

/// Reads exactly one HTTP/1.1 response with a `content-length` (head and body) from `tcp`.
async fn read_one_response(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("a response within the patience")
            .expect("read");
        assert!(n > 0, "EOF before a whole response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while got.len() < head_end + length {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut buf))
            .await
            .expect("the body within the patience")
            .expect("read");
        assert!(n > 0, "EOF inside the body");
        got.extend_from_slice(&buf[..n]);
    }
    let body = got[head_end..head_end + length].to_vec();
    (head, body)
}

// ---------------------------------------------------------------------------------------------
// F4: per-IP limits behind a load balancer (every client was the balancer), and a spoofed
// X-Forwarded-For from a direct client (it must buy nothing).

const LOGIN: &str = "/api/v1/auth/login";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_budget() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse::<Cidr>().unwrap()];
        c.login_per_ip_per_min = switchboard_tests::nz(3);
    })
    .await;
    let alice = app.user("alice").await;
    let attacker = [("x-forwarded-for", "203.0.113.7")];
    for i in 0..3 {
        let creds = json!({"username": format!("nobody{i}"), "password": "guess-guess"});
        let (status, body) = post_with(&app, &app.http, LOGIN, &attacker, creds).await;
        assert_eq!(status, 401, "attempt {}: {body}", i + 1);
    }
    let creds = json!({"username": "nobody3", "password": "guess-guess"});
    let (status, body) = post_with(&app, &app.http, LOGIN, &attacker, creds).await;
    assert_eq!(status, 429, "the 4th attempt from 203.0.113.7: {body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Another client behind the same proxy is not throttled with the attacker.
    let creds = json!({"username": alice.username, "password": alice.password});
    let (status, body) = post_with(
        &app,
        &app.http,
        LOGIN,
        &[("x-forwarded-for", "198.51.100.9")],
        creds,
    )
    .await;
    assert_eq!(status, 200, "a different forwarded client: {body}");
    // The attacker prepends a hop of their own: the proxy appended the real one, right-most.
    let creds = json!({"username": "nobody4", "password": "guess-guess"});
    let (status, body) = post_with(
        &app,
        &app.http,
        LOGIN,
        &[("x-forwarded-for", "198.51.100.9, 203.0.113.7")],
        creds,
    )
    .await;
    assert_eq!(
        status, 429,
        "a spoofed left-most hop must count as 203.0.113.7: {body}"
    );
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f4_without_trusted_proxies_a_spoofed_forwarded_for_buys_no_login_budget() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.login_per_ip_per_min = switchboard_tests::nz(3)
    })
    .await;
    let alice = app.user("alice").await;
    // The attacker connects from 127.0.0.5 and claims a new address on every attempt.
    let attacker = client_from("127.0.0.5");
    for i in 0..3 {
        let spoof = format!("203.0.113.{}", 10 + i);
        let creds = json!({"username": format!("nobody{i}"), "password": "guess-guess"});
        let (status, body) = post_with(
            &app,
            &attacker,
            LOGIN,
            &[("x-forwarded-for", &spoof)],
            creds,
        )
        .await;
        assert_eq!(status, 401, "attempt {}: {body}", i + 1);
    }
    for spoof in ["203.0.113.99", "198.51.100.9, 203.0.113.100", "10.0.0.1"] {
        let creds = json!({"username": alice.username, "password": "guess-guess"});
        let (status, body) = post_with(
            &app,
            &attacker,
            LOGIN,
            &[("x-forwarded-for", spoof), ("forwarded", "for=192.0.2.1")],
            creds,
        )
        .await;
        assert_eq!(
            status, 429,
            "X-Forwarded-For {spoof:?} from an untrusted peer escaped the per-IP throttle: {body}"
        );
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    // Alice, from her own address, is in.
    let (status, body) = post_with(
        &app,
        &client_from("127.0.0.6"),
        LOGIN,
        &[],
        json!({"username": alice.username, "password": alice.password}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F3: unthrottled registration (every registration costs a password hash).

const REGISTER: &str = "/api/v1/auth/register";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_registrations_per_address_are_throttled_and_a_taken_name_is_a_conflict() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.register_per_ip_per_min = switchboard_tests::nz(2)
    })
    .await;
    let first = unique("reg");
    let creds = |name: &str| json!({"username": name, "password": "correct horse battery"});
    let (status, body) = post_with(&app, &app.http, REGISTER, &[], creds(&first)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_with(&app, &app.http, REGISTER, &[], creds(&first)).await;
    assert_eq!(status, 409, "the name is taken: {body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let second = unique("reg");
    let (status, body) = post_with(&app, &app.http, REGISTER, &[], creds(&second)).await;
    assert_eq!(status, 429, "the 3rd registration from one address: {body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // Another address still registers.
    let elsewhere = client_from("127.0.0.7");
    let (status, body) = post_with(&app, &elsewhere, REGISTER, &[], creds(&second)).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f3_registrations_for_the_whole_node_are_throttled_whatever_the_addresses() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse::<Cidr>().unwrap()];
        c.register_per_min = switchboard_tests::nz(2);
    })
    .await;
    let mut statuses = Vec::new();
    for i in 1..=3 {
        let forwarded = format!("203.0.113.{i}");
        let (status, body) = post_with(
            &app,
            &app.http,
            REGISTER,
            &[("x-forwarded-for", &forwarded)],
            json!({"username": unique("sock"), "password": "correct horse battery"}),
        )
        .await;
        statuses.push(status);
        if i == 3 {
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F6: unbounded sockets: per user, per node, and held open by slow or idle clients.

/// Opens `/ws` with the bearer token on the upgrade; `Err(status)` if the upgrade is refused.
async fn ws_with_bearer(app: &TestApp, user: &User) -> Result<WsClient, u16> {
    match WsClient::connect(&app.ws_url(), Encoding::Json, Some(&user.access_token)).await {
        Ok(ws) => Ok(ws),
        Err(e) => match e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            _ => panic!("the upgrade failed otherwise: {e:#}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_a_user_holds_at_most_max_connections_per_user_websockets() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.max_connections_per_user = 2).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut first = app.ws(&alice, Encoding::Json).await;
    let mut second = ws_with_bearer(&app, &alice)
        .await
        .expect("the second socket is within the cap");
    for ws in [&mut first, &mut second] {
        assert_eq!(
            request(ws, json!({"type": "ping"}), &mut Vec::new()).await["type"],
            "ack"
        );
    }
    // A third with the token on the upgrade: refused before the upgrade.
    assert_eq!(
        ws_with_bearer(&app, &alice).await.err(),
        Some(429),
        "a third socket with a bearer upgrade"
    );
    // A third authenticating with its first frame: `rate_limited`, then close 1013.
    let mut third = WsClient::connect(&app.ws_url(), Encoding::Json, None)
        .await
        .unwrap();
    let auth = json!({"type": "auth", "id": 1, "token": alice.access_token});
    third
        .ws
        .send(Message::Text(auth.to_string().into()))
        .await
        .unwrap();
    let got = frame(next(&mut third, PATIENCE).await);
    assert_eq!(
        (
            got["type"].as_str(),
            got["code"].as_str(),
            got["id"].as_i64()
        ),
        (Some("error"), Some("rate_limited"), Some(1)),
        "{got}"
    );
    assert_eq!(next(&mut third, PATIENCE).await, Got::Closed(Some(1013)));
    // Another user is not counted with Alice.
    let mut other = ws_with_bearer(&app, &bob).await.expect("bob's socket");
    assert_eq!(
        request(&mut other, json!({"type": "ping"}), &mut Vec::new()).await["type"],
        "ack"
    );
    // The refusals took no place, and a closed socket gives its place back.
    first.ws.close(None).await.unwrap();
    assert!(matches!(next(&mut first, PATIENCE).await, Got::Closed(_)));
    drop(first);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut replacement = loop {
        match ws_with_bearer(&app, &alice).await {
            Ok(ws) => break ws,
            Err(429) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the closed socket's place was not given back ({status})"),
        }
    };
    assert_eq!(
        request(&mut replacement, json!({"type": "ping"}), &mut Vec::new()).await["type"],
        "ack"
    );
    // Still two at most.
    assert_eq!(ws_with_bearer(&app, &alice).await.err(), Some(429));
    drop((second, replacement, other));
    app.stop().await.unwrap();
}

/// Whether the server refused `tcp` at accept: it answers a socket within the cap with nothing
/// until a request arrives, and one over the cap with a 503 at once.
async fn refused_at_accept(tcp: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(300), tcp.peek(&mut byte))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_a_node_at_its_socket_cap_answers_503_unavailable_and_recovers() {
    let mut app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.max_connections = 3;
        c.http_header_timeout = std::time::Duration::from_secs(5);
    })
    .await;
    // The readiness probe's pooled keep-alive connection would hold a place: close it.
    app.http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut held = Vec::new();
    while held.len() < 3 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        if refused_at_accept(&mut tcp).await {
            // A place not given back yet (the probe's socket): try again.
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} sockets were admitted under a cap of 3",
                held.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        held.push(tcp);
    }
    let mut fourth = TcpStream::connect(app.addr).await.unwrap();
    let (got, ending) = read_until_end(&mut fourth, tokio::time::Instant::now() + PATIENCE).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert_eq!(
        ending,
        Ending::Eof,
        "the refused socket is closed: {text:?}"
    );
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    // The held sockets go; their places come back.
    drop(held);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = reqwest::Client::new()
            .get(app.url("/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if let Ok(200) = status {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never recovered: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_a_client_that_sends_headers_slowly_is_disconnected() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http_header_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (mut rx, mut tx) = tcp.into_split();
    // Slowloris: a header line every 300 ms, never the blank line that ends them.
    let dribble = tokio::spawn(async move {
        if tx
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tx
                .write_all(format!("X-Pad-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let ending = loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, rx.read(&mut buf)).await {
            Err(_) => break Ending::StillOpen,
            Ok(Ok(0)) => break Ending::Eof,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break Ending::Error,
        }
    };
    dribble.abort();
    let text = String::from_utf8_lossy(&got);
    assert_ne!(
        ending,
        Ending::StillOpen,
        "still connected after {:?} of dribbled headers: {text:?}",
        started.elapsed()
    );
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 408"),
        "the only answer to unfinished headers is a 408: {text:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http_header_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_one_response(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "the response keeps the connection alive, so the idle timeout is what closes it: {head}"
    );
    let started = Instant::now();
    let (got, ending) = read_until_end(
        &mut tcp,
        tokio::time::Instant::now() + Duration::from_secs(5),
    )
    .await;
    let text = String::from_utf8_lossy(&got);
    assert_ne!(
        ending,
        Ending::StillOpen,
        "an idle keep-alive connection was still open after {:?}",
        started.elapsed()
    );
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F5/F7: a client that stops reading pins its responses (and their memory) for ever.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_f7_a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.write_timeout = std::time::Duration::from_secs(1);
        c.http_header_timeout = std::time::Duration::from_secs(30);
    })
    .await;
    let alice = app.user("alice").await;
    let channel = unique("room:wt");
    let filler = "x".repeat(20 * 1024);
    for _ in 0..24 {
        let (status, body) = app
            .post(
                &format!("/api/v1/channels/{channel}/messages"),
                Some(&alice.access_token),
                json!({"data": {"t": filler}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // About 480 KB a response, 60 of them pipelined: far more than the socket buffers hold
    // (the client's receive buffer is made small), so the server's writes stall.
    const REQUESTS: usize = 60;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut tcp = socket.connect(app.addr).await.unwrap();
    let one = format!(
        "GET /api/v1/channels/{channel}/messages?limit=200 HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\n\r\n",
        alice.access_token
    );
    tcp.write_all(one.repeat(REQUESTS).as_bytes())
        .await
        .unwrap();
    // The client reads nothing for well past the write timeout...
    tokio::time::sleep(Duration::from_secs(4)).await;
    // ...and then finds the connection ended before all its responses.
    let (got, ending) = read_until_end(&mut tcp, tokio::time::Instant::now() + PATIENCE).await;
    let responses = got
        .windows(b"HTTP/1.1 200".len())
        .filter(|w| *w == b"HTTP/1.1 200")
        .count();
    assert_ne!(
        ending,
        Ending::StillOpen,
        "the stalled connection was kept ({responses} responses, {} bytes read)",
        got.len()
    );
    assert!(
        responses < REQUESTS,
        "every response was kept for a client that did not read for 4 s"
    );
    // The server itself is fine.
    assert_eq!(app.get("/healthz", None).await.0, 200);
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F5: a history page of big messages is limited by count only (up to 200 × 64 KiB at once).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_history_pages_are_cut_at_page_bytes_and_page_back_to_every_message() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.page_bytes = 64 * 1024).await;
    let alice = app.user("alice").await;
    let token = Some(alice.access_token.as_str());
    let channel = unique("room:big");
    let path = format!("/api/v1/channels/{channel}/messages");
    let filler = "x".repeat(20 * 1024);
    for i in 1..=20u64 {
        let (status, body) = app
            .post(&path, token, json!({"data": {"i": i, "t": filler}}))
            .await;
        assert_eq!((status, body["offset"].as_u64()), (201, Some(i)), "{body}");
    }
    let offsets = |page: &Value| -> Vec<u64> {
        page["messages"]
            .as_array()
            .expect("a page of messages")
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect()
    };
    // The newest page: cut short, the newest messages, in ascending order.
    let resp = app
        .http
        .get(app.url(&format!("{path}?limit=200")))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.len() < 200 * 1024,
        "a page of {} bytes under a 64 KiB page bound",
        text.len()
    );
    let page: Value = serde_json::from_str(&text).unwrap();
    let newest = offsets(&page);
    assert!(
        (1..=4).contains(&newest.len()),
        "{} messages of 20 KB in a 64 KiB page: {newest:?}",
        newest.len()
    );
    let n = newest.len() as u64;
    assert_eq!(newest, (21 - n..=20).collect::<Vec<_>>());
    // Paging back from each first offset reaches every message exactly once.
    let mut seen = newest.clone();
    let mut before = newest[0];
    loop {
        let (status, page) = app
            .get(&format!("{path}?limit=200&before={before}"), token)
            .await;
        assert_eq!(status, 200, "{page}");
        let got = offsets(&page);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 4, "{got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(*got.last().unwrap() < before, "{got:?} before {before}");
        before = got[0];
        seen.extend(got);
        assert!(seen.len() <= 20, "paging repeats messages: {seen:?}");
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    // Over a WebSocket the page is cut the same way, and the socket stays open.
    let mut ws = app.ws(&alice, Encoding::Json).await;
    let reply = request(
        &mut ws,
        json!({"type": "history", "channel": channel, "limit": 200}),
        &mut Vec::new(),
    )
    .await;
    assert_eq!(reply["type"], "ack", "{}", reply["code"]);
    let over_ws = offsets(&reply);
    assert!((1..=4).contains(&over_ws.len()), "{over_ws:?}");
    let n = over_ws.len() as u64;
    assert_eq!(over_ws, (21 - n..=20).collect::<Vec<_>>());
    assert_eq!(
        request(&mut ws, json!({"type": "ping"}), &mut Vec::new()).await["type"],
        "ack",
        "the socket is still open after the page"
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F7: the publish budget is per connection, so more connections (or HTTP) buy more.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_a_users_publish_budget_is_shared_by_all_their_connections_and_http() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.user_publish_rate = switchboard_tests::nz(1);
        c.user_publish_burst = switchboard_tests::nz(5);
        c.publish_rate = switchboard_tests::nz(1000);
        c.publish_burst = switchboard_tests::nz(1000);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let channel = unique("room:x");
    let mut a1 = app.ws(&alice, Encoding::Json).await;
    let mut a2 = app.ws(&alice, Encoding::Json).await;
    let started = Instant::now();
    let (mut acked, mut limited) = (0u64, 0u64);
    for ws in [&mut a1, &mut a2] {
        for i in 0..5 {
            let reply = publish(ws, &channel, json!({"i": i})).await;
            match (reply["type"].as_str(), reply["code"].as_str()) {
                (Some("ack"), _) => acked += 1,
                (Some("error"), Some("rate_limited")) => limited += 1,
                _ => panic!("unexpected reply {reply}"),
            }
        }
    }
    let (status, body) = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&alice.access_token),
            json!({"data": {"via": "http"}}),
        )
        .await;
    let elapsed = started.elapsed();
    // Burst 5, then one a second: whatever the connections, Alice gets no more than that.
    let http_ok = u64::from(status == 201);
    assert!(
        acked + http_ok <= 5 + elapsed.as_secs(),
        "{acked} WebSocket and {http_ok} HTTP publishes succeeded in {elapsed:?} with burst 5 \
         at 1/s"
    );
    assert!(limited >= 4, "{limited} of 10 refused");
    if elapsed < Duration::from_secs(1) {
        assert_eq!(status, 429, "HTTP publish on a spent budget: {body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    // Bob has his own budget.
    let mut b = app.ws(&bob, Encoding::Json).await;
    assert_eq!(
        publish(&mut b, &channel, json!({"bob": 1})).await["type"],
        "ack"
    );
    let (status, body) = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&bob.access_token),
            json!({"data": {"bob": 2}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F7: server API keys publish as `system` to rooms only, with their own budget.

const API_KEY: &str = "sk_test_0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_an_api_key_publishes_to_rooms_as_system_within_its_own_budget() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.api_keys = vec![API_KEY.into()];
        c.api_key_rate = switchboard_tests::nz(1);
        c.api_key_burst = switchboard_tests::nz(2);
    })
    .await;
    let alice = app.user("alice").await;
    let channel = unique("room:ops");
    let path = format!("/api/v1/channels/{channel}/messages");
    let mut listener = app.ws(&alice, Encoding::Json).await;
    assert_eq!(subscribe(&mut listener, &channel).await["type"], "ack");
    // Not a room: refused (and costs the key nothing).
    let (status, body) = app
        .post(
            &format!("/api/v1/channels/user:{}/messages", alice.id),
            Some(API_KEY),
            json!({"data": {"t": "spoofed notification"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    // A wrong key is no key.
    let (status, body) = app
        .post(
            &path,
            Some("sk_test_ffffffffffffffffffffffffffffffff"),
            json!({"data": {"t": "hi"}}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let started = Instant::now();
    let (status, body) = app
        .post(&path, Some(API_KEY), json!({"data": {"t": "hi"}}))
        .await;
    assert_eq!((status, &body), (201, &json!({"offset": 1})));
    let got = next_message(&mut listener).await;
    assert_eq!(
        (
            got["channel"].as_str(),
            got["offset"].as_u64(),
            got["from"].as_str()
        ),
        (Some(channel.as_str()), Some(1), Some("system")),
        "{got}"
    );
    assert_eq!(got["data"], json!({"t": "hi"}), "{got}");
    // Burst 2 at 1/s: the key runs out.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, body) = app
            .post(&path, Some(API_KEY), json!({"data": {"i": i}}))
            .await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        } else {
            assert_eq!(status, 201, "{body}");
        }
        statuses.push(status);
    }
    let elapsed = started.elapsed();
    let ok = 1 + statuses.iter().filter(|s| **s == 201).count() as u64;
    assert!(
        ok <= 2 + elapsed.as_secs(),
        "{ok} key publishes in {elapsed:?} with burst 2 at 1/s: {statuses:?}"
    );
    if elapsed < Duration::from_secs(1) {
        assert_eq!(statuses[..2], [201, 429], "{statuses:?}");
    }
    // The key's budget is not Alice's.
    let (status, body) = app
        .post(&path, Some(&alice.access_token), json!({"data": {"me": 1}}))
        .await;
    assert_eq!(status, 201, "{body}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F9: one socket toggling a subscription sends join/leave events to a whole room, unbounded.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f9_toggling_a_subscription_is_rate_limited_and_floods_no_presence_events() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.request_rate = switchboard_tests::nz(1);
        c.request_burst = switchboard_tests::nz(5);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let channel = unique("room:p");
    let mut watcher = app.ws(&bob, Encoding::Json).await;
    assert_eq!(subscribe(&mut watcher, &channel).await["type"], "ack");
    let mut toggler = app.ws(&alice, Encoding::Json).await;
    let started = Instant::now();
    let (mut acked, mut limited) = (0u64, 0u64);
    for i in 0..20 {
        let kind = if i % 2 == 0 {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let reply = request(
            &mut toggler,
            json!({"type": kind, "channel": channel}),
            &mut Vec::new(),
        )
        .await;
        match (reply["type"].as_str(), reply["code"].as_str()) {
            (Some("ack"), _) => acked += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            // An unsubscribe after a refused subscribe may be refused as such.
            (Some("error"), _) if kind == "unsubscribe" => {}
            _ => panic!("unexpected reply to {kind}: {reply}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        acked <= 5 + elapsed.as_secs(),
        "{acked} of 20 requests accepted in {elapsed:?} with burst 5 at 1/s"
    );
    assert!(limited >= 10, "only {limited} of 20 requests were refused");
    // Bob hears Alice come and go only as often as her requests were accepted.
    let mut events = 0u64;
    loop {
        match next(&mut watcher, Duration::from_millis(700)).await {
            Got::Frame(f) if f["type"] == "join" || f["type"] == "leave" => {
                if f["user"]["id"] == alice.id.as_str() {
                    events += 1;
                }
            }
            Got::Frame(_) => {}
            Got::Quiet => break,
            Got::Closed(code) => panic!("the watcher was closed ({code:?})"),
        }
    }
    assert!(events >= 1, "the first subscribe announced Alice");
    assert!(
        events <= acked,
        "{events} presence events from {acked} accepted requests"
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F8: a mention copies the whole message into every notification, and mentions are unbounded.

async fn inbox(app: &TestApp, user: &User) -> WsClient {
    let mut ws = app.ws(user, Encoding::Json).await;
    let reply = subscribe(&mut ws, &format!("user:{}", user.id)).await;
    assert_eq!(reply["type"], "ack", "{reply}");
    ws
}

async fn say(app: &TestApp, who: &User, channel: &str, text: &str) -> u64 {
    let (status, body) = app
        .post(
            &format!("/api/v1/channels/{channel}/messages"),
            Some(&who.access_token),
            json!({"data": {"text": text}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["offset"].as_u64().unwrap()
}

/// The next mention notification on `inbox`, if one arrives within `within`.
async fn next_mention(inbox: &mut WsClient, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(inbox, left).await {
            Got::Frame(f) if f["type"] == "message" && f["data"]["kind"] == "mention" => {
                return Some(f)
            }
            Got::Frame(_) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_a_large_mentioning_message_is_notified_by_excerpt_and_a_small_one_with_its_data() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let mut bob_inbox = inbox(&app, &bob).await;
    let channel = unique("room:m");
    let big = format!("@{} {}", bob.username, "x".repeat(5000));
    let offset = say(&app, &alice, &channel, &big).await;
    let got = next_mention(&mut bob_inbox, PATIENCE)
        .await
        .expect("a mention notification for the big message");
    let m = &got["data"]["message"];
    assert_eq!(m["offset"].as_u64(), Some(offset), "{m}");
    assert!(m["id"].as_str().is_some_and(|id| !id.is_empty()), "{m}");
    assert!(
        m.get("data").is_none(),
        "the big message's data was copied in"
    );
    let excerpt = m["excerpt"].as_str().expect("an excerpt");
    assert!(
        excerpt.chars().count() <= 281,
        "an excerpt of {} characters",
        excerpt.chars().count()
    );
    assert!(
        excerpt.starts_with(&format!("@{}", bob.username)),
        "{excerpt:?}"
    );
    assert!(
        got.to_string().len() < 2048,
        "a {} byte notification for a mention",
        got.to_string().len()
    );
    // The id names the message in history.
    let (status, page) = app
        .get(
            &format!("/api/v1/channels/{channel}/messages?before={}", offset + 1),
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["id"], m["id"], "{page}");
    // A small message still comes with its data.
    let small = format!("hi @{}", bob.username);
    let offset = say(&app, &alice, &channel, &small).await;
    let got = next_mention(&mut bob_inbox, PATIENCE)
        .await
        .expect("a mention notification for the small message");
    let m = &got["data"]["message"];
    assert_eq!(m["offset"].as_u64(), Some(offset), "{m}");
    assert_eq!(m["data"]["text"], small.as_str(), "{m}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_a_sender_notifies_at_most_mentions_per_min_messages_a_minute() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.mentions_per_min = switchboard_tests::nz(2)
    })
    .await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let mut bob_inbox = inbox(&app, &bob).await;
    let channel = unique("room:m");
    let mut offsets = Vec::new();
    for i in 1..=3 {
        offsets.push(
            say(
                &app,
                &alice,
                &channel,
                &format!("@{} ping {i}", bob.username),
            )
            .await,
        );
    }
    // Carol's mention is stored after Alice's third, so when it has arrived Alice's third has
    // been decided; a little more quiet lets a late one show.
    let carols = say(&app, &carol, &channel, &format!("@{} hello", bob.username)).await;
    let mut from_alice = Vec::new();
    let mut carol_heard = false;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let within = if carol_heard {
            Duration::from_millis(700)
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        let Some(got) = next_mention(&mut bob_inbox, within).await else {
            break;
        };
        let offset = got["data"]["message"]["offset"].as_u64().unwrap();
        if got["data"]["from"]["id"] == carol.id.as_str() {
            assert_eq!(offset, carols);
            carol_heard = true;
        } else {
            assert_eq!(got["data"]["from"]["id"], alice.id.as_str(), "{got}");
            from_alice.push(offset);
        }
    }
    assert!(carol_heard, "another sender's mention was held back");
    from_alice.sort_unstable();
    assert_eq!(
        from_alice,
        offsets[..2],
        "Alice's mentions past 2 a minute were notified"
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F17: a room created with an unbounded member list (one lookup and one insert per member), and
// an unpaginated room list.

const ROOMS: &str = "/api/v1/rooms";

/// Registers `n` users (without logging them in) and returns their names.
async fn register_many(app: &TestApp, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|_| unique("m")).collect();
    let statuses: Vec<(u16, Value)> = futures::stream::iter(names.iter())
        .map(|name| app.register(name, "correct horse battery"))
        .buffer_unordered(4)
        .collect()
        .await;
    for (status, body) in statuses {
        assert_eq!(status, 201, "register: {body}");
    }
    names
}

async fn create_room(
    app: &TestApp,
    owner: &User,
    name: &str,
    private: bool,
    members: &[String],
) -> (u16, Value) {
    app.post(
        ROOMS,
        Some(&owner.access_token),
        json!({"name": name, "private": private, "members": members}),
    )
    .await
}

on_both_backends!(f17_a_room_is_created_with_at_most_100_members_all_of_them_known);

/// F17: room creation took any number of members, each resolved and inserted on its own.
async fn f17_a_room_is_created_with_at_most_100_members_all_of_them_known(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice").await;
    let names = register_many(&app, 101).await;
    let room = unique("big");
    // 101 registered members: refused for their number, and nothing is created.
    let (status, body) = create_room(&app, &alice, &room, true, &names).await;
    assert_eq!(status, 422, "101 members: {}", body["error"]);
    assert_eq!(body["error"]["code"], "unprocessable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100")),
        "{body}"
    );
    // Unknown names: refused, naming each of them (and not the known one).
    let (ghost, phantom) = (unique("ghost"), unique("phantom"));
    let some = vec![names[0].clone(), ghost.clone(), phantom.clone()];
    let (status, body) = create_room(&app, &alice, &room, true, &some).await;
    assert_eq!(status, 422, "unknown members: {body}");
    assert_eq!(body["error"]["code"], "unprocessable", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&ghost) && message.contains(&phantom),
        "the unknown names are named: {body}"
    );
    assert!(
        !message.contains(&names[0]),
        "a known name is named: {body}"
    );
    // 100: created on the same name (the refusals created nothing), with all of them and Alice.
    let hundred = &names[..100];
    let (status, body) = create_room(&app, &alice, &room, true, hundred).await;
    assert_eq!(status, 201, "100 members: {body}");
    let mut members: Vec<String> = body["room"]["members"]
        .as_array()
        .expect("a members list")
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = hundred.to_vec();
    expected.push(alice.username.clone());
    expected.sort();
    assert_eq!(members, expected);
    assert!(
        body["room"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"].as_str().is_some_and(|id| !id.is_empty())),
        "{body}"
    );
    assert_eq!(body["room"]["private"], true, "{body}");
    // The 101st user is not in.
    let outsider = &names[100];
    let (status, body) = app.login(outsider, "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = app.get(ROOMS, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rooms"], json!([]), "{body}");
    app.stop().await.unwrap();
}

on_both_backends!(f17_the_room_list_pages_by_name_through_every_visible_room_once);

/// The room names on a page of `GET /api/v1/rooms`, and its `next_after`.
fn room_page(page: &Value) -> (Vec<String>, Option<String>) {
    let names = page["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("a page of rooms: {page}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    (names, page["next_after"].as_str().map(str::to_owned))
}

/// F17: `GET /api/v1/rooms` listed every room at once.
async fn f17_the_room_list_pages_by_name_through_every_visible_room_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob, mallory) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("mallory").await,
    );
    for name in ["r3", "r1", "r6", "r5", "r2", "r4"] {
        let (status, body) = create_room(&app, &alice, name, false, &[]).await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    // Private rooms: one Alice is in, two she is not (one sorts in the middle, one last).
    let with_alice = [alice.username.clone()];
    let (status, body) = create_room(&app, &bob, "r4p", true, &with_alice).await;
    assert_eq!(status, 201, "{body}");
    for name in ["r2s", "r9s"] {
        let (status, body) = create_room(&app, &mallory, name, true, &[]).await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    let token = Some(alice.access_token.as_str());
    let (status, first) = app.get(&format!("{ROOMS}?limit=2"), token).await;
    assert_eq!(status, 200, "{first}");
    let (names, mut next_after) = room_page(&first);
    assert_eq!(names, ["r1", "r2"], "{first}");
    assert_eq!(next_after.as_deref(), Some("r2"), "{first}");
    assert_eq!(first["rooms"][0]["channel"], "room:r1", "{first}");
    assert_eq!(first["rooms"][0]["private"], false, "{first}");
    assert_eq!(
        first["rooms"][0]["created_by"],
        alice.id.as_str(),
        "{first}"
    );
    let mut seen = names;
    let mut pages = 1;
    while let Some(after) = next_after {
        let (status, page) = app
            .get(&format!("{ROOMS}?after={after}&limit=2"), token)
            .await;
        assert_eq!(status, 200, "{page}");
        let (names, next) = room_page(&page);
        assert!(names.len() <= 2, "{page}");
        assert!(
            names.iter().all(|n| n.as_str() > after.as_str()),
            "a page after {after:?}: {page}"
        );
        seen.extend(names);
        next_after = next;
        pages += 1;
        assert!(pages <= 10, "paging does not end: {seen:?}");
    }
    assert_eq!(
        seen,
        ["r1", "r2", "r3", "r4", "r4p", "r5", "r6"],
        "every room Alice may see, once each, by name"
    );
    assert_eq!(pages, 4, "7 rooms in pages of 2, the last one short");
    // The default page (50) holds them all, and says it is the last.
    let (status, all) = app.get(ROOMS, token).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(room_page(&all), (seen, None));
    // Mallory sees her private rooms, not Bob's.
    let (status, page) = app.get(ROOMS, Some(&mallory.access_token)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        room_page(&page).0,
        ["r1", "r2", "r2s", "r3", "r4", "r5", "r6", "r9s"]
    );
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F19: unbounded reactions per user (each one notifies the author), every emoji of a post
// shown at once, and follow/unfollow loops that notify on every follow.

/// Posts `{"text": ...}` as `author`; returns the post's id.
async fn new_post(app: &TestApp, author: &User, text: &str) -> String {
    let (status, body) = app
        .post(
            "/api/v1/posts",
            Some(&author.access_token),
            json!({"data": {"text": text}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["post"]["id"].as_str().unwrap().to_owned()
}

async fn react(app: &TestApp, who: &User, post: &str, emoji: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/posts/{post}/reactions"),
        Some(&who.access_token),
        json!({"emoji": emoji}),
    )
    .await
}

on_both_backends!(f19_a_user_puts_at_most_10_distinct_reactions_on_a_post);

/// F19: a user could put any number of distinct reactions on a post, each notifying its author.
async fn f19_a_user_puts_at_most_10_distinct_reactions_on_a_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let post = new_post(&app, &bob, "react to me").await;
    for i in 1..=10 {
        let (status, body) = react(&app, &alice, &post, &format!("e{i}")).await;
        assert_eq!(status, 201, "reaction {i}: {body}");
        assert_eq!(body["reaction"]["emoji"], format!("e{i}"), "{body}");
    }
    let (status, body) = react(&app, &alice, &post, "e11").await;
    assert_eq!(status, 422, "an 11th distinct reaction: {body}");
    assert_eq!(body["error"]["code"], "unprocessable", "{body}");
    let (status, body) = react(&app, &alice, &post, "e4").await;
    assert_eq!(status, 200, "one she already has: {body}");
    // Taking one back makes room for another, and only one.
    let path = format!("/api/v1/posts/{post}/reactions");
    let token = Some(alice.access_token.as_str());
    let (status, body) = app.delete(&path, token, json!({"emoji": "e4"})).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = react(&app, &alice, &post, "e11").await;
    assert_eq!(status, 201, "after removing one: {body}");
    let (status, body) = react(&app, &alice, &post, "e12").await;
    assert_eq!(status, 422, "the cap again: {body}");
    // The cap is per user and per post.
    let (status, body) = react(&app, &bob, &post, "e12").await;
    assert_eq!(status, 201, "another user: {body}");
    let other = new_post(&app, &bob, "another post").await;
    let (status, body) = react(&app, &alice, &other, "e12").await;
    assert_eq!(status, 201, "another post: {body}");
    // Bob heard of each of Alice's new reactions to his first post: 11, not one per attempt.
    let (status, body) = app
        .get("/api/v1/notifications?limit=100", Some(&bob.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    let on_first = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "reaction" && n["post_id"] == post.as_str())
        .count();
    assert_eq!(on_first, 11, "{body}");
    app.stop().await.unwrap();
}

on_both_backends!(f19_concurrent_reactions_of_one_user_still_stop_at_10_distinct);

/// F19: the cap holds when a user sends all their reactions at once (each checks the count,
/// then inserts: concurrent ones must not all see room for one more).
async fn f19_concurrent_reactions_of_one_user_still_stop_at_10_distinct(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let post = new_post(&app, &bob, "react to me, all at once").await;
    let emoji: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let replies =
        futures::future::join_all(emoji.iter().map(|e| react(&app, &alice, &post, e))).await;
    let mut created = 0;
    for (status, body) in &replies {
        match status {
            201 => created += 1,
            422 => assert_eq!(body["error"]["code"], "unprocessable", "{body}"),
            _ => panic!("unexpected reply {status}: {body}"),
        }
    }
    let (status, body) = app
        .get(&format!("/api/v1/posts/{post}"), Some(&bob.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = body["post"]["reactions"].as_array().map(Vec::len);
    assert!(
        created <= 10,
        "{created} of 40 concurrent distinct reactions were accepted; the post shows {shown:?}"
    );
    assert_eq!(created, 10, "the first ten fit");
    assert_eq!(shown, Some(10), "{body}");
    app.stop().await.unwrap();
}

on_both_backends!(f19_a_post_shows_its_20_most_used_emoji_most_used_first);

/// F19: a post showed the count of every emoji on it, however many.
async fn f19_a_post_shows_its_20_most_used_emoji_most_used_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let author = app.user("author").await;
    let post = new_post(&app, &author, "popular").await;
    let p: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let q: Vec<String> = (0..5).map(|i| format!("q{i}")).collect();
    let r: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
    // Three users, ten distinct each: 22 distinct emoji, six of them used more than once.
    let sets: [Vec<&String>; 3] = [
        p.iter().collect(),
        p[..5].iter().chain(&q).collect(),
        p[..2].iter().chain(&q[..1]).chain(&r).collect(),
    ];
    let mut counts = std::collections::HashMap::<String, i64>::new();
    for set in &sets {
        let user = app.user("fan").await;
        for emoji in set {
            let (status, body) = react(&app, &user, &post, emoji).await;
            assert_eq!(status, 201, "{emoji}: {body}");
            *counts.entry((*emoji).clone()).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 22);
    let (status, body) = app
        .get(&format!("/api/v1/posts/{post}"), Some(&author.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    let shown: Vec<(String, i64)> = body["post"]["reactions"]
        .as_array()
        .unwrap_or_else(|| panic!("reactions: {body}"))
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 20, "{shown:?}");
    for (emoji, count) in &shown {
        assert_eq!(counts.get(emoji), Some(count), "{emoji}: {shown:?}");
    }
    assert!(
        shown.windows(2).all(|w| w[0].1 >= w[1].1),
        "most used first: {shown:?}"
    );
    let mut top: Vec<&str> = shown[..6].iter().map(|(e, _)| e.as_str()).collect();
    top.sort_unstable();
    assert_eq!(top, ["p0", "p1", "p2", "p3", "p4", "q0"], "{shown:?}");
    assert_eq!((shown[0].1, shown[1].1, shown[2].1), (3, 3, 2), "{shown:?}");
    app.stop().await.unwrap();
}

/// F19: following, unfollowing and following again notified the followed user every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f19_follow_unfollow_loops_notify_the_followed_user_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let mut bob_inbox = inbox(&app, &bob).await;
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    let token = Some(alice.access_token.as_str());
    for round in 1..=3 {
        let (status, body) = app.post(&follow, token, json!(null)).await;
        assert_eq!(status, 201, "follow {round}: {body}");
        let (status, body) = app.post(&follow, token, json!(null)).await;
        assert_eq!(status, 200, "already following ({round}): {body}");
        let (status, body) = app.delete(&follow, token, json!(null)).await;
        assert_eq!(status, 204, "unfollow {round}: {body}");
    }
    let (status, body) = app.post(&follow, token, json!(null)).await;
    assert_eq!(status, 201, "the last follow: {body}");
    // Carol following Bob is another pair: she is announced too.
    let (status, body) = app
        .post(&follow, Some(&carol.access_token), json!(null))
        .await;
    assert_eq!(status, 201, "{body}");
    // Carol's follow came after all of Alice's: once it is in, Alice's have been decided.
    let mut from = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !from.contains(&carol.id) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(&mut bob_inbox, left).await {
            Got::Frame(f) if f["type"] == "message" && f["data"]["kind"] == "follow" => {
                from.push(f["data"]["from"]["id"].as_str().unwrap().to_owned());
            }
            Got::Frame(_) => {}
            other => panic!("Carol's follow notification did not arrive: {other:?} ({from:?})"),
        }
    }
    loop {
        match next(&mut bob_inbox, Duration::from_millis(500)).await {
            Got::Frame(f) if f["type"] == "message" && f["data"]["kind"] == "follow" => {
                from.push(f["data"]["from"]["id"].as_str().unwrap().to_owned());
            }
            Got::Frame(_) => {}
            _ => break,
        }
    }
    from.sort();
    let mut expected = vec![alice.id.clone(), carol.id.clone()];
    expected.sort();
    assert_eq!(from, expected, "follow notifications on user:{}", bob.id);
    // The stored notifications say the same.
    let (status, body) = app
        .get("/api/v1/notifications", Some(&bob.access_token))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut stored: Vec<&str> = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "follow")
        .map(|n| n["from"]["id"].as_str().unwrap())
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, expected, "{body}");
    // Alice does follow Bob after all that.
    let (status, body) = app
        .get(
            &format!("/api/v1/users/{}/followers", bob.id),
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"].as_array().map(Vec::len), Some(2), "{body}");
    app.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// F25: whoever can PUBLISH on the cluster's Redis injects messages and revocations.

/// A message envelope as a node writes it (`bus::envelope`): the same fields in the same order,
/// serialised the same way (`rmp_serde::to_vec`, a MessagePack array).
#[derive(serde::Serialize)]
struct ForgedMessage<'a> {
    n: &'a str,
    c: &'a str,
    o: u64,
    i: &'a str,
    f: &'a str,
    t: i64,
    d: &'a str,
}

/// A control envelope as a node writes it.
#[derive(serde::Serialize)]
struct ForgedControl {
    n: String,
    e: switchboard_server::testing::ControlEvent,
}

/// `PUBLISH key payload` on the tests' Redis; returns how many subscribers got it.
async fn redis_publish(key: &str, payload: Vec<u8>) -> i64 {
    let client = redis::Client::open(switchboard_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(key)
        .arg(payload)
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_millis() as i64
}

/// F25: a well-formed but unsigned message envelope on `<prefix>ch:room:x` was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f25_an_unsigned_message_envelope_on_redis_is_dropped() {
    // The bus MAC is on by default.
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let (alice, bob) = (nodes[0].user("alice").await, nodes[0].user("bob").await);
    let channel = "room:x";
    let mut listener = nodes[1].ws(&bob, Encoding::Json).await;
    assert_eq!(subscribe(&mut listener, channel).await["type"], "ack");
    let forged = ForgedMessage {
        n: "mallory-node",
        c: channel,
        o: 1,
        i: "forged",
        f: "mallory",
        t: now_ms(),
        d: r#"{"t":"forged"}"#,
    };
    let key = format!("{}ch:{channel}", nodes[1].redis_prefix);
    // The node's own shape (an array) and the same fields as a map (both decode, unsealed), and
    // the array sealed with a key that is not the cluster's.
    let wrong_key = Seal::new(b"not-the-cluster-secret-not-the-cluster-secret", true);
    for payload in [
        rmp_serde::to_vec(&forged).unwrap(),
        rmp_serde::to_vec_named(&forged).unwrap(),
        wrong_key.seal(rmp_serde::to_vec(&forged).unwrap()),
    ] {
        let heard = redis_publish(&key, payload).await;
        assert!(heard >= 1, "node B is not subscribed to {key}");
    }
    loop {
        match next(&mut listener, Duration::from_millis(700)).await {
            Got::Frame(f) => assert_ne!(f["type"], "message", "a forged envelope arrived: {f}"),
            Got::Quiet => break,
            Got::Closed(code) => panic!("the listener was closed ({code:?})"),
        }
    }
    // A genuine publish through node A takes offset 1, and arrives: the forged offset 1 did not
    // stand in for it.
    let mut publisher = nodes[0].ws(&alice, Encoding::Json).await;
    let ack = publish(&mut publisher, channel, json!({"t": "genuine"})).await;
    assert_eq!(
        (ack["type"].as_str(), ack["offset"].as_u64()),
        (Some("ack"), Some(1)),
        "{ack}"
    );
    let got = next_message(&mut listener).await;
    assert_eq!(
        (
            got["channel"].as_str(),
            got["offset"].as_u64(),
            got["from"].as_str()
        ),
        (Some(channel), Some(1), Some(alice.id.as_str())),
        "{got}"
    );
    assert_eq!(got["data"], json!({"t": "genuine"}), "{got}");
    drop((listener, publisher));
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}

/// F25: an unsigned `Revoked(session)` control envelope on `<prefix>ctl` closed the victim's
/// sockets and refused their tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f25_an_unsigned_revocation_on_redis_closes_no_socket() {
    // The bus MAC is on by default.
    let (_db, nodes) = TestApp::spawn_cluster(2, |_| {}).await;
    let victim = nodes[0].user("victim").await;
    let mut ws = nodes[1].ws(&victim, Encoding::Json).await;
    let session = victim.refresh_token.split_once('.').unwrap().0.to_owned();
    let forged = ForgedControl {
        n: "mallory-node".into(),
        e: switchboard_server::testing::ControlEvent::Revoked(session),
    };
    let key = format!("{}ctl", nodes[1].redis_prefix);
    let heard = redis_publish(&key, rmp_serde::to_vec(&forged).unwrap()).await;
    assert_eq!(heard, 2, "both nodes listen on {key}");
    // A second later the socket is open and serves requests, and the token still works.
    match next(&mut ws, Duration::from_secs(1)).await {
        Got::Quiet => {}
        other => panic!("after a forged revocation the socket got {other:?}"),
    }
    assert_eq!(
        request(&mut ws, json!({"type": "ping"}), &mut Vec::new()).await["type"],
        "ack"
    );
    let reply = subscribe(&mut ws, "room:after").await;
    assert_eq!(reply["type"], "ack", "{reply}");
    for node in &nodes {
        let (status, body) = node
            .get(
                "/api/v1/notifications/unread_count",
                Some(&victim.access_token),
            )
            .await;
        assert_eq!(status, 200, "the victim's token: {body}");
    }
    drop(ws);
    for node in nodes {
        node.stop_node().await.unwrap();
    }
}
