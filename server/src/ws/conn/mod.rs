//! One WebSocket connection's outbound side, and the handle the rest of the server holds it by.
//!
//! Everything about the socket of one connection lives under here: the [`frame`]s that go on the
//! wire and their [`wire`] encodings, the byte-bounded [`queue`], the write-through path and the
//! [`writer`] task, the read side tungstenite parses ([`inbound`]), and why a connection ends
//! ([`close`]). The hub and the session know a connection only as a [`ConnHandle`].
//!
//! Frames arrive already encoded as complete WebSocket frames, shared by every subscriber of a
//! message. A push onto an empty queue is written straight into the socket from the pushing task
//! (the fan-out loop) with a non-blocking write: no task wake-up, no scheduler round trip, no
//! copy. Only when the socket would block (the client reads slower than we send) does the rest
//! wait in the queue, and only then does the connection get a writer task, which drains the
//! queue with one vectored write per batch as the socket allows and ends when the queue is
//! empty: an idle connection has no writer task at all. Order holds because a push writes
//! through only while nothing is queued, and all writes happen under the queue's lock.
//!
//! The queue is bounded in bytes: a push that would exceed the bound closes the connection as a
//! slow consumer (4008), which then recovers from history with `since`.

pub(crate) mod close;
pub(crate) mod frame;
pub(crate) mod inbound;
mod queue;
pub(crate) mod wire;
mod writer;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use switchboard_protocol::{Encoding, ServerFrame};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;

use crate::auth::Principal;
use crate::metrics;
pub(crate) use close::CloseReason;
use queue::Queue;
pub(crate) use writer::CLOSE_GRACE;

/// The socket a connection writes to; shared with the connection's reader, which polls the same
/// socket for reads under the same lock (reads and writes register separate wakers).
pub(crate) type SharedIo = Arc<Mutex<Pin<Box<dyn Io>>>>;

/// What a connection's socket must be: a tokio byte stream.
pub(crate) trait Io: tokio::io::AsyncRead + AsyncWrite + Send {}
impl<T: tokio::io::AsyncRead + AsyncWrite + Send> Io for T {}

/// How long a history replay waits for a client to read half its queue before cutting it off.
const REPLAY_STALL: Duration = Duration::from_secs(30);

/// Why a push did not queue the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue was full: the connection is now being closed as a slow consumer.
    Full,
    /// The connection is already closing.
    Closed,
}

pub(crate) struct ConnHandle {
    pub conn_id: u64,
    pub encoding: Encoding,
    pub principal: Principal,
    limit: usize,
    io: SharedIo,
    state: Mutex<Queue>,
    /// → writer: an immediate close was requested while it waits for the socket.
    wake_writer: Notify,
    /// Writer → catch-up readers waiting for room: the queue was drained below half.
    drained: Notify,
    /// Notified (with `Queue::finished` set) when the writer has closed the connection or found
    /// the socket gone: the reader loop ends and the session cleans up. A `Notify` rather than a
    /// cancellation token: it lives inline, where a token is one more allocation per connection.
    finished: Notify,
    /// Hub → session: a subscription was ended (`Queue::ended` holds which).
    session_wake: Notify,
    /// The users this connection's user blocked, shared with their other connections here:
    /// their messages reach it hidden (offset kept, content left out). `hides_any` spares the
    /// lock for the common empty list.
    hidden: Mutex<Option<Arc<HashSet<String>>>>,
    hides_any: AtomicBool,
}

impl ConnHandle {
    pub(crate) fn new(
        conn_id: u64,
        encoding: Encoding,
        principal: Principal,
        limit: usize,
        io: SharedIo,
    ) -> Arc<ConnHandle> {
        Arc::new(ConnHandle {
            conn_id,
            encoding,
            principal,
            limit,
            io,
            state: Mutex::new(Queue::default()),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            finished: Notify::new(),
            session_wake: Notify::new(),
            hidden: Mutex::new(None),
            hides_any: AtomicBool::new(false),
        })
    }

    /// Replaces the list of users whose messages this connection shows hidden.
    pub(crate) fn set_hidden(&self, users: Arc<HashSet<String>>) {
        let any = !users.is_empty();
        // Held even when empty: the node's cache of block lists lives as long as a holder.
        *self.hidden.lock() = Some(users);
        self.hides_any.store(any, Ordering::Release);
    }

    /// Whether messages from `user` reach this connection hidden (its user blocked them).
    #[inline]
    pub(crate) fn hides(&self, user: &str) -> bool {
        self.hides_any.load(Ordering::Acquire)
            && self
                .hidden
                .lock()
                .as_ref()
                .is_some_and(|set| set.contains(user))
    }

    /// A connection of user `u` (session `s`, a token that never expires) in JSON over `io`,
    /// for unit tests of what holds connections.
    #[cfg(test)]
    pub(crate) fn for_tests(conn_id: u64, limit: usize, io: impl Io + 'static) -> Arc<ConnHandle> {
        let who = Principal {
            user_id: "u".into(),
            username: "u".into(),
            session_id: "s".into(),
            valid_until: u64::MAX,
            lifetime_secs: 900,
        };
        let io: Pin<Box<dyn Io>> = Box::pin(io);
        ConnHandle::new(
            conn_id,
            Encoding::Json,
            who,
            limit,
            Arc::new(Mutex::new(io)),
        )
    }

    /// Tells the session that the hub ended its subscription to `channel` (the hub no longer
    /// delivers it; the session drops its own record and the user's presence there).
    pub(crate) fn subscription_ended(&self, channel: Arc<str>) {
        self.state.lock().ended.push(channel);
        self.session_wake.notify_one();
    }

