//! One WebSocket connection once authenticated: the loop that reads the client's frames, keeps
//! the connection's time (pings, idle timeout, token expiry) and hands each request to its
//! handler ([`super::requests`]), until the socket closes; then the close, done so the client
//! sees its close code. Replies and channel messages both go out through the connection's
//! [`ConnHandle`].

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use futures::stream::FuturesUnordered;
use futures::{Future, FutureExt, StreamExt};
use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, RateLimiter};
use switchboard_protocol::{
    Ack, Channel, ClientFrame, Encoding, ErrorCode, ErrorFrame, ServerFrame,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::conn::inbound::Inbound;
use super::conn::{frame, CloseReason, ConnHandle};
use super::MAX_TIMER;
use crate::auth::Principal;
use crate::publish;
use crate::rate::per_second;
use crate::ws::caps::Places;
use crate::AppState;

/// Pings no more often than this, whatever the configuration says (0 would spin the timer).
const MIN_PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long before its access token expires a connection is told (`token_expiring`): at most
/// this, and at most half the token's lifetime.
const TOKEN_WARNING: u64 = 60;

/// One clock for every connection's rate limiter: creating one calibrates it (`cpuid` and a
/// timing loop), which was 2 % of the server's CPU during a reconnect storm.
static RATE_CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);

/// A publish waiting for its storage ack: resolves to (request id, outcome).
type PendingAck = Pin<Box<dyn Future<Output = (i64, Result<u64, publish::Error>)> + Send>>;

/// The client's frames, parsed by tungstenite from the socket's read side.
pub(super) type Frames = WebSocketStream<Inbound>;

/// A connection past authentication, ready to serve. It runs in a task of its own, spawned by
/// the caller once [`super::handshake::open`] has returned: a task's memory is sized for its largest await point,
/// and the handshake's (the socket arguments, the authentication wait) would otherwise stay
/// allocated for the whole life of every idle connection.
pub(super) struct Connection {
    pub(super) handler: Handler,
    pub(super) stream: Box<Frames>,
    pub(super) span: tracing::Span,
}

impl Connection {
    /// Not an `async fn`: one would move `self` from its argument slot into a local, and the task
    /// would keep both copies for the connection's whole life. The block uses it in place.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn run(mut self) -> impl Future<Output = ()> {
        async move {
            let span = std::mem::replace(&mut self.span, tracing::Span::none());
            // A request that panics ends its connection, not the process, and the connection is
            // still cleaned up (taken out of the hub, presence left).
            let serving = std::panic::AssertUnwindSafe(self.handler.serve(&mut self.stream));
            let ending = serving
                .catch_unwind()
                .instrument(span)
                .await
                .unwrap_or_else(|panic| {
                    crate::metrics::worker_skipped("connection");
                    tracing::error!(
                        panic = crate::workers::panic_message(&*panic),
                        "connection task panicked"
                    );
                    Ending::SocketGone
                });
            let Connection {
                handler, stream, ..
            } = &mut self;
            let conn = handler.conn.clone();
            let finish = async {
                Box::pin(handler.close()).await;
                // Until what was queued and the close frame are out (bounded by the close grace).
                handler.conn.done().await;
            };
            // Boxed: only a closing connection needs its state.
            tokio::join!(finish, Box::pin(linger(stream, ending, Some(&conn))));
        }
    }
}

/// How a connection's serving loop ended, which decides how its close ends.
pub(super) enum Ending {
    /// The client sent its close frame: the reply is all that is left.
    ClientClosed,
    /// The socket is gone.
    SocketGone,
    /// The server is closing (or closed) the connection on a readable stream.
    ServerClosing,
    /// The server is closing after input it could not parse (too large, not WebSocket, bad
    /// UTF-8): what follows on the socket cannot be read as frames.
    BadInput,
}

/// Resolves once the connection's close frame is out.
async fn close_sent(conn: Option<&Arc<ConnHandle>>) {
    if let Some(conn) = conn {
        conn.done().await;
    }
}

/// How long a server-initiated close waits for the client's side of it.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(3);
/// After unparseable input, the close ends once the client has sent nothing for this long.
const QUIET_SPELL: std::time::Duration = std::time::Duration::from_millis(250);

