//! One WebSocket connection: authenticate, then read requests and answer them until the socket
//! closes. Replies and channel messages both go out through the connection's outbox.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Future, StreamExt};
use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use switchboard_protocol::{
    close, Ack, Channel, ClientFrame, Encoding, ErrorCode, ErrorFrame, ServerFrame, UserInfo,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::inbound::Inbound;
use crate::auth::Principal;
use crate::hub::delivery::{encode_history, wrap};
use crate::hub::frame;
use crate::hub::outbox::{Io, SharedIo};
use crate::hub::{Close, Outbox, SubscribeError};
use crate::publish::{self, PublishFailure};
use crate::AppState;

/// Presence page size when the request gives no `limit`, and the most one request may ask for.
const PRESENCE_PAGE: u32 = 100;
const PRESENCE_PAGE_MAX: u32 = 1000;

/// Pings no more often than this, whatever the configuration says (0 would spin the timer).
const MIN_PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Ping interval and idle timeout are capped here (a year), so deadlines cannot overflow.
const MAX_TIMER: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);
/// How long the refusal of an unauthenticated connection may take to go out.
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// One clock for every connection's rate limiter: creating one calibrates it (`cpuid` and a
/// timing loop), which was 2 % of the server's CPU during a reconnect storm.
static RATE_CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);

/// A publish waiting for its storage ack: resolves to (request id, outcome).
type PendingAck = Pin<Box<dyn Future<Output = (i64, Result<u64, PublishFailure>)> + Send>>;

/// The client's frames, parsed by tungstenite from the socket's read side.
type Frames = WebSocketStream<Inbound>;

/// A connection past authentication, ready to serve. It runs in a task of its own, spawned by
/// the caller once [`open`] has returned: a task's memory is sized for its largest await point,
/// and the handshake's (the socket arguments, the authentication wait) would otherwise stay
/// allocated for the whole life of every idle connection.
pub struct Session {
    conn: Connection,
    stream: Box<Frames>,
    span: tracing::Span,
}

impl Session {
    /// Not an `async fn`: one would move `self` from its argument slot into a local, and the task
    /// would keep both copies for the connection's whole life. The block uses it in place.
    #[allow(clippy::manual_async_fn)]
    pub fn run(mut self) -> impl Future<Output = ()> {
        async move {
            let span = std::mem::replace(&mut self.span, tracing::Span::none());
            self.conn.serve(&mut self.stream).instrument(span).await;
            Box::pin(self.conn.close()).await;
            // Until what was queued and the close frame are out (bounded by the close grace).
            self.conn.outbox.done().await;
        }
    }
}

/// Sets the connection up: reads the `auth` frame unless the upgrade carried a token, attaches
/// the connection to the hub. `None` if the client never authenticated.
pub async fn open(
    socket: Upgraded,
    config: WebSocketConfig,
    state: AppState,
    encoding: Encoding,
    principal: Option<Principal>,
    peer: SocketAddr,
) -> Option<Session> {
    let io: Pin<Box<dyn Io>> = Box::pin(TokioIo::new(socket));
    let io: SharedIo = Arc::new(Mutex::new(io));
    // Boxed: it moves into the session, which its task keeps inline, once per await point.
    let mut stream = Box::new(
        WebSocketStream::from_raw_socket(Inbound(io.clone()), Role::Server, Some(config)).await,
    );
    let (principal, auth_id) = match principal {
        Some(p) => (p, None),
        None => match authenticate(&state, encoding, &io, &mut stream).await {
            Some((p, id)) => (p, Some(id)),
            None => return None,
        },
    };
    let conn_id = state.hub.next_conn_id();
    let span = tracing::info_span!("conn", id = conn_id, user = %principal.user_id, %peer);
    let outbox = Outbox::new(
        conn_id,
        encoding,
        principal,
        state.config.outbound_queue_bytes,
        io,
    );
    state.hub.attach(&outbox);
    if state.shutdown.is_cancelled() {
        // Upgraded just as the drain started (after it told every attached connection to go):
        // send this one away too rather than serve it while storage closes.
        crate::drain_one(&outbox, state.config.drain_window_ms);
    }
    let conn = Connection::new(state, outbox);
    if let Some(id) = auth_id {
        conn.ack_auth(id);
    }
    Some(Session { conn, stream, span })
}

