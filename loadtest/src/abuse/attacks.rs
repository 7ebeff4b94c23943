//! The attackers of an `abuse` run. Each is one task that loops until told to stop, bounded in
//! how much it holds open at once, and tallies what the server answered it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::Tally;
use crate::tokens::Minter;

/// How many of each attacker, and how hard (all bounded; 0 turns one off).
#[derive(Debug, Clone)]
pub struct Attackers {
    /// Concurrent registration requests from forged addresses.
    pub register: usize,
    /// Concurrent failed logins from forged addresses.
    pub login: usize,
    /// WebSockets one user tries to open (held while the run lasts).
    pub user_sockets: usize,
    /// Slowloris clients sending one header line a second.
    pub slowloris: usize,
    /// Concurrent readers of 200-message history pages of large messages.
    pub history_readers: usize,
    /// Messages of ~60 KB stored for the history readers.
    pub big_messages: usize,
    /// Concurrent publishers of messages mentioning 20 users.
    pub mention_publishers: usize,
    /// One socket toggling a subscription to the honest channel.
    pub toggle: bool,
    /// Time given to set up (store the large messages) before the honest run starts.
    pub head_start: Duration,
}

pub struct Running {
    tasks: Vec<(&'static str, JoinHandle<Tally>)>,
}

impl Running {
    pub async fn finish(self) -> std::collections::BTreeMap<&'static str, Tally> {
        let mut all = std::collections::BTreeMap::new();
        for (name, task) in self.tasks {
            let tally = task
                .await
                .unwrap_or_else(|_| Tally::from([("attacker task panicked".to_owned(), 1)]));
            all.insert(name, tally);
        }
        all
    }
}

fn count(tally: &mut Tally, outcome: impl Into<String>) {
    *tally.entry(outcome.into()).or_default() += 1;
}

/// An address from the documentation ranges, for forged `X-Forwarded-For` hops.
fn forged_address() -> String {
    format!("198.18.{}.{}", rand_byte(), rand_byte())
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

impl Attackers {
    pub fn start(
        &self,
        ws_url: &str,
        http_base: &str,
        minter: Minter,
        honest_channel: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<Running> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let minter = std::sync::Arc::new(minter);
        let mut tasks: Vec<(&'static str, JoinHandle<Tally>)> = Vec::new();
        let ctx = Ctx {
            http,
            base: http_base.to_owned(),
            ws_url: ws_url.to_owned(),
            minter,
            stop,
        };
        if self.register > 0 {
            tasks.push((
                "registration flood",
                tokio::spawn(register(ctx.clone(), self.register)),
            ));
        }
        if self.login > 0 {
            tasks.push(("login spray", tokio::spawn(login(ctx.clone(), self.login))));
        }
        if self.user_sockets > 0 {
            tasks.push((
                "sockets of one user",
                tokio::spawn(user_sockets(ctx.clone(), self.user_sockets)),
            ));
        }
        if self.slowloris > 0 {
            tasks.push((
                "slowloris",
                tokio::spawn(slowloris(ctx.clone(), self.slowloris)),
            ));
        }
        if self.history_readers > 0 && self.big_messages > 0 {
            tasks.push((
                "history storm",
                tokio::spawn(history_storm(
                    ctx.clone(),
                    self.history_readers,
                    self.big_messages,
                )),
            ));
        }
        if self.mention_publishers > 0 {
            tasks.push((
                "mention flood",
                tokio::spawn(mentions(ctx.clone(), self.mention_publishers)),
            ));
        }
        if self.toggle {
            tasks.push((
                "presence toggling",
                tokio::spawn(toggle(ctx.clone(), honest_channel.to_owned())),
            ));
        }
        Ok(Running { tasks })
    }
}

#[derive(Clone)]
struct Ctx {
    http: reqwest::Client,
    base: String,
    ws_url: String,
    minter: std::sync::Arc<Minter>,
    stop: CancellationToken,
}

/// Runs `n` copies of `one` until stopped and merges their tallies.
async fn each<F, Fut>(n: usize, one: F) -> Tally
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(one(i))).collect();
    let mut all = Tally::new();
    for task in tasks {
        if let Ok(tally) = task.await {
            for (k, v) in tally {
                *all.entry(k).or_default() += v;
            }
        }
    }
    all
}

