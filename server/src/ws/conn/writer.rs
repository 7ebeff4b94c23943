//! The writer side of a connection: the non-blocking write-through a push tries first, and the
//! writer task that drains what a blocked socket left queued and performs the close.

use std::future::Future;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::queue::{gather, Queue, MAX_IOV};
use super::{frame, CloseReason, ConnHandle};

/// How long a close frame may take to go out before the socket is simply dropped. A slow
/// consumer's close waits behind whatever its socket buffers still hold, so this gives a client
/// that is merely slow (not gone) time to read up to the 4008 and know to resume with `since`.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// What the writer has to do next.
enum Work {
    /// Frames are queued: wait for the socket and write them. `closing`: a graceful close waits
    /// behind them, so this flush is bounded by the close's grace (a client that stopped reading
    /// would otherwise hold the connection open forever).
    Flush {
        closing: bool,
    },
    Close(CloseReason),
}

impl ConnHandle {
    /// Starts the writer task unless one is running. Only ever called from runtime threads (the
    /// hub, sessions and the server's tasks push); a task spawned elsewhere would have no
    /// runtime, and the frame stays queued for the connection's close to deal with.
    pub(super) fn start_writer(self: &Arc<Self>, state: &mut Queue) {
        if state.writer {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                state.writer = true;
                runtime.spawn(self.clone().write());
            }
            Err(_) => tracing::error!(
                conn = self.conn_id,
                "a connection was pushed to outside the runtime"
            ),
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
    pub(super) fn try_write(&self, frames: &[Bytes]) -> io::Result<usize> {
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
                .is_some_and(|c| c.immediate())
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
                    let far = Instant::now() + crate::ws::MAX_TIMER;
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
                    let _ = tokio::time::timeout_at(by, self.send_close(close)).await;
                    break;
                }
            }
        }
        // Closed (or the socket failed): whatever is still queued cannot be sent any more, and
        // `writer` stays set so that nothing starts another.
        let mut state = self.state.lock();
        state.close.get_or_insert(CloseReason::Ended);
        state.queue.clear();
        state.bytes = 0;
        state.finished = true;
        drop(state);
        self.drained.notify_waiters();
        self.finished.notify_waiters();
    }

    /// What the writer does next; `None` (and the writer is gone) when nothing is queued and no
    /// close is due. A graceful close is due only once the frames queued before it are written.
    fn next_work(&self) -> Option<Work> {
        let mut state = self.state.lock();
        if let Some(close) = &state.close {
            if close.immediate() || state.queue.is_empty() {
                return Some(Work::Close(*close));
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
    async fn send_close(&self, close: CloseReason) -> io::Result<()> {
        {
            let mut state = self.state.lock();
            if state.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let frame = frame::close(close);
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

    use super::super::{Io, PushError};
    use super::*;

    fn conn(io: impl Io + 'static, limit: usize) -> Arc<ConnHandle> {
        ConnHandle::for_tests(1, limit, io)
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
        let out = conn(ours, 1 << 20);
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
        out.close(CloseReason::Normal);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        out.done().await;
        let close = frame::close(CloseReason::Normal);
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
        let out = conn(ours, 1 << 20);
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
        let out = conn(ours, 1000);
        out.push(frame_of(100, 1)).unwrap(); // 64 written, 36 queued
        out.push(frame_of(500, 2)).unwrap();
        assert_eq!(out.push(frame_of(500, 3)), Err(PushError::Full));
        assert_eq!(out.push(frame_of(1, 4)), Err(PushError::Closed));
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        out.done().await;
        assert_eq!(&got[..100], &[1u8; 100][..]);
        assert_eq!(&got[100..], &frame::close(CloseReason::SlowConsumer)[..]);
    }

    /// A graceful close behind frames a client never reads still ends the connection, within
    /// the close grace (time is paused: the runtime skips ahead while everything waits).
    #[tokio::test(start_paused = true)]
    async fn a_graceful_close_gives_up_on_a_client_that_never_reads() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let out = conn(ours, 1 << 20);
        out.push(frame_of(1000, 1)).unwrap();
        out.close(CloseReason::Normal);
        let started = Instant::now();
        tokio::time::timeout(CLOSE_GRACE * 2, out.done())
            .await
            .expect("the close waited for the client forever");
        assert!(started.elapsed() <= CLOSE_GRACE + Duration::from_secs(1));
    }
}