/// Waits for the first frame, which must be `auth` with a valid token. Answers with an error
/// frame and closes with 1008 otherwise, or after the authentication timeout. No outbox exists
/// yet, so answers are written to the socket directly.
async fn authenticate(
    state: &AppState,
    encoding: Encoding,
    io: &SharedIo,
    stream: &mut Frames,
) -> Option<(Principal, i64)> {
    let deadline = tokio::time::Instant::now() + state.config.auth_timeout();
    let refusal = loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                break (
                    None,
                    ErrorCode::Unauthorized,
                    "authentication timeout".to_owned(),
                )
            }
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(frame))) => frame,
        };
        let decoded = match frame {
            Message::Text(t) => Encoding::Json.decode_client(t.as_bytes()),
            Message::Binary(b) => Encoding::MsgPack.decode_client(&b),
            Message::Close(_) => {
                let _ = send_before(io, frame::close(close::NORMAL, ""), deadline).await;
                return None;
            }
            Message::Ping(payload) => {
                send_before(io, frame::pong(payload), deadline).await.ok()?;
                continue;
            }
            Message::Pong(_) | Message::Frame(_) => continue,
        };
        break match decoded {
            Ok(ClientFrame::Auth { id, token }) => match state.auth.authenticate(&token) {
                Ok(principal) => return Some((principal, id)),
                Err(e) => (Some(id), ErrorCode::Unauthorized, e.to_string()),
            },
            Ok(other) => (
                Some(other.id()),
                ErrorCode::Unauthorized,
                "the first frame must be auth".to_owned(),
            ),
            Err(e) => (
                e.id,
                ErrorCode::Unauthorized,
                "the first frame must be auth".to_owned(),
            ),
        };
    };
    let (id, code, message) = refusal;
    // A client that does not read its refusal is not waited for beyond a short grace.
    let deadline = tokio::time::Instant::now() + REFUSAL_GRACE;
    if let Some(frame) = encode(
        encoding,
        &ServerFrame::Error(ErrorFrame::new(id, code, message)),
    ) {
        let _ = send_before(io, frame, deadline).await;
    }
    let close = frame::close(close::POLICY, "authentication required");
    let _ = send_before(io, close, deadline).await;
    None
}