/// Keeps reading (and discarding) what the client sends after the server started a close, until
/// the client's close frame, EOF, or [`CLOSE_LINGER`] after the close frame went out (`conn`
/// says when; without one it already has): a socket closed with unread input makes the kernel
/// send a reset instead of a FIN, and the client (a browser) then loses the close frame and
/// reports 1006 instead of the close code. After unparseable input the bytes are read raw, and
/// the close also ends after a [`QUIET_SPELL`] (the client has sent its rest and its close).
pub(super) async fn linger(stream: &mut Frames, ending: Ending, conn: Option<&Arc<ConnHandle>>) {
    match ending {
        Ending::ClientClosed | Ending::SocketGone => return,
        Ending::BadInput | Ending::ServerClosing => {}
    }
    // The close frame can wait behind queued frames for up to the close grace: the linger
    // counts from when it is out, and never past that grace plus the linger.
    let mut deadline = Instant::now() + super::conn::CLOSE_GRACE + CLOSE_LINGER;
    let mut sent = conn.is_none();
    if sent {
        deadline = Instant::now() + CLOSE_LINGER;
    }
    if let Ending::ServerClosing = ending {
        loop {
            let next = tokio::select! {
                () = close_sent(conn), if !sent => {
                    sent = true;
                    deadline = deadline.min(Instant::now() + CLOSE_LINGER);
                    continue;
                }
                next = tokio::time::timeout_at(deadline, stream.next()) => next,
            };
            match next {
                Ok(Some(Ok(Message::Close(_))) | None) | Err(_) => return,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) => break,
            }
        }
    }
    use tokio::io::AsyncReadExt;
    let inbound = stream.get_mut();
    let mut discard = vec![0u8; 16 * 1024];
    loop {
        let quiet = (Instant::now() + QUIET_SPELL).min(deadline);
        match tokio::time::timeout_at(quiet, inbound.read(&mut discard)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => return,
        }
    }
}

pub(super) struct Handler {
    pub(super) state: AppState,
    pub(super) conn: Arc<ConnHandle>,
    /// Channels this connection is subscribed to.
    pub(super) subscriptions: HashSet<Arc<str>>,
    /// Channels this connection was allowed to publish to, each with the authorisation
    /// generation the decision was made at: once any room's rules change, the generation moves
    /// and the next publish asks again. At most [`MAX_PUBLISH_RIGHTS`].
    pub(super) publish_rights: HashMap<Arc<str>, u64>,
    pub(super) rate: DefaultDirectRateLimiter,
    /// Budget for every request but publish and ping (`SWITCHBOARD_REQUEST_RATE`).
    pub(super) requests: DefaultDirectRateLimiter,
    pub(super) pending: FuturesUnordered<PendingAck>,
    /// The last typing signal per subscribed channel ([`crate::chat::typing::Throttle`]).
    pub(super) typing: crate::chat::typing::Throttle,
    pub(super) token: TokenClock,
    /// This connection's places in the per-user and per-address caps.
    pub(super) _places: Places,
}

/// When the connection's access token must be renewed: the `token_expiring` warning, then the
/// 4002 close. An `auth` frame with a fresh token of the same session moves both.
pub(super) struct TokenClock {
    pub(super) warn_at: Instant,
    pub(super) warned: bool,
    pub(super) close_at: Instant,
    /// The token's expiry (Unix seconds), for the warning's `expires_in`.
    pub(super) expires: u64,
}

impl TokenClock {
    pub(super) fn of(p: &Principal) -> TokenClock {
        let now = unix_now();
        let expires = p.valid_until.saturating_sub(crate::auth::LEEWAY_SECS);
        let lead = TOKEN_WARNING.min(p.lifetime_secs / 2);
        let at = |unix: u64| {
            Instant::now() + std::time::Duration::from_secs(unix.saturating_sub(now)).min(MAX_TIMER)
        };
        TokenClock {
            warn_at: at(expires.saturating_sub(lead)),
            warned: false,
            close_at: at(p.valid_until),
            expires,
        }
    }

