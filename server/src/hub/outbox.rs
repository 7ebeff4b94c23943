//! A connection's outbound path: the only thing the hub touches to reach a socket.
//!
//! Frames arrive already encoded as complete WebSocket frames (see [`super::frame`]), shared by
//! every subscriber of a message. A push onto an empty queue is written straight into the
//! socket from the pushing task (the fan-out loop) with a non-blocking write: no task wake-up,
//! no scheduler round trip, no copy. Only when the socket would block (the client reads slower
//! than we send) does the rest wait in the queue, and only then does the connection get a writer
//! task, which drains the queue with one vectored write per batch as the socket allows and ends
//! when the queue is empty: an idle connection has no writer task at all. Order holds because a
//! push writes through only while nothing is queued, and all writes happen under the queue's
//! lock.
//!
//! The queue is bounded in bytes: a push that would exceed the bound closes the connection as a
//! slow consumer (4008), which then recovers from history with `since`.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use switchboard_protocol::close;
use switchboard_protocol::Encoding;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::frame;
use crate::auth::Principal;
use crate::metrics;

/// The socket a connection writes to; shared with the connection's reader, which polls the same
/// socket for reads under the same lock (reads and writes register separate wakers).
pub type SharedIo = Arc<Mutex<Pin<Box<dyn Io>>>>;

/// What a connection's socket must be: a tokio byte stream.
pub trait Io: tokio::io::AsyncRead + AsyncWrite + Send {}
impl<T: tokio::io::AsyncRead + AsyncWrite + Send> Io for T {}

/// Most frames gathered into one vectored write by the writer task.
const MAX_IOV: usize = 64;

/// How long a close frame may take to go out before the socket is simply dropped. A slow
/// consumer's close waits behind whatever its socket buffers still hold, so this gives a client
/// that is merely slow (not gone) time to read up to the 4008 and know to resume with `since`.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// How long a history replay waits for a client to read half its queue before cutting it off.
const REPLAY_STALL: Duration = Duration::from_secs(30);

/// Why a push did not queue the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue was full: the connection is now being closed as a slow consumer.
    Full,
    /// The connection is already closing.
    Closed,
}

/// How the connection ends once the writer sees it.
#[derive(Debug, Clone)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
    /// Drop what is queued and close now (slow consumer) instead of flushing it first.
    pub immediate: bool,
}

impl Close {
    /// The client reads too slowly to keep up (4008): it resumes with `since`.
    const SLOW_CONSUMER: Close = Close {
        code: close::SLOW_CONSUMER,
        reason: "slow consumer",
        immediate: true,
    };
    /// The socket is gone or the writer has finished: nothing more is sent.
    const ENDED: Close = Close {
        code: close::NORMAL,
        reason: "",
        immediate: true,
    };
}

/// Points `slots` at the first frames of `frames` (as many as fit) for one vectored write.
fn gather<'a, 'b>(
    slots: &'a mut [IoSlice<'b>; MAX_IOV],
    frames: impl IntoIterator<Item = &'b Bytes>,
) -> &'a [IoSlice<'b>] {
    let mut count = 0;
    for (slot, frame) in slots.iter_mut().zip(frames) {
        *slot = IoSlice::new(frame);
        count += 1;
    }
    &slots[..count]
}

#[derive(Default)]
struct State {
    /// Wire bytes not yet written, in order. The head may be the unwritten rest of a frame.
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// The head of `queue` is a frame already partly on the wire: it must be finished before
    /// anything else (even a close frame) is written, or the stream would be corrupt.
    head_started: bool,
    close: Option<Close>,
    /// A write failed: the socket is gone, nothing more can be sent.
    broken: bool,
    /// A writer task exists (it is draining the queue or closing). Set for good once the
    /// connection is closed, so that no writer is started after the last one.
    writer: bool,
    /// The connection is closed: see [`Outbox::done`].
    finished: bool,
    /// Channels whose subscription the hub ended (a room's rules changed), for the session to
    /// forget: see [`Outbox::ended_subscriptions`].
    ended: Vec<Arc<str>>,
}

impl State {
    /// Drops what is queued, except the rest of a frame already partly written.
    fn discard(&mut self) {
        let keep = if self.head_started {
            self.queue.pop_front()
        } else {
            None
        };
        self.queue.clear();
        self.bytes = 0;
        if let Some(rest) = keep {
            self.bytes = rest.len();
            self.queue.push_back(rest);
        }
        if self.queue.capacity() > KEEP_CAPACITY {
            self.queue.shrink_to(KEEP_CAPACITY);
        }
    }

