//! One WebSocket connection: authenticate, then read requests and answer them until the socket
//! closes. Replies and channel messages both go out through the connection's handle.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Future, FutureExt, StreamExt};
use governor::clock::DefaultClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use switchboard_protocol::{
    Ack, Channel, ClientFrame, Encoding, ErrorCode, ErrorFrame, ServerFrame, UserInfo,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::conn::inbound::Inbound;
use super::conn::{frame, wire, CloseReason, ConnHandle, Io, SharedIo};
use super::MAX_TIMER;
use crate::auth::Principal;
use crate::authz::Authz;
use crate::hub::{Admission, SubscribeError};
use crate::net::caps::Places;
use crate::publish;
use crate::AppState;

/// Presence page size when the request gives no `limit`, and the most one request may ask for.
const PRESENCE_PAGE: u32 = 100;
const PRESENCE_PAGE_MAX: u32 = 1000;

/// Pings no more often than this, whatever the configuration says (0 would spin the timer).
const MIN_PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long the refusal of an unauthenticated connection may take to go out.
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Channels whose publish right one connection remembers; past it the memory starts over (each
/// right is one authorisation check away). Bounds a connection that publishes to ever new names.
const MAX_PUBLISH_RIGHTS: usize = 256;
/// How long before its access token expires a connection is told (`token_expiring`): at most
/// this, and at most half the token's lifetime.
const TOKEN_WARNING: u64 = 60;

/// One clock for every connection's rate limiter: creating one calibrates it (`cpuid` and a
/// timing loop), which was 2 % of the server's CPU during a reconnect storm.
static RATE_CLOCK: LazyLock<DefaultClock> = LazyLock::new(DefaultClock::default);

/// A publish waiting for its storage ack: resolves to (request id, outcome).
type PendingAck = Pin<Box<dyn Future<Output = (i64, Result<u64, publish::Error>)> + Send>>;

/// The client's frames, parsed by tungstenite from the socket's read side.
type Frames = WebSocketStream<Inbound>;

/// A connection past authentication, ready to serve. It runs in a task of its own, spawned by
/// the caller once [`open`] has returned: a task's memory is sized for its largest await point,
/// and the handshake's (the socket arguments, the authentication wait) would otherwise stay
/// allocated for the whole life of every idle connection.
pub struct Connection {
    handler: Handler,
    stream: Box<Frames>,
    span: tracing::Span,
}

impl Connection {
    /// Not an `async fn`: one would move `self` from its argument slot into a local, and the task
    /// would keep both copies for the connection's whole life. The block uses it in place.
    #[allow(clippy::manual_async_fn)]
    pub fn run(mut self) -> impl Future<Output = ()> {
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
enum Ending {
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
async fn linger(stream: &mut Frames, ending: Ending, conn: Option<&Arc<ConnHandle>>) {
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

/// Sets the connection up: reads the `auth` frame unless the upgrade carried a token, attaches
/// the connection to the hub. `None` if the client never authenticated.
pub async fn open(
    socket: Upgraded,
    config: WebSocketConfig,
    state: AppState,
    encoding: Encoding,
    principal: Option<Principal>,
    mut places: Places,
    peer: SocketAddr,
) -> Option<Connection> {
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
    if places.user.is_none() {
        match state.caps.user(&principal.user_id) {
            Ok(slot) => places.user = Some(slot),
            Err(e) => {
                refuse(encoding, &io, &mut stream, auth_id, &e.to_string()).await;
                return None;
            }
        }
    }
    let conn_id = state.hub.next_conn_id();
    let span = tracing::info_span!("conn", id = conn_id, user = %principal.user_id, %peer);
    let conn = ConnHandle::new(
        conn_id,
        encoding,
        principal,
        state.config.outbound_queue_bytes,
        io,
    );
    state.hub.attach(&conn);
    if state.shutdown.is_cancelled() {
        // Upgraded just as the drain started (after it told every attached connection to go):
        // send this one away too rather than serve it while storage closes.
        conn.go_away(state.config.drain_window_ms);
    }
    let handler = Handler::new(state, conn, places);
    if let Some(id) = auth_id {
        handler.ack_auth(id);
    }
    Some(Connection {
        handler,
        stream,
        span,
    })
}

/// Waits for the first frame, which must be `auth` with a valid token. Answers with an error
/// frame and closes with 1008 otherwise, or after the authentication timeout. No conn exists
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
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                if let Some(reason) = CloseReason::for_read_error(&e) {
                    if send_before(io, frame::close(reason), deadline)
                        .await
                        .is_ok()
                    {
                        Box::pin(linger(stream, Ending::BadInput, None)).await;
                    }
                }
                return None;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let decoded = match frame {
            Message::Text(t) => Encoding::Json.decode_client(t.as_bytes()),
            Message::Binary(b) => Encoding::MsgPack.decode_client(&b),
            Message::Close(_) => {
                let _ = send_before(io, frame::close(CloseReason::Normal), deadline).await;
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
    if let Some(frame) = wire::encode(
        encoding,
        &ServerFrame::Error(ErrorFrame::new(id, code, message)),
    ) {
        let _ = send_before(io, frame, deadline).await;
    }
    let close = frame::close(CloseReason::AuthRequired);
    if send_before(io, close, deadline).await.is_ok() {
        Box::pin(linger(stream, Ending::ServerClosing, None)).await;
    }
    None
}

/// Refuses an authenticated connection over its user's cap: the `rate_limited` error, then close
/// 1013 (try again later). Nothing is attached yet, so it is written directly.
async fn refuse(
    encoding: Encoding,
    io: &SharedIo,
    stream: &mut Frames,
    id: Option<i64>,
    message: &str,
) {
    let deadline = tokio::time::Instant::now() + REFUSAL_GRACE;
    let error = ErrorFrame::new(id, ErrorCode::RateLimited, message.to_owned());
    if let Some(frame) = wire::encode(encoding, &ServerFrame::Error(error)) {
        let _ = send_before(io, frame, deadline).await;
    }
    let close = frame::close(CloseReason::TooManyConnections);
    if send_before(io, close, deadline).await.is_ok() {
        Box::pin(linger(stream, Ending::ServerClosing, None)).await;
    }
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

struct Handler {
    state: AppState,
    conn: Arc<ConnHandle>,
    /// Channels this connection is subscribed to.
    subscriptions: HashSet<Arc<str>>,
    /// Channels this connection was allowed to publish to, each with the authorisation
    /// generation the decision was made at: once any room's rules change, the generation moves
    /// and the next publish asks again. At most [`MAX_PUBLISH_RIGHTS`].
    publish_rights: HashMap<Arc<str>, u64>,
    rate: DefaultDirectRateLimiter,
    /// Budget for every request but publish and ping (`SWITCHBOARD_REQUEST_RATE`).
    requests: DefaultDirectRateLimiter,
    pending: FuturesUnordered<PendingAck>,
    token: TokenClock,
    /// This connection's places in the per-user and per-address caps.
    _places: Places,
}

/// When the connection's access token must be renewed: the `token_expiring` warning, then the
/// 4002 close. An `auth` frame with a fresh token of the same session moves both.
struct TokenClock {
    warn_at: Instant,
    warned: bool,
    close_at: Instant,
    /// The token's expiry (Unix seconds), for the warning's `expires_in`.
    expires: u64,
}

impl TokenClock {
    fn of(p: &Principal) -> TokenClock {
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The hub's view of this connection's read authorisation while a subscription is set up (see
/// [`Admission`]): unchanged while no room's rules moved since it was checked.
struct Gate<'a> {
    authz: &'a Authz,
    who: &'a Principal,
    channel: &'a Channel,
    generation: AtomicU64,
}

impl Admission for Gate<'_> {
    fn unchanged(&self) -> bool {
        self.authz.generation() == self.generation.load(Ordering::Acquire)
    }

    fn recheck(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let generation = self.authz.generation();
            // A storage failure refuses: the subscribe is answered `forbidden` and may be retried.
            let allowed = self.authz.can_read(self.who, self.channel).await.is_ok();
            if allowed {
                self.generation.store(generation, Ordering::Release);
            }
            allowed
        })
    }
}

impl Handler {
    fn new(state: AppState, conn: Arc<ConnHandle>, places: Places) -> Handler {
        let per_sec = NonZeroU32::new(state.config.publish_rate.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(state.config.publish_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Handler {
            rate: RateLimiter::direct_with_clock(
                Quota::per_second(per_sec).allow_burst(burst),
                RATE_CLOCK.clone(),
            ),
            requests: RateLimiter::direct_with_clock(
                Quota::per_second(
                    NonZeroU32::new(state.config.request_rate.max(1)).unwrap_or(NonZeroU32::MIN),
                )
                .allow_burst(
                    NonZeroU32::new(state.config.request_burst.max(1)).unwrap_or(NonZeroU32::MIN),
                ),
                RATE_CLOCK.clone(),
            ),
            token: TokenClock::of(&conn.principal),
            state,
            conn,
            subscriptions: HashSet::new(),
            publish_rights: HashMap::new(),
            pending: FuturesUnordered::new(),
            _places: places,
        }
    }

    fn principal(&self) -> &Principal {
        &self.conn.principal
    }

    /// The request handlers' futures (subscribe with replay, history, storage reads) are boxed
    /// per request so that the state an idle connection keeps alive is only this small loop.
    /// Also keeps the connection's time, with one timer: it pings the client every ping
    /// interval and closes the connection once nothing (not even a pong) has come from the
    /// client for the idle timeout.
    async fn serve(&mut self, stream: &mut Frames) -> Ending {
        let idle = self.state.config.idle_timeout().min(MAX_TIMER);
        let ping_every = self
            .state
            .config
            .ping_interval()
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
                Some(frame.id()),
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

    /// The hub ended the subscription to `name` (its rules no longer admit this user; the client
    /// was told): forget it here too, with the user's presence there and any publish right.
    async fn forget(&mut self, name: &Arc<str>) {
        self.publish_rights.remove(name);
        if self.subscriptions.remove(name) && name.starts_with("room:") {
            self.state.presence.leave(name, &self.conn.principal).await;
        }
    }

    /// Takes the connection out of a channel: the hub's subscription and, for rooms, presence.
    async fn leave(&mut self, name: &Arc<str>) {
        self.state.hub.unsubscribe(name, self.conn.conn_id);
        if name.starts_with("room:") {
            self.state.presence.leave(name, &self.conn.principal).await;
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
                tracing::warn!(error = ?e, "presence read failed");
                self.error(
                    Some(id),
                    ErrorCode::Unavailable,
                    "presence is unavailable".into(),
                );
            }
        }
    }

    /// A fresh token of the same login session (after a refresh) renews the connection's
    /// lease on life; another user's or another session's is refused (a connection belongs to
    /// one session, so logging that session out closes it).
    fn reauth(&mut self, id: i64, token: &str) {
        match self.state.auth.authenticate(token) {
            Ok(p) if p.user_id != self.principal().user_id => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "a connection cannot change user".into(),
            ),
            Ok(p) if p.session_id != self.principal().session_id => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "a connection belongs to one login session: reconnect to use another".into(),
            ),
            Ok(p) => {
                self.token = TokenClock::of(&p);
                self.ack_auth(id);
            }
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
        if !self.subscriptions.contains(&name) && self.subscriptions.len() >= max {
            return self.error(
                Some(id),
                ErrorCode::TooLarge,
                format!("subscription limit ({max}) reached"),
            );
        }
        let generation = self.state.authz.generation();
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let conn = self.conn.clone();
        let gate = Gate {
            authz: &self.state.authz,
            who: &self.conn.principal,
            channel: &channel,
            generation: AtomicU64::new(generation),
        };
        let registered = |offset| {
            let _ = conn.send(&ServerFrame::Ack(Ack {
                id,
                offset: Some(offset),
                ..Default::default()
            }));
        };
        let subscribed = self
            .state
            .hub
            .subscribe(&name, &conn, since, &gate, registered)
            .await;
        match subscribed {
            Ok(()) => {
                let first = self.subscriptions.insert(name.clone());
                if first && channel.room().is_some() {
                    self.state.presence.enter(&name, &self.conn.principal).await;
                }
            }
            Err(SubscribeError::Closed | SubscribeError::Evicted) => {}
            Err(SubscribeError::Forbidden) => {
                self.forget(&name).await;
                let mut error = ErrorFrame::new(
                    Some(id),
                    ErrorCode::Forbidden,
                    "access to this channel was withdrawn",
                );
                error.channel = Some(name.to_string());
                let _ = self.conn.send(&ServerFrame::Error(error));
            }
            Err(e) => {
                self.state.hub.unsubscribe(&name, self.conn.conn_id);
                tracing::warn!(error = ?e, channel = raw, "subscribe failed");
                self.error(Some(id), ErrorCode::Unavailable, e.to_string());
            }
        }
    }

    async fn unsubscribe(&mut self, id: i64, raw: &str) {
        let name: Arc<str> = raw.into();
        if self.subscriptions.remove(&name) {
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
        if let Err(e) = self
            .state
            .publish_budget
            .spend(publish::budget::Payer::User(&self.conn.principal.user_id))
        {
            return self.error(Some(id), ErrorCode::RateLimited, e.to_string());
        }
        let data = match serde_json::value::to_raw_value(&data) {
            Ok(data) => data,
            Err(e) => return self.error(Some(id), ErrorCode::BadRequest, e.to_string()),
        };
        let name: Arc<str> = raw.into();
        let generation = self.state.authz.generation();
        if self.publish_rights.get(&name) != Some(&generation) {
            if let Err(e) = self
                .state
                .authz
                .can_publish(self.principal(), &channel)
                .await
            {
                self.publish_rights.remove(&name);
                return self.error(Some(id), e.code(), e.to_string());
            }
            if self.publish_rights.len() >= MAX_PUBLISH_RIGHTS {
                self.publish_rights.clear();
            }
            // Stamped with the generation read before the check: a change during it makes the
            // right stale at once.
            self.publish_rights.insert(name.clone(), generation);
        }
        // Queue to storage now, in arrival order, and wait for the ack alongside further reads:
        // a connection can have many publishes in flight, and their order on a channel holds.
        let state = self.state.clone();
        let principal = self.principal().clone();
        let submitted = publish::submit(&state, &principal.user_id, &channel, data);
        self.pending
            .push(Box::pin(async move { (id, submitted.await) }));
    }

    fn answer_publish(&self, id: i64, result: Result<u64, publish::Error>) {
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
            .messages_before(&raw.into(), before, limit, self.state.config.page_bytes)
            .await
        {
            Ok(page) => match wire::history(self.conn.encoding, id, &page.messages) {
                Ok(frame) => {
                    let _ = self.conn.push(frame);
                }
                Err(e) => {
                    tracing::error!(error = ?e, "history page could not be encoded");
                    self.error(
                        Some(id),
                        ErrorCode::Unavailable,
                        "history is unavailable".into(),
                    );
                }
            },
            Err(e) => {
                tracing::warn!(error = ?e, "history read failed");
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
        let _ = self.conn.send(&ServerFrame::Ack(ack));
    }

    fn error(&self, id: Option<i64>, code: ErrorCode, message: String) {
        let _ = self
            .conn
            .send(&ServerFrame::Error(ErrorFrame::new(id, code, message)));
    }

    /// Connection cleanup, the one place a connection is taken out of the hub.
    async fn close(&mut self) {
        let names: Vec<Arc<str>> = self.subscriptions.drain().collect();
        for name in names {
            self.leave(&name).await;
        }
        self.state.hub.detach(self.conn.conn_id);
        self.conn.close(CloseReason::Normal);
    }
}
