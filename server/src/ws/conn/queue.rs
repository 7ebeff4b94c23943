//! The bookkeeping of a connection's outbound queue: what waits for the socket, in order, and
//! how the connection is to end. Pure state, no I/O: the [`super::writer`] does the writing
//! under the queue's lock.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

use bytes::{Buf, Bytes};

use super::CloseReason;

/// Most frames gathered into one vectored write by the writer task: well under the kernel's
/// `IOV_MAX` (1024), and enough that one `writev` carries a replay page's worth of small messages;
/// the slices live on the stack, so a larger array would only grow every writer's frame.
pub(super) const MAX_IOV: usize = 64;

/// Points `slots` at the first frames of `frames` (as many as fit) for one vectored write.
pub(super) fn gather<'a, 'b>(
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
pub(super) struct Queue {
    /// Wire bytes not yet written, in order. The head may be the unwritten rest of a frame.
    pub(super) queue: VecDeque<Bytes>,
    pub(super) bytes: usize,
    /// The head of `queue` is a frame already partly on the wire: it must be finished before
    /// anything else (even a close frame) is written, or the stream would be corrupt.
    pub(super) head_started: bool,
    pub(super) close: Option<CloseReason>,
    /// A write failed: the socket is gone, nothing more can be sent.
    pub(super) broken: bool,
    /// A writer task exists (it is draining the queue or closing). Set for good once the
    /// connection is closed, so that no writer is started after the last one.
    pub(super) writer: bool,
    /// The connection is closed: see [`super::ConnHandle::done`].
    pub(super) finished: bool,
    /// Channels whose subscription the hub ended (a room's rules changed), for the session to
    /// forget: see [`super::ConnHandle::ended_subscriptions`].
    pub(super) ended: Vec<Arc<str>>,
}

impl Queue {
    /// Drops what is queued, except the rest of a frame already partly written.
    pub(super) fn discard(&mut self) {
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
    pub(super) fn advance(&mut self, mut n: usize) {
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

/// Queue slots kept once a burst has drained: the few frames a connection has in flight in steady
/// state (a message, an ack, a ping), so an idle connection keeps four 32-byte `Bytes` handles,
/// not a burst's worth.
const KEEP_CAPACITY: usize = 4;