    /// Removes `n` written bytes from the front of the queue.
    fn advance(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(head) = self.queue.front_mut() else {
                break;
            };
            if n < head.len() {
                head.advance(n);
                self.head_started = true;
                return;
            }
            n -= head.len();
            self.queue.pop_front();
            self.head_started = false;
        }
        if self.queue.is_empty() && self.queue.capacity() > KEEP_CAPACITY {
            // A burst (a room's join events, a replay) grew the queue; an idle connection should
            // not keep what its busiest moment needed.
            self.queue.shrink_to(KEEP_CAPACITY);
        }
    }
}

/// Queue slots kept once a burst has drained.
const KEEP_CAPACITY: usize = 4;

pub struct Outbox {
    pub conn_id: u64,
    pub encoding: Encoding,
    pub principal: Principal,
    limit: usize,
    io: SharedIo,
    state: Mutex<State>,
    /// → writer: an immediate close was requested while it waits for the socket.
    wake_writer: Notify,
    /// Writer → catch-up readers waiting for room: the queue was drained below half.
    drained: Notify,
    /// Notified (with `State::finished` set) when the writer has closed the connection or found
    /// the socket gone: the reader loop ends and the session cleans up. A `Notify` rather than a
    /// cancellation token: it lives inline, where a token is one more allocation per connection.
    finished: Notify,
    /// Hub → session: a subscription was ended (`State::ended` holds which).
    session_wake: Notify,
}

/// What the writer has to do next.
enum Work {
    /// Frames are queued: wait for the socket and write them. `closing`: a graceful close waits
    /// behind them, so this flush is bounded by the close's grace (a client that stopped reading
    /// would otherwise hold the connection open forever).
    Flush {
        closing: bool,
    },
    Close(Close),
}

