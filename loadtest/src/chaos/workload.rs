//! The workload of a chaos run: publishers that number every payload and retry it, with its
//! idempotency key, on random nodes until it is acked; subscribers that read the channel from
//! the start and reconnect to random nodes with `since` whenever their socket fails or goes quiet.
//! Each keeps its own record; the checker reads them at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use switchboard_protocol::{ClientFrame, Encoding, ErrorCode, ServerFrame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::checker::{Acked, Attempt, Observed};

pub const CHANNEL: &str = "room:chaos";
/// No ack within this long: the publish is retried elsewhere (with its key).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// A subscriber that hears nothing (not even a ping's ack) for this long moves elsewhere.
const QUIET: Duration = Duration::from_secs(3);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What every publisher and subscriber of a run shares: where the nodes are (their ports stay
/// across restarts), the run's clock, and its end: after `stop`, a publisher finishes its
/// unacked publish for at most `give_up`; a subscriber catches up with `target` and gives up
/// only after `give_up` without progress (a long run leaves a backlog of minutes to replay, and
/// a fixed window would fail a subscriber that is still reading at full speed).
#[derive(Clone)]
pub struct Shared {
    pub ws: Arc<[String]>,
    pub started: Instant,
    pub stop: Arc<AtomicBool>,
    /// History's last offset, known once publishing stopped (0 until then).
    pub target: Arc<AtomicU64>,
    pub give_up: Duration,
    /// Subscriber reconnects, over all of them.
    pub reconnects: Arc<AtomicU64>,
}

async fn dial(url: &str, token: &str, encoding: Encoding) -> anyhow::Result<Socket> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(encoding.subprotocol()),
    );
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(req),
    )
    .await??;
    Ok(ws)
}

async fn send(ws: &mut Socket, encoding: Encoding, frame: &ClientFrame) -> anyhow::Result<()> {
    let bytes = encoding.encode(frame)?;
    let msg = if encoding.is_binary() {
        Message::Binary(bytes.into())
    } else {
        Message::Text(String::from_utf8(bytes)?.into())
    };
    tokio::time::timeout(Duration::from_secs(3), ws.send(msg)).await??;
    Ok(())
}

/// The next server frame within `within`; `Ok(None)` on a quiet socket.
async fn recv(
    ws: &mut Socket,
    encoding: Encoding,
    within: Duration,
) -> anyhow::Result<Option<ServerFrame>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await else {
            return Ok(None);
        };
        let bytes = match next {
            Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            Some(Ok(Message::Close(c))) => anyhow::bail!("closed: {c:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the socket ended"),
        };
        let enc = if bytes.first() == Some(&b'{') {
            Encoding::Json
        } else {
            encoding
        };
        return Ok(Some(enc.decode_server(&bytes)?));
    }
}

/// What one publisher did.
#[derive(Default)]
pub struct PublisherRecord {
    pub attempts: Vec<Attempt>,
    pub acks: Vec<Acked>,
    /// Publishes refused for good (a code that a retry cannot change): a finding.
    pub refused: Vec<(u64, String)>,
}

/// Publishes payloads `base + 1, base + 2, …` at about `rate` per second until `stop`, each
/// retried until acked (or `give_up` passes after the stop).
pub async fn publisher(
    run: Shared,
    token: String,
    base: u64,
    rate: f64,
    seed: u64,
) -> PublisherRecord {
    let Shared {
        ws: targets,
        started,
        stop,
        give_up,
        ..
    } = run;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut record = PublisherRecord::default();
    let mut socket: Option<Socket> = None;
    let mut id = 0i64;
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let payload = base + n;
        record.attempts.push(Attempt { payload });
        let key = format!("chaos-{payload}");
        let mut stopped_at: Option<Instant> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if at.elapsed() > give_up {
                    break;
                }
            }
            if socket.is_none() {
                let url = &targets[rng.gen_range(0..targets.len())];
                match dial(url, &token, Encoding::Json).await {
                    Ok(ws) => socket = Some(ws),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some(ws) = socket.as_mut() else { continue };
            id += 1;
            let frame = ClientFrame::Publish {
                id,
                channel: CHANNEL.into(),
                data: json!({ "p": payload }),
                idempotency_key: Some(key.clone()),
            };
            match publish_once(ws, &frame, id).await {
                Ok(offset) => {
                    record.acks.push(Acked {
                        payload,
                        offset,
                        at_ms: started.elapsed().as_millis() as u64,
                    });
                    break;
                }
                Err(Failure::Retry) => {
                    // The node may be the problem: go elsewhere.
                    socket = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(Failure::Refused(code)) => {
                    record.refused.push((payload, code));
                    break;
                }
            }
        }
        tokio::time::sleep(gap).await;
    }
    record
}