    /// Resolves with the channels whose subscriptions the hub ended since the last call.
    pub(crate) async fn ended_subscriptions(&self) -> Vec<Arc<str>> {
        loop {
            let woken = self.session_wake.notified();
            let ended = std::mem::take(&mut self.state.lock().ended);
            if !ended.is_empty() {
                return ended;
            }
            woken.await;
        }
    }

    /// Sends a frame, writing it through to the socket if nothing is queued, queueing it
    /// otherwise; never waits. On overflow the connection is closed as a slow consumer.
    pub(crate) fn push(self: &Arc<Self>, frame: Bytes) -> Result<(), PushError> {
        self.push_all(std::slice::from_ref(&frame))
    }

    /// Sends frames in order, as [`ConnHandle::push`] does, with one write for all of them.
    pub(crate) fn push_all(self: &Arc<Self>, frames: &[Bytes]) -> Result<(), PushError> {
        let len: usize = frames.iter().map(Bytes::len).sum();
        let mut state = self.state.lock();
        if state.close.is_some() {
            return Err(PushError::Closed);
        }
        // The bound holds for every frame, the first on an empty queue too: a frame bigger
        // than the whole queue would otherwise sit in memory however slowly the client reads.
        if state.queue.is_empty() && len <= self.limit {
            let mut written = match self.try_write(frames) {
                Ok(n) => n,
                Err(_) => {
                    // The socket is gone: the writer ends the connection.
                    state.broken = true;
                    state.close = Some(CloseReason::Ended);
                    self.start_writer(&mut state);
                    return Err(PushError::Closed);
                }
            };
            if written == len {
                return Ok(());
            }
            metrics::SOCKET_BLOCKED.increment(1);
            state.bytes = len - written;
            // Frames the socket took whole are done; the first one it took part of is the
            // started head of the queue.
            let mut taken = 0;
            while written >= frames[taken].len() {
                written -= frames[taken].len();
                taken += 1;
            }
            state.head_started = written > 0;
            state.queue.push_back(frames[taken].slice(written..));
            state.queue.extend(frames[taken + 1..].iter().cloned());
            self.start_writer(&mut state);
            return Ok(());
        }
        // Queue behind what is already waiting for the socket (the writer is awake); past the
        // bound, the client is too slow (or the frame too big) and the connection ends (4008).
        if state.bytes + len > self.limit {
            state.close = Some(CloseReason::SlowConsumer);
            state.discard();
            self.start_writer(&mut state);
            drop(state);
            metrics::SLOW_CONSUMERS.increment(1);
            self.wake_writer.notify_one();
            self.drained.notify_waiters();
            return Err(PushError::Full);
        }
        state.bytes += len;
        state.queue.extend(frames.iter().cloned());
        Ok(())
    }

    /// Encodes `frame` for this connection and sends it as [`ConnHandle::push`] does. `None`
    /// when it could not be encoded or queued.
    pub(crate) fn send(self: &Arc<Self>, frame: &ServerFrame) -> Option<()> {
        self.push(wire::encode(self.encoding, frame)?).ok()
    }

    /// Sends `frame` from `cache`, which holds it encoded once per encoding: the first
    /// connection of an encoding encodes it, every other one shares the bytes.
    pub(crate) fn send_shared(self: &Arc<Self>, cache: &wire::PerEncoding, frame: &ServerFrame) {
        let encoding = self.encoding;
        if let Some(bytes) = cache.get_or_encode(encoding, || wire::encode(encoding, frame)) {
            let _ = self.push(bytes);
        }
    }

    /// Waits until the queue holds at most half its bound (or the connection is closing). Used by
    /// history replay, which must not overflow the queue it is filling. A client that takes in
    /// less than half the queue within `REPLAY_STALL` is cut off as a slow consumer: the session
    /// waits here, and would otherwise wait for as long as the client does not read.
    pub(crate) async fn wait_for_capacity(self: &Arc<Self>) -> Result<(), PushError> {
        let deadline = tokio::time::Instant::now() + REPLAY_STALL;
        loop {
            let drained = self.drained.notified();
            {
                let state = self.state.lock();
                if state.close.is_some() {
                    return Err(PushError::Closed);
                }
                if state.bytes <= self.limit / 2 {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                metrics::SLOW_CONSUMERS.increment(1);
                self.close(CloseReason::SlowConsumer);
                return Err(PushError::Full);
            }
        }
    }

    /// Closes the connection after what is queued (or at once, dropping it, if `immediate`);
    /// the first close requested wins. [`ConnHandle::done`] resolves once it is closed.
    pub(crate) fn close(self: &Arc<Self>, close: CloseReason) {
        let mut state = self.state.lock();
        if state.close.is_none() {
            if close.immediate() {
                state.discard();
            }
            state.close = Some(close);
        }
        self.start_writer(&mut state);
        drop(state);
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
    }

    /// Resolves once the connection is closed: its close frame is out (or the close grace
    /// passed), or the socket failed.
    pub(crate) async fn done(&self) {
        loop {
            let finished = self.finished.notified();
            if self.state.lock().finished {
                return;
            }
            finished.await;
        }
    }

    /// Shutdown: tells the client to reconnect after a random delay within `window` (so the
    /// clients of a draining node do not all arrive at the others at once), then closes with
    /// 1001 once what is queued is out.
    pub(crate) fn go_away(self: &Arc<Self>, window: Duration) {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let after_ms = if window_ms == 0 {
            0
        } else {
            rand::thread_rng().gen_range(0..=window_ms)
        };
        let _ = self.send(&ServerFrame::Reconnect { after_ms });
        self.close(CloseReason::GoingAway);
    }
}