impl Outbox {
    pub fn new(
        conn_id: u64,
        encoding: Encoding,
        principal: Principal,
        limit: usize,
        io: SharedIo,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            conn_id,
            encoding,
            principal,
            limit,
            io,
            state: Mutex::new(State::default()),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            finished: Notify::new(),
            session_wake: Notify::new(),
        })
    }

    /// Tells the session that the hub ended its subscription to `channel` (the hub no longer
    /// delivers it; the session drops its own record and the user's presence there).
    pub fn subscription_ended(&self, channel: Arc<str>) {
        self.state.lock().ended.push(channel);
        self.session_wake.notify_one();
    }

    /// Resolves with the channels whose subscriptions the hub ended since the last call.
    pub async fn ended_subscriptions(&self) -> Vec<Arc<str>> {
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
    pub fn push(self: &Arc<Self>, frame: Bytes) -> Result<(), PushError> {
        self.push_all(std::slice::from_ref(&frame))
    }

    /// Sends frames in order, as [`Outbox::push`] does, with one write for all of them.
    pub fn push_all(self: &Arc<Self>, frames: &[Bytes]) -> Result<(), PushError> {
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
                    state.close = Some(Close::ENDED);
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
            state.close = Some(Close::SLOW_CONSUMER);
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

    /// Starts the writer task unless one is running. Only ever called from runtime threads (the
    /// hub, sessions and the server's tasks push); a task spawned elsewhere would have no
    /// runtime, and the frame stays queued for the connection's close to deal with.
    fn start_writer(self: &Arc<Self>, state: &mut State) {
        if state.writer {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                state.writer = true;
                runtime.spawn(self.clone().write());
            }
            Err(_) => tracing::error!(conn = self.conn_id, "outbox pushed to outside the runtime"),
        }
    }

    /// One non-blocking write attempt; `Ok(0)` when the socket would block. The socket's write
    /// waker is left as a no-op: the writer task, which we start whenever anything is left
    /// queued, registers its own when it polls.
    ///
    /// Exempt from tokio's cooperative budget: a fan-out writes to thousands of sockets within
    /// one poll of its task, and past the budget (128 operations) tokio would answer every
    /// write with `Pending` without trying it, sending each remaining delivery through a writer
    /// task. The writes never wait, so there is nothing for the budget to protect.
    fn try_write(&self, frames: &[Bytes]) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let slices = gather(&mut slices, frames);
        let mut cx = Context::from_waker(Waker::noop());
        let mut io = self.io.lock();
        let attempt = tokio::task::coop::unconstrained(std::future::poll_fn(|cx| {
            io.as_mut().poll_write_vectored(cx, slices)
        }));
        match std::pin::pin!(attempt).poll(&mut cx) {
            Poll::Ready(Ok(0)) if slices.iter().any(|s| !s.is_empty()) => {
                Err(io::ErrorKind::WriteZero.into())
            }
            Poll::Ready(result) => result,
            Poll::Pending => Ok(0),
        }
    }

    /// Waits until the queue holds at most half its bound (or the connection is closing). Used by
    /// history replay, which must not overflow the queue it is filling. A client that takes in
    /// less than half the queue within `REPLAY_STALL` is cut off as a slow consumer: the session
    /// waits here, and would otherwise wait for as long as the client does not read.
    pub async fn room(self: &Arc<Self>) -> Result<(), PushError> {
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
                self.close(Close::SLOW_CONSUMER);
                return Err(PushError::Full);
            }
        }
    }

    /// Closes the connection after what is queued (or at once, dropping it, if `immediate`);
    /// the first close requested wins. [`Outbox::done`] resolves once it is closed.
    pub fn close(self: &Arc<Self>, close: Close) {
        let mut state = self.state.lock();
        if state.close.is_none() {
            if close.immediate {
                state.discard();
            }
            state.close = Some(close);
        }
        self.start_writer(&mut state);
        drop(state);
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
    }

    /// Resolves once an immediate close was requested: lets the writer abandon a flush that a
    /// client who stopped reading would otherwise block forever.
    async fn killed(&self) {
        loop {
            let woken = self.wake_writer.notified();
            if self
                .state
                .lock()
                .close
                .as_ref()
                .is_some_and(|c| c.immediate)
            {
                return;
            }
            woken.await;
        }
    }

    /// The writer task: drains what a blocked socket left queued, performs the close, and ends
    /// as soon as neither is left to do.
    async fn write(self: Arc<Self>) {
        // Set once a close is due: flushing what precedes the close frame and sending it share
        // one `CLOSE_GRACE`, whatever the client does.
        let mut close_by = None;
        loop {
            match self.next_work() {
                None => return,
                Some(Work::Flush { closing }) => {
                    if closing {
                        close_by.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
                    }
                    let far = Instant::now() + Duration::from_secs(86_400 * 365);
                    // A client that stopped reading never makes the socket writable again; the
                    // overflow of its queue (or shutdown) must still end it. Killed mid-flush:
                    // loop round, where the close is due.
                    let flushed = tokio::select! {
                        flushed = tokio::time::timeout_at(close_by.unwrap_or(far), self.flush()) => flushed,
                        _ = self.killed() => continue,
                    };
                    if !matches!(flushed, Ok(Ok(()))) {
                        break;
                    }
                }
                Some(Work::Close(close)) => {
                    let by = *close_by.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
                    let _ = tokio::time::timeout_at(by, self.send_close(&close)).await;
                    break;
                }
            }
        }
        // Closed (or the socket failed): whatever is still queued cannot be sent any more, and
        // `writer` stays set so that nothing starts another.
        let mut state = self.state.lock();
        state.close.get_or_insert(Close::ENDED);
        state.queue.clear();
        state.bytes = 0;
        state.finished = true;
        drop(state);
        self.drained.notify_waiters();
        self.finished.notify_waiters();
    }

    /// Resolves once the connection is closed: its close frame is out (or the close grace
    /// passed), or the socket failed.
    pub async fn done(&self) {
        loop {
            let finished = self.finished.notified();
            if self.state.lock().finished {
                return;
            }
            finished.await;
        }
    }

    /// What the writer does next; `None` (and the writer is gone) when nothing is queued and no
    /// close is due. A graceful close is due only once the frames queued before it are written.
    fn next_work(&self) -> Option<Work> {
        let mut state = self.state.lock();
        if let Some(close) = &state.close {
            if close.immediate || state.queue.is_empty() {
                return Some(Work::Close(close.clone()));
            }
        }
        if state.queue.is_empty() {
            state.writer = false;
            return None;
        }
        Some(Work::Flush {
            closing: state.close.is_some(),
        })
    }

    /// Writer side: writes everything queued, waiting for the socket as needed.
    async fn flush(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state.lock();
        if state.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let mut io = self.io.lock();
        while !state.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let slices = gather(&mut slices, &state.queue);
            let written = match io.as_mut().poll_write_vectored(cx, slices) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    state.broken = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(0)) => {
                    state.broken = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
            };
            let was_over_half = state.bytes > self.limit / 2;
            state.advance(written);
            if was_over_half && state.bytes <= self.limit / 2 {
                self.drained.notify_waiters();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writer side: sends the close frame after whatever must still go first, then shuts the
    /// socket's write side. The caller bounds how long this may take.
    async fn send_close(&self, close: &Close) -> io::Result<()> {
        {
            let mut state = self.state.lock();
            if state.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let frame = frame::close(close.code, close.reason);
            state.bytes += frame.len();
            state.queue.push_back(frame);
        }
        self.flush().await?;
        std::future::poll_fn(|cx| self.io.lock().as_mut().poll_shutdown(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn outbox(io: impl Io + 'static, limit: usize) -> Arc<Outbox> {
        let who = Principal {
            user_id: "u".into(),
            username: "u".into(),
            session_id: "s".into(),
            valid_until: u64::MAX,
            lifetime_secs: 900,
        };
        let io: Pin<Box<dyn Io>> = Box::pin(io);
        Outbox::new(1, Encoding::Json, who, limit, Arc::new(Mutex::new(io)))
    }

    fn frame_of(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    /// Frames pushed while the socket blocks, singly and in batches, come out complete and in
    /// order once the reader catches up, across partial writes, followed by the close frame.
    #[tokio::test]
    async fn order_survives_partial_writes_and_blocking() {
        // A 1 KiB pipe: most pushes block or write partly.
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let out = outbox(ours, 1 << 20);
        let mut expected = Vec::new();
        let mut batch = Vec::new();
        for i in 0..200u8 {
            let f = frame_of(100 + i as usize, i);
            expected.extend_from_slice(&f);
            batch.push(f);
            // Singles and batches of up to 6 frames, each batch one vectored write.
            if batch.len() > (i as usize % 7) {
                out.push_all(&batch).unwrap();
                batch.clear();
            }
        }
        out.push_all(&batch).unwrap();
        out.close(Close {
            code: 1000,
            reason: "",
            immediate: false,
        });
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        out.done().await;
        let close = frame::close(1000, "");
        assert_eq!(got.len(), expected.len() + close.len());
        assert!(
            got[..expected.len()] == expected[..],
            "bytes reordered or torn"
        );
        assert_eq!(&got[expected.len()..], &close[..]);
    }

    /// Frames a socket takes at once need no writer task, so an idle connection has none.
    #[tokio::test]
    async fn a_writable_socket_needs_no_writer() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let out = outbox(ours, 1 << 20);
        for i in 0..10u8 {
            out.push(frame_of(100, i)).unwrap();
        }
        assert!(!out.state.lock().writer);
        let mut got = vec![0u8; 1000];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(got[999], 9);
    }

    /// A slow consumer's close drops what is queued but finishes the frame already partly on
    /// the wire, so the client still parses a valid stream up to the close frame.
    #[tokio::test]
    async fn overflow_keeps_the_started_frame_whole() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let out = outbox(ours, 1000);
        out.push(frame_of(100, 1)).unwrap(); // 64 written, 36 queued
        out.push(frame_of(500, 2)).unwrap();
        assert_eq!(out.push(frame_of(500, 3)), Err(PushError::Full));
        assert_eq!(out.push(frame_of(1, 4)), Err(PushError::Closed));
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        out.done().await;
        assert_eq!(&got[..100], &[1u8; 100][..]);
        assert_eq!(
            &got[100..],
            &frame::close(close::SLOW_CONSUMER, "slow consumer")[..]
        );
    }

    /// A graceful close behind frames a client never reads still ends the connection, within
    /// the close grace (time is paused: the runtime skips ahead while everything waits).
    #[tokio::test(start_paused = true)]
    async fn a_graceful_close_gives_up_on_a_client_that_never_reads() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let out = outbox(ours, 1 << 20);
        out.push(frame_of(1000, 1)).unwrap();
        out.close(Close {
            code: 1000,
            reason: "",
            immediate: false,
        });
        let started = Instant::now();
        tokio::time::timeout(CLOSE_GRACE * 2, out.done())
            .await
            .expect("the close waited for the client forever");
        assert!(started.elapsed() <= CLOSE_GRACE + Duration::from_secs(1));
    }
}