enum Failure {
    Retry,
    Refused(String),
}

async fn publish_once(ws: &mut Socket, frame: &ClientFrame, id: i64) -> Result<u64, Failure> {
    send(ws, Encoding::Json, frame)
        .await
        .map_err(|_| Failure::Retry)?;
    let deadline = Instant::now() + ACK_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(ws, Encoding::Json, left).await {
            Ok(Some(ServerFrame::Ack(a))) if a.id == id => {
                return a
                    .offset
                    .ok_or(Failure::Refused("ack without offset".into()))
            }
            Ok(Some(ServerFrame::Error(e))) if e.id == Some(id) => {
                return match e.code {
                    ErrorCode::Unavailable | ErrorCode::RateLimited => Err(Failure::Retry),
                    code => Err(Failure::Refused(format!("{code:?}: {}", e.message))),
                };
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return Err(Failure::Retry),
        }
    }
}

/// Reads the channel from offset `since` on, across reconnects to random nodes, until `stop`
/// and it has caught up with `target` (set at the end), or it has made no progress for
/// `give_up` after the stop.
pub async fn subscriber(run: Shared, token: String, encoding: Encoding, seed: u64) -> Observed {
    let Shared {
        ws: targets,
        stop,
        target,
        give_up,
        reconnects,
        ..
    } = run;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut observed = Observed::default();
    let mut last = 0u64;
    let mut id = 0i64;
    let mut progress = Progress::new(give_up);
    'connections: loop {
        if stop.load(Ordering::Relaxed) && progress.done(last, target.load(Ordering::Relaxed)) {
            return observed;
        }
        let url = &targets[rng.gen_range(0..targets.len())];
        let Ok(mut ws) = dial(url, &token, encoding).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        id += 1;
        let subscribe = ClientFrame::Subscribe {
            id,
            channel: CHANNEL.into(),
            since: Some(last),
        };
        if send(&mut ws, encoding, &subscribe).await.is_err() {
            continue;
        }
        // Odd subscribers leave now and then on purpose (`since` without a fault); even ones
        // stay until their socket fails, so live delivery itself must keep up through faults.
        let leave_at = if seed % 2 == 1 {
            Instant::now() + Duration::from_millis(rng.gen_range(5_000..20_000))
        } else {
            Instant::now() + Duration::from_secs(24 * 3600)
        };
        let mut pinged = false;
        loop {
            if Instant::now() > leave_at {
                reconnects.fetch_add(1, Ordering::Relaxed);
                continue 'connections;
            }
            if stop.load(Ordering::Relaxed) && progress.done(last, target.load(Ordering::Relaxed)) {
                return observed;
            }
            match recv(&mut ws, encoding, QUIET / 2).await {
                Ok(Some(ServerFrame::Message(m))) => {
                    pinged = false;
                    let payload = m.data.get("p").and_then(Value::as_u64);
                    observed.delivered.push((m.offset, payload));
                    last = last.max(m.offset);
                }
                Ok(Some(ServerFrame::Error(e))) if e.channel.is_some() || e.id == Some(id) => {
                    // The subscription ended or was refused (unavailable while Redis is down).
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    continue 'connections;
                }
                Ok(Some(_)) => pinged = false,
                Ok(None) if !pinged => {
                    id += 1;
                    pinged = true;
                    if send(&mut ws, encoding, &ClientFrame::Ping { id })
                        .await
                        .is_err()
                    {
                        reconnects.fetch_add(1, Ordering::Relaxed);
                        continue 'connections;
                    }
                }
                Ok(None) | Err(_) => {
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    continue 'connections;
                }
            }
        }
    }
}

/// When a subscriber stops reading after the run: at the target, or once it has gone `window`
/// without a new offset after the target is known. While history is still being read (target
/// 0) it keeps reading, up to a hard cap so a run can never hang here.
struct Progress {
    window: Duration,
    last: u64,
    moved: Instant,
    stopped: Option<Instant>,
}

impl Progress {
    const CAP: Duration = Duration::from_secs(30 * 60);

    fn new(window: Duration) -> Self {
        Progress {
            window,
            last: 0,
            moved: Instant::now(),
            stopped: None,
        }
    }

    fn done(&mut self, last: u64, goal: u64) -> bool {
        let stopped = *self.stopped.get_or_insert_with(Instant::now);
        if last > self.last {
            self.last = last;
            self.moved = Instant::now();
        }
        if goal > 0 && last >= goal {
            return true;
        }
        if stopped.elapsed() > Self::CAP {
            return true;
        }
        goal > 0 && self.moved.elapsed() > self.window && stopped.elapsed() > self.window
    }
}