    /// The next moment the clock has something to do.
    fn next(&self) -> Instant {
        if self.warned {
            self.close_at
        } else {
            self.warn_at
        }
    }
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Handler {
    pub(super) fn new(state: AppState, conn: Arc<ConnHandle>, places: Places) -> Handler {
        let config = &state.config;
        Handler {
            rate: RateLimiter::direct_with_clock(
                per_second(config.publish_rate, config.publish_burst),
                RATE_CLOCK.clone(),
            ),
            requests: RateLimiter::direct_with_clock(
                per_second(config.request_rate, config.request_burst),
                RATE_CLOCK.clone(),
            ),
            token: TokenClock::of(&conn.principal),
            state,
            conn,
            subscriptions: HashSet::new(),
            publish_rights: HashMap::new(),
            pending: FuturesUnordered::new(),
            typing: Default::default(),
            _places: places,
        }
    }

    pub(super) fn principal(&self) -> &Principal {
        &self.conn.principal
    }

    /// The request handlers' futures (subscribe with replay, history, storage reads) are boxed
    /// per request so that the state an idle connection keeps alive is only this small loop.
    /// Also keeps the connection's time, with one timer: it pings the client every ping
    /// interval and closes the connection once nothing (not even a pong) has come from the
    /// client for the idle timeout.
    async fn serve(&mut self, stream: &mut Frames) -> Ending {
        let idle = self.state.config.idle_timeout.min(MAX_TIMER);
        let ping_every = self
            .state
            .config
            .ping_interval
            .clamp(MIN_PING_INTERVAL, MAX_TIMER);
        let conn = self.conn.clone();
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + ping_every;
        let timer =
            tokio::time::sleep_until(next_ping.min(last_heard + idle).min(self.token.next()));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = conn.done() => return Ending::ServerClosing,
                Some((id, result)) = self.pending.next(), if !self.pending.is_empty() => self.answer_publish(id, result),
                ended = conn.ended_subscriptions() => {
                    for name in ended {
                        // Boxed, like requests: an idle connection keeps only the loop.
                        Box::pin(self.forget(&name)).await;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_heard + idle {
                        self.conn.close(CloseReason::IdleTimeout);
                        return Ending::ServerClosing;
                    }
                    if now >= self.token.close_at {
                        self.conn.close(CloseReason::TokenExpired);
                        return Ending::ServerClosing;
                    }
                    if !self.token.warned && now >= self.token.warn_at {
                        self.token.warned = true;
                        let expires_in = self.token.expires.saturating_sub(unix_now());
                        let _ = self.conn.send(&ServerFrame::TokenExpiring { expires_in });
                    }
                    if now >= next_ping {
                        let _ = self.conn.push(frame::ping());
                        next_ping = now + ping_every;
                    }
                    timer.as_mut().reset(next_ping.min(last_heard + idle).min(self.token.next()));
                }
                next = stream.next() => {
                    last_heard = Instant::now();
                    let token_deadline = self.token.next();
                    match next {
                        None => return Ending::SocketGone,
                        Some(Err(e)) => return self.read_failed(e),
                        Some(Ok(Message::Text(t))) => {
                            let frame = Encoding::Json.decode_client(t.as_bytes());
                            if !Box::pin(self.request_within_token(frame)).await {
                                return Ending::ServerClosing;
                            }
                        }
                        Some(Ok(Message::Binary(b))) => {
                            let frame = Encoding::MsgPack.decode_client(&b);
                            if !Box::pin(self.request_within_token(frame)).await {
                                return Ending::ServerClosing;
                            }
                        }
                        Some(Ok(Message::Close(_))) => return Ending::ClientClosed,
                        Some(Ok(Message::Ping(payload))) => { let _ = self.conn.push(frame::pong(payload)); }
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                    }
                    // An `auth` frame renewed the token: the timer follows its new deadlines.
                    if self.token.next() != token_deadline {
                        timer.as_mut().reset(next_ping.min(last_heard + idle).min(self.token.next()));
                    }
                }
            }
        }
    }

    /// Serves one request, but no longer than the connection's token lives: a request that
    /// takes long (a `since` replay to a client that reads slowly) must not keep the socket
    /// receiving past its token's expiry. False when the token ran out (the connection is then
    /// closing with 4002).
    async fn request_within_token(
        &mut self,
        frame: Result<ClientFrame, switchboard_protocol::DecodeError>,
    ) -> bool {
        let close_at = self.token.close_at;
        let conn = self.conn.clone();
        let served = tokio::time::timeout_at(close_at, Box::pin(self.request(frame))).await;
        if served.is_err() {
            conn.close(CloseReason::TokenExpired);
        }
        served.is_ok()
    }

    fn read_failed(&self, e: tungstenite::Error) -> Ending {
        let Some(reason) = CloseReason::for_read_error(&e) else {
            return Ending::SocketGone; // the socket itself failed: nothing can be sent
        };
        self.conn.close(reason);
        Ending::BadInput
    }

    async fn request(&mut self, frame: Result<ClientFrame, switchboard_protocol::DecodeError>) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return self.error(e.id, ErrorCode::BadRequest, e.to_string()),
        };
        let metered = !matches!(
            frame,
            ClientFrame::Ping { .. } | ClientFrame::Publish { .. }
        );
        if metered && self.requests.check().is_err() {
            crate::metrics::refused("request_rate");
            return self.error(
                frame.id(),
                ErrorCode::RateLimited,
                "too many requests, slow down (SWITCHBOARD_REQUEST_RATE)".into(),
            );
        }
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
            ClientFrame::Publish {
                id,
                channel,
                data,
                idempotency_key,
            } => self.publish(id, &channel, data, idempotency_key).await,
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
            ClientFrame::Typing {
                id,
                channel,
                typing,
            } => self.typing(id, &channel, typing).await,
            ClientFrame::Read {
                id,
                channel,
                offset,
            } => self.read(id, &channel, offset).await,
        }
    }

    pub(super) fn channel(&self, id: i64, raw: &str) -> Option<Channel> {
        match raw.parse() {
            Ok(channel) => Some(channel),
            Err(e) => {
                self.error(Some(id), ErrorCode::BadRequest, format!("{e}"));
                None
            }
        }
    }

    pub(super) fn ack(&self, ack: Ack) {
        let _ = self.conn.send(&ServerFrame::Ack(ack));
    }

    pub(super) fn error(&self, id: Option<i64>, code: ErrorCode, message: String) {
        let _ = self
            .conn
            .send(&ServerFrame::Error(ErrorFrame::new(id, code, message)));
    }

    /// Connection cleanup, the one place a connection is taken out of the hub.
    pub(super) async fn close(&mut self) {
        let names: Vec<Arc<str>> = self.subscriptions.drain().collect();
        for name in names {
            self.leave(&name).await;
        }
        self.state.hub.detach(self.conn.conn_id);
        self.conn.close(CloseReason::Normal);
    }
}
