//! A connection's outbound queue: the only thing the hub touches to reach a socket.
//!
//! The hub pushes already-encoded frames (a reference-count clone each) without ever awaiting;
//! the connection's writer task swaps the whole queue out, writes it, and flushes once, so a busy
//! connection costs one syscall per batch rather than per message. The queue is bounded in bytes:
//! a push that would exceed the bound closes the connection as a slow consumer (4008), which then
//! recovers from history with `since`.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::ws::Message;
use parking_lot::Mutex;
use switchboard_protocol::close;
use switchboard_protocol::Encoding;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::metrics;

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

#[derive(Default)]
struct State {
    frames: VecDeque<Message>,
    bytes: usize,
    close: Option<Close>,
}

pub struct Outbox {
    pub conn_id: u64,
    pub encoding: Encoding,
    pub principal: Principal,
    limit: usize,
    state: Mutex<State>,
    /// Pushers → writer: there is something to send (or a close to perform).
    wake_writer: Notify,
    /// Writer → catch-up readers waiting for room: the queue was drained.
    drained: Notify,
    /// Cancelled by the writer when it has stopped (socket closed or failed): the reader loop
    /// ends and the session cleans up.
    pub done: CancellationToken,
}

/// What the writer takes out of the outbox in one go.
pub enum Batch {
    Frames,
    Close(Close),
}

impl Outbox {
    pub fn new(
        conn_id: u64,
        encoding: Encoding,
        principal: Principal,
        limit: usize,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            conn_id,
            encoding,
            principal,
            limit,
            state: Mutex::new(State::default()),
            wake_writer: Notify::new(),
            drained: Notify::new(),
            done: CancellationToken::new(),
        })
    }

    /// Queues a frame; never waits. On overflow the connection is closed as a slow consumer.
    pub fn push(&self, frame: Message) -> Result<(), PushError> {
        let len = frame_len(&frame);
        let mut state = self.state.lock();
        if state.close.is_some() {
            return Err(PushError::Closed);
        }
        // An empty queue always takes one frame, so a frame larger than the bound still goes out.
        if state.bytes > 0 && state.bytes + len > self.limit {
            state.close = Some(Close {
                code: close::SLOW_CONSUMER,
                reason: "slow consumer",
                immediate: true,
            });
            state.frames.clear();
            state.bytes = 0;
            drop(state);
            metrics::SLOW_CONSUMERS.increment(1);
            self.wake_writer.notify_one();
            self.drained.notify_waiters();
            return Err(PushError::Full);
        }
        // Only the first frame of a batch needs to wake the writer: it takes everything queued.
        let was_empty = state.frames.is_empty();
        state.bytes += len;
        state.frames.push_back(frame);
        drop(state);
        if was_empty {
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Waits until the queue holds at most half its bound (or the connection is closing). Used by
    /// history replay, which must not overflow the queue it is filling.
    pub async fn room(&self) -> Result<(), PushError> {
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
            drained.await;
        }
    }

    /// Asks the writer to close the connection; the first close requested wins.
    pub fn close(&self, close: Close) {
        let mut state = self.state.lock();
        if state.close.is_none() {
            if close.immediate {
                state.frames.clear();
                state.bytes = 0;
            }
            state.close = Some(close);
        }
        drop(state);
        self.wake_writer.notify_one();
        self.drained.notify_waiters();
    }

    /// Resolves once an immediate close was requested: lets the writer abandon a write that a
    /// client who stopped reading would otherwise block forever.
    pub async fn killed(&self) {
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

    /// Writer side: waits for work, then moves every queued frame into `out` (which the writer
    /// keeps between calls, so steady state allocates nothing). Returns `Close` only once the
    /// frames queued before a graceful close have been taken.
    pub async fn take(&self, out: &mut VecDeque<Message>) -> Batch {
        loop {
            let woken = self.wake_writer.notified();
            {
                let mut state = self.state.lock();
                if let Some(close) = &state.close {
                    if close.immediate || state.frames.is_empty() {
                        return Batch::Close(close.clone());
                    }
                }
                if !state.frames.is_empty() {
                    std::mem::swap(&mut state.frames, out);
                    // Only a replay waits for room, and only once the queue is past half full.
                    let was_half_full = state.bytes > self.limit / 2;
                    state.bytes = 0;
                    drop(state);
                    if was_half_full {
                        self.drained.notify_waiters();
                    }
                    return Batch::Frames;
                }
            }
            woken.await;
        }
    }
}

fn frame_len(frame: &Message) -> usize {
    match frame {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 16,
    }
}