async fn post(ctx: &Ctx, path: &str, body: serde_json::Value, bearer: Option<&str>) -> String {
    let mut request = ctx
        .http
        .post(format!("{}{path}", ctx.base))
        .header("x-forwarded-for", forged_address())
        .json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    tokio::select! {
        _ = ctx.stop.cancelled() => "stopped".to_owned(),
        sent = request.send() => match sent {
            Ok(r) => r.status().as_u16().to_string(),
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(_) => "error".to_owned(),
        },
    }
}

async fn register(ctx: Ctx, n: usize) -> Tally {
    flood(ctx, n, "/api/v1/auth/register", || {
        let name = format!("ab{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        json!({ "username": name, "password": "correct horse battery" })
    })
    .await
}

async fn login(ctx: Ctx, n: usize) -> Tally {
    flood(ctx, n, "/api/v1/auth/login", || {
        let name = format!("victim{}", rand_byte() % 16);
        json!({ "username": name, "password": "guess-guess-guess" })
    })
    .await
}

/// `n` clients posting `body()` to `path` (from forged addresses, without a token) as fast as
/// they are answered, until stopped.
async fn flood(ctx: Ctx, n: usize, path: &'static str, body: fn() -> serde_json::Value) -> Tally {
    each(n, |_| {
        let ctx = ctx.clone();
        async move {
            let mut tally = Tally::new();
            while !ctx.stop.is_cancelled() {
                count(&mut tally, post(&ctx, path, body(), None).await);
            }
            tally
        }
    })
    .await
}

/// Opens sockets for one user until `n` attempts were made, holding the accepted ones open.
async fn user_sockets(ctx: Ctx, n: usize) -> Tally {
    let mut tally = Tally::new();
    let Ok(token) = ctx.minter.token(0) else {
        count(&mut tally, "no token");
        return tally;
    };
    let mut held = Vec::new();
    for _ in 0..n {
        if ctx.stop.is_cancelled() {
            break;
        }
        let Ok(mut request) = ctx.ws_url.as_str().into_client_request() else {
            count(&mut tally, "bad url");
            break;
        };
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.headers_mut().insert("authorization", value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => {
                count(&mut tally, "opened");
                held.push(socket);
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                count(&mut tally, response.status().as_u16().to_string())
            }
            Err(_) => count(&mut tally, "error"),
        }
    }
    ctx.stop.cancelled().await;
    drop(held);
    tally
}

/// Each client sends a request's headers one line a second and never finishes them.
async fn slowloris(ctx: Ctx, n: usize) -> Tally {
    let addr = ctx.base.trim_start_matches("http://").to_owned();
    each(n, |_| {
        let (ctx, addr) = (ctx.clone(), addr.clone());
        async move {
            let mut tally = Tally::new();
            while !ctx.stop.is_cancelled() {
                let Ok(mut tcp) = tokio::net::TcpStream::connect(&addr).await else {
                    count(&mut tally, "connect failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                count(&mut tally, "opened");
                let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                let mut buf = [0u8; 512];
                let ended = loop {
                    tokio::select! {
                        _ = ctx.stop.cancelled() => break "still open at the end",
                        read = tcp.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break "closed by the server",
                            Ok(_) if buf.starts_with(b"HTTP/1.1 503") => break "refused 503",
                            Ok(_) => break "answered",
                        },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {
                            if tcp.write_all(b"X-Slow: yes\r\n").await.is_err() {
                                break "closed by the server";
                            }
                        }
                    }
                };
                count(&mut tally, ended);
            }
            tally
        }
    })
    .await
}

/// Stores `messages` of ~60 KB in a room, then reads 200-message pages of it from `n` readers
/// (each its own user) as fast as it is answered.
async fn history_storm(ctx: Ctx, n: usize, messages: usize) -> Tally {
    let mut tally = Tally::new();
    let channel = format!(
        "room:abuse-big-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let Ok(writer) = ctx.minter.token(1) else {
        count(&mut tally, "no token");
        return tally;
    };
    let data = json!({ "data": vec![0u8; 30_000] });
    for _ in 0..messages {
        let status = post(
            &ctx,
            &format!("/api/v1/channels/{channel}/messages"),
            data.clone(),
            Some(&writer),
        )
        .await;
        count(&mut tally, format!("store {status}"));
    }
    let readers = each(n, |i| {
        let (ctx, channel) = (ctx.clone(), channel.clone());
        async move {
            let mut tally = Tally::new();
            let Ok(token) = ctx.minter.token(100 + i as u64) else {
                return tally;
            };
            let url = format!("{}/api/v1/channels/{channel}/messages?limit=200", ctx.base);
            while !ctx.stop.is_cancelled() {
                let outcome = tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    sent = ctx.http.get(&url).bearer_auth(&token).send() => match sent {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let bytes = r.bytes().await.map_or(0, |b| b.len());
                            if status == 200 {
                                *tally.entry("bytes read".into()).or_default() += bytes as u64;
                            }
                            format!("read {status}")
                        }
                        Err(_) => "read error".to_owned(),
                    },
                };
                count(&mut tally, outcome);
            }
            tally
        }
    })
    .await;
    tally.extend(readers);
    tally
}

