//! A real cluster (`scripts/cluster`: three `switchboard` processes behind nginx): one node is
//! drained with SIGTERM and another killed with `kill -9` mid-stream; clients reconnect through
//! the load balancer with `since` and miss nothing. A browser's same-origin socket through the
//! balancer is accepted (nginx passes the Host with its port).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_protocol::{ClientFrame, ServerFrame};
use switchboard_tests::client::Ended;
use switchboard_tests::process::server_binary;
use switchboard_tests::{redis_url, Backend, Encoding, TestDb, WsClient, SECRET};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A base port with `n` consecutive free ports after it, plus one more free port.
fn free_ports(n: u16) -> (u16, u16) {
    let lb = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    loop {
        let base = 20_000 + (rand::random::<u16>() % 20_000);
        if (base..base + n).all(|p| p != lb && TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return (base, lb);
        }
    }
}

fn cluster(args: &[&str], env: &[(&str, String)]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/cluster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops the cluster in its folder when dropped, so a failing test leaves no processes behind.
struct StopOnDrop(String);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // No assertion here: this may run while the test is already panicking.
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/cluster");
        let _ = Command::new("bash")
            .arg(script)
            .args(["stop", "--dir", &self.0])
            .output();
    }
}

/// Follows `channel` through the load balancer until it has everything up to `last` (once
/// known), reconnecting with `since` whenever its node goes away. Returns the offsets received.
async fn follow(
    url: String,
    token: String,
    channel: &'static str,
    last: Arc<AtomicU64>,
) -> Vec<u64> {
    let mut got: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "follower stuck at {:?}",
            got.last()
        );
        let Ok(mut ws) = WsClient::connect(&url, Encoding::Json, Some(&token)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let since = got.last().copied().unwrap_or(0);
        let id = ws.id();
        ws.send(&ClientFrame::Subscribe {
            id,
            channel: channel.into(),
            since: Some(since),
        })
        .await;
        loop {
            let target = last.load(Ordering::SeqCst);
            if target > 0 && got.last().copied().unwrap_or(0) >= target {
                return got;
            }
            match ws.next(Duration::from_millis(500)).await {
                Ok(ServerFrame::Message(m)) => got.push(m.offset),
                Ok(ServerFrame::Reconnect { after_ms }) => {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    break;
                }
                // A node in the middle of shutting down may answer `unavailable`: go elsewhere.
                Ok(ServerFrame::Error(e))
                    if e.code == switchboard_protocol::ErrorCode::Unavailable =>
                {
                    break
                }
                Ok(ServerFrame::Error(e)) => panic!("error frame {e:?}"),
                Ok(_) | Err(Ended::TimedOut) => {}
                Err(Ended::Closed(_)) => break,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_kill_behind_a_load_balancer_lose_nothing() {
    const N: u64 = 300;
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let (base, lb) = free_ports(3);
    let env = vec![
        ("DATABASE_URL", db.url().unwrap()),
        ("REDIS_URL", redis_url()),
        (
            "SWITCHBOARD_REDIS_PREFIX",
            format!("sbtest:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("SWITCHBOARD_SECRET", SECRET.to_owned()),
        ("SWITCHBOARD_BIN", server_binary().display().to_string()),
        ("SWITCHBOARD_DRAIN_WINDOW_MS", "300".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let dir_arg = dir.path().display().to_string();
    let (base_arg, lb_arg) = (base.to_string(), lb.to_string());
    cluster(
        &[
            "start",
            "--nodes",
            "3",
            "--base-port",
            &base_arg,
            "--lb-port",
            &lb_arg,
            "--dir",
            &dir_arg,
        ],
        &env,
    );
    let _stop = StopOnDrop(dir_arg.clone());
    let url = format!("ws://127.0.0.1:{lb}/ws");
    // A page served through the balancer opens its socket with the balancer's origin, port
    // included: same-origin only if nginx passes the Host on with its port ($http_host).
    let mut browser = url.as_str().into_client_request().unwrap();
    browser.headers_mut().insert(
        "Origin",
        HeaderValue::from_str(&format!("http://127.0.0.1:{lb}")).unwrap(),
    );
    if let Err(e) = tokio_tungstenite::connect_async(browser).await {
        panic!("a same-origin upgrade through nginx was refused: {e}");
    }
    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{lb}{path}");
    let token = switchboard_tests::register_and_login(&api(""), "follower").await;

    let channel = "room:lb";
    let last = Arc::new(AtomicU64::new(0));
    let followers: Vec<_> = (0..9)
        .map(|_| tokio::spawn(follow(url.clone(), token.clone(), channel, last.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The publisher also goes through the load balancer and carries on after losing its node.
    let publisher = {
        let (url, token) = (url.clone(), token.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut seq = 0;
            while seq < N {
                let Ok(mut ws) = WsClient::connect(&url, Encoding::Json, Some(&token)).await else {
                    continue;
                };
                'connection: while seq < N {
                    seq += 1;
                    let id = seq as i64;
                    ws.send(&ClientFrame::Publish {
                        id,
                        channel: channel.into(),
                        data: json!({ "seq": seq }),
                        idempotency_key: None,
                    })
                    .await;
                    loop {
                        match ws.next(Duration::from_secs(10)).await {
                            Ok(ServerFrame::Ack(a)) if a.id == id => {
                                acked.push(a.offset.unwrap());
                                break;
                            }
                            // Not acked: it may or may not be stored; the next one goes elsewhere.
                            Ok(ServerFrame::Error(_) | ServerFrame::Reconnect { .. }) | Err(_) => {
                                break 'connection
                            }
                            Ok(_) => {}
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            acked
        })
    };

    let pid = |i: u32| {
        std::fs::read_to_string(dir.path().join(format!("node{i}.pid")))
            .unwrap()
            .trim()
            .to_owned()
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(Command::new("kill")
        .args(["-TERM", &pid(1)])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(Command::new("kill")
        .args(["-KILL", &pid(2)])
        .status()
        .unwrap()
        .success());

    let acked = tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("publisher finished")
        .unwrap();
    // Everything stored (acked or not: a publish whose ack died with its node may be stored).
    let page: serde_json::Value = http
        .get(api(&format!("/api/v1/channels/{channel}/messages?limit=1")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = page["messages"][0]["offset"].as_u64().unwrap();
    assert!(stored >= *acked.iter().max().unwrap());
    last.store(stored, Ordering::SeqCst);
    for f in followers {
        let got = tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("follower finished")
            .unwrap();
        assert_eq!(
            got,
            (1..=stored).collect::<Vec<_>>(),
            "every follower: all of 1..={stored}, once, in order"
        );
    }
}