/// Writes a whole frame to a socket nothing else writes to yet, giving up at `deadline`: an
/// unauthenticated client that sends (pings) without reading must not hold its task past it.
async fn send_before(
    io: &SharedIo,
    mut frame: Bytes,
    deadline: tokio::time::Instant,
) -> std::io::Result<()> {
    use bytes::Buf;
    let write_all = async {
        while !frame.is_empty() {
            let n = std::future::poll_fn(|cx| io.lock().as_mut().poll_write(cx, &frame)).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            frame.advance(n);
        }
        Ok(())
    };
    tokio::time::timeout_at(deadline, write_all)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

struct Subscription {
    /// Publishing here was already authorised on this connection.
    may_publish: bool,
}

struct Connection {
    state: AppState,
    outbox: Arc<Outbox>,
    subscriptions: HashMap<Arc<str>, Subscription>,
    /// Channels this connection has been allowed to publish to (without subscribing).
    publish_rights: HashMap<Arc<str>, ()>,
    rate: DefaultDirectRateLimiter,
    pending: FuturesUnordered<PendingAck>,
}

impl Connection {
    fn new(state: AppState, outbox: Arc<Outbox>) -> Connection {
        let per_sec = NonZeroU32::new(state.config.publish_rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(state.config.publish_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Connection {
            rate: RateLimiter::direct_with_clock(
                Quota::per_second(per_sec).allow_burst(burst),
                RATE_CLOCK.clone(),
            ),
            state,
            outbox,
            subscriptions: HashMap::new(),
            publish_rights: HashMap::new(),
            pending: FuturesUnordered::new(),
        }
    }

    fn principal(&self) -> &Principal {
        &self.outbox.principal
    }

    /// The request handlers' futures (subscribe with replay, history, storage reads) are boxed
    /// per request so that the state an idle connection keeps alive is only this small loop.
    /// Also keeps the connection's time, with one timer: it pings the client every ping
    /// interval and closes the connection once nothing (not even a pong) has come from the
    /// client for the idle timeout.
    async fn serve(&mut self, stream: &mut Frames) {
        let idle = self.state.config.idle_timeout().min(MAX_TIMER);
        let ping_every = self
            .state
            .config
            .ping_interval()
            .clamp(MIN_PING_INTERVAL, MAX_TIMER);
        let outbox = self.outbox.clone();
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + ping_every;
        let timer = tokio::time::sleep_until(next_ping.min(last_heard + idle));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = outbox.done() => return,
                Some((id, result)) = self.pending.next(), if !self.pending.is_empty() => self.answer_publish(id, result),
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_heard + idle {
                        return self.outbox.close(Close { code: close::IDLE_TIMEOUT, reason: "idle timeout", immediate: false });
                    }
                    if now >= next_ping {
                        let _ = self.outbox.push(frame::ping());
                        next_ping = now + ping_every;
                    }
                    timer.as_mut().reset(next_ping.min(last_heard + idle));
                }
                next = stream.next() => {
                    last_heard = Instant::now();
                    match next {
                        None => return,
                        Some(Err(e)) => return self.read_failed(e),
                        Some(Ok(Message::Text(t))) => Box::pin(self.request(Encoding::Json.decode_client(t.as_bytes()))).await,
                        Some(Ok(Message::Binary(b))) => Box::pin(self.request(Encoding::MsgPack.decode_client(&b))).await,
                        Some(Ok(Message::Close(_))) => return,
                        Some(Ok(Message::Ping(payload))) => { let _ = self.outbox.push(frame::pong(payload)); }
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                    }
                }
            }
        }
    }

    fn read_failed(&self, e: tungstenite::Error) {
        let (code, reason) = match e {
            tungstenite::Error::Capacity(_) => (close::TOO_BIG, "frame too large"),
            tungstenite::Error::Protocol(_) => (close::PROTOCOL_ERROR, "protocol error"),
            // Invalid UTF-8 in a text frame.
            tungstenite::Error::Utf8(_) => (close::INVALID_DATA, "invalid UTF-8"),
            _ => return, // the socket itself failed: nothing can be sent
        };
        self.outbox.close(Close {
            code,
            reason,
            immediate: true,
        });
    }

    async fn request(&mut self, frame: Result<ClientFrame, switchboard_protocol::DecodeError>) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return self.error(e.id, ErrorCode::BadRequest, e.to_string()),
        };
        match frame {
            ClientFrame::Auth { id, token } => self.reauth(id, &token),
            ClientFrame::Ping { id } => self.ack(Ack {
                id,
                ..Default::default()
            }),
            ClientFrame::Subscribe { id, channel, since } => {
                self.subscribe(id, &channel, since).await
            }
            ClientFrame::Unsubscribe { id, channel } => self.unsubscribe(id, &channel).await,
            ClientFrame::Publish { id, channel, data } => self.publish(id, &channel, data).await,
            ClientFrame::History {
                id,
                channel,
                before,
                limit,
            } => self.history(id, &channel, before, limit).await,
            ClientFrame::Presence {
                id,
                channel,
                cursor,
                limit,
            } => self.presence(id, &channel, cursor.as_deref(), limit).await,
        }
    }

    /// Takes the connection out of a channel: the hub's subscription and, for rooms, presence.
    async fn leave(&mut self, name: &Arc<str>) {
        self.state.hub.unsubscribe(name, self.outbox.conn_id);
        if name.starts_with("room:") {
            self.state
                .presence
                .leave(name, &self.outbox.principal)
                .await;
        }
    }

    async fn presence(&mut self, id: i64, raw: &str, cursor: Option<&str>, limit: Option<u32>) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        if channel.room().is_none() {
            return self.error(
                Some(id),
                ErrorCode::BadRequest,
                "presence exists for room: channels only".into(),
            );
        }
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let limit = limit.unwrap_or(PRESENCE_PAGE).clamp(1, PRESENCE_PAGE_MAX);
        match self.state.presence.page(raw, cursor, limit).await {
            Ok(page) => self.ack(Ack {
                id,
                presence: Some(page),
                ..Default::default()
            }),
            Err(e) => {
                tracing::warn!(error = %e, "presence read failed");
                self.error(
                    Some(id),
                    ErrorCode::Unavailable,
                    "presence is unavailable".into(),
                );
            }
        }
    }

    /// A fresh token for the same user (e.g. after a refresh) is accepted; another user's is not.
    fn reauth(&mut self, id: i64, token: &str) {
        match self.state.auth.authenticate(token) {
            Ok(p) if p.user_id == self.principal().user_id => self.ack_auth(id),
            Ok(_) => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "a connection cannot change user".into(),
            ),
            Err(e) => self.error(Some(id), ErrorCode::Unauthorized, e.to_string()),
        }
    }

    fn ack_auth(&self, id: i64) {
        let p = self.principal();
        let user = UserInfo {
            id: p.user_id.to_string(),
            username: p.username.to_string(),
        };
        self.ack(Ack {
            id,
            user: Some(user),
            ..Default::default()
        });
    }

    async fn subscribe(&mut self, id: i64, raw: &str, since: Option<u64>) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        let name: Arc<str> = raw.into();
        let max = self.state.config.max_subscriptions;
        if !self.subscriptions.contains_key(&name) && self.subscriptions.len() >= max {
            return self.error(
                Some(id),
                ErrorCode::TooLarge,
                format!("subscription limit ({max}) reached"),
            );
        }
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let outbox = self.outbox.clone();
        let registered = |offset| {
            let _ = push(
                &outbox,
                &ServerFrame::Ack(Ack {
                    id,
                    offset: Some(offset),
                    ..Default::default()
                }),
            );
        };
        match self
            .state
            .hub
            .subscribe(&name, &self.outbox, since, registered)
            .await
        {
            Ok(()) => {
                let may_publish = self.publish_rights.contains_key(&name);
                let again = self
                    .subscriptions
                    .insert(name.clone(), Subscription { may_publish })
                    .is_some();
                if !again && channel.room().is_some() {
                    self.state
                        .presence
                        .enter(&name, &self.outbox.principal)
                        .await;
                }
            }
            Err(SubscribeError::Closed) => {}
            Err(e) => {
                self.state.hub.unsubscribe(&name, self.outbox.conn_id);
                tracing::warn!(error = %e, channel = raw, "subscribe failed");
                self.error(Some(id), ErrorCode::Unavailable, e.to_string());
            }
        }
    }

    async fn unsubscribe(&mut self, id: i64, raw: &str) {
        let name: Arc<str> = raw.into();
        if self.subscriptions.remove(&name).is_some() {
            self.leave(&name).await;
        }
        self.ack(Ack {
            id,
            ..Default::default()
        });
    }

    async fn publish(&mut self, id: i64, raw: &str, data: serde_json::Value) {
        if self.rate.check().is_err() {
            return self.error(
                Some(id),
                ErrorCode::RateLimited,
                "publish rate limit exceeded".into(),
            );
        }
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        let data = match serde_json::value::to_raw_value(&data) {
            Ok(data) => data,
            Err(e) => return self.error(Some(id), ErrorCode::BadRequest, e.to_string()),
        };
        let name: Arc<str> = raw.into();
        let authorised = self.subscriptions.get(&name).is_some_and(|s| s.may_publish)
            || self.publish_rights.contains_key(&name);
        if !authorised {
            if let Err(e) = self
                .state
                .authz
                .can_publish(self.principal(), &channel)
                .await
            {
                return self.error(Some(id), e.code(), e.to_string());
            }
            self.publish_rights.insert(name.clone(), ());
            if let Some(sub) = self.subscriptions.get_mut(&name) {
                sub.may_publish = true;
            }
        }
        // Queue to storage now, in arrival order, and wait for the ack alongside further reads:
        // a connection can have many publishes in flight, and their order on a channel holds.
        let state = self.state.clone();
        let principal = self.principal().clone();
        let submitted = publish::submit(&state, &principal, &channel, data);
        self.pending
            .push(Box::pin(async move { (id, submitted.await) }));
    }

    fn answer_publish(&self, id: i64, result: Result<u64, PublishFailure>) {
        match result {
            Ok(offset) => self.ack(Ack {
                id,
                offset: Some(offset),
                ..Default::default()
            }),
            Err(e) => self.error(Some(id), e.code(), e.to_string()),
        }
    }

    async fn history(&mut self, id: i64, raw: &str, before: Option<u64>, limit: Option<u32>) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let limit = limit
            .unwrap_or(crate::http::DEFAULT_PAGE)
            .clamp(1, self.state.config.history_max);
        match self
            .state
            .store
            .messages_before(&raw.into(), before, limit)
            .await
        {
            Ok(page) => match encode_history(self.outbox.encoding, id, &page) {
                Ok(frame) => {
                    let _ = self.outbox.push(frame);
                }
                Err(e) => {
                    tracing::error!(error = %e, "history page could not be encoded");
                    self.error(
                        Some(id),
                        ErrorCode::Unavailable,
                        "history is unavailable".into(),
                    );
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "history read failed");
                self.error(
                    Some(id),
                    ErrorCode::Unavailable,
                    "storage is unavailable".into(),
                );
            }
        }
    }

    fn channel(&self, id: i64, raw: &str) -> Option<Channel> {
        match raw.parse() {
            Ok(channel) => Some(channel),
            Err(e) => {
                self.error(Some(id), ErrorCode::BadRequest, format!("{e}"));
                None
            }
        }
    }

    fn ack(&self, ack: Ack) {
        let _ = push(&self.outbox, &ServerFrame::Ack(ack));
    }

    fn error(&self, id: Option<i64>, code: ErrorCode, message: String) {
        let _ = push(
            &self.outbox,
            &ServerFrame::Error(ErrorFrame::new(id, code, message)),
        );
    }

    /// Session cleanup, the one place a connection is taken out of the hub.
    async fn close(&mut self) {
        let names: Vec<Arc<str>> = self.subscriptions.drain().map(|(name, _)| name).collect();
        for name in names {
            self.leave(&name).await;
        }
        self.state.hub.detach(self.outbox.conn_id);
        self.outbox.close(Close {
            code: close::NORMAL,
            reason: "",
            immediate: false,
        });
    }
}

fn encode(encoding: Encoding, frame: &ServerFrame) -> Option<Bytes> {
    let bytes = encoding.encode(frame).ok()?;
    Some(wrap(encoding, &bytes))
}

fn push(outbox: &Arc<Outbox>, frame: &ServerFrame) -> Option<()> {
    outbox.push(encode(outbox.encoding, frame)?).ok()
}