/// Publishers of messages that mention 20 (nonexistent) users, to ever new rooms.
async fn mentions(ctx: Ctx, n: usize) -> Tally {
    each(n, |i| {
        let ctx = ctx.clone();
        async move {
            let mut tally = Tally::new();
            let Ok(token) = ctx.minter.token(200 + i as u64) else {
                return tally;
            };
            let names: Vec<String> = (0..20).map(|k| format!("@target{k}")).collect();
            let text = format!("{} {}", names.join(" "), "x".repeat(4000));
            let mut k = 0u64;
            while !ctx.stop.is_cancelled() {
                k += 1;
                let path = format!("/api/v1/channels/room:abuse-m{i}-{k}/messages");
                let body = json!({ "data": { "t": text } });
                count(&mut tally, post(&ctx, &path, body, Some(&token)).await);
            }
            tally
        }
    })
    .await
}

/// Subscribes to and unsubscribes from the honest channel as fast as the server answers.
async fn toggle(ctx: Ctx, channel: String) -> Tally {
    let mut tally = Tally::new();
    let Ok(token) = ctx.minter.token(300) else {
        count(&mut tally, "no token");
        return tally;
    };
    let Ok(mut request) = ctx.ws_url.as_str().into_client_request() else {
        return tally;
    };
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.headers_mut().insert("authorization", value);
    }
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
        count(&mut tally, "could not connect");
        return tally;
    };
    let mut id = 0i64;
    while !ctx.stop.is_cancelled() {
        id += 1;
        let kind = if id % 2 == 1 {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let frame = json!({ "type": kind, "id": id, "channel": channel }).to_string();
        if socket.send(Message::text(frame)).await.is_err() {
            count(&mut tally, "socket closed");
            break;
        }
        // Until the reply to this request (other frames, such as presence, are skipped).
        let answer = loop {
            let next = tokio::select! {
                _ = ctx.stop.cancelled() => break None,
                next = socket.next() => next,
            };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                        continue;
                    };
                    if v["id"] == id {
                        break Some(match v["type"].as_str() {
                            Some("ack") => "ack".to_owned(),
                            _ => v["code"].as_str().unwrap_or("error").to_owned(),
                        });
                    }
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break Some("socket closed".to_owned()),
            }
        };
        match answer {
            Some(outcome) if outcome == "socket closed" => {
                count(&mut tally, outcome);
                break;
            }
            Some(outcome) => count(&mut tally, outcome),
            None => break,
        }
    }
    tally
}
