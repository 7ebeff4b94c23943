//! A connection's writer task: drains the outbox into the socket, one flush per batch, and pings
//! the client when the connection is quiet.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::SinkExt;

use switchboard_protocol::close;

use crate::hub::outbox::{Batch, Close, Outbox};

/// How long a close frame may take to go out before the socket is simply dropped. A slow
/// consumer's close waits behind whatever its socket buffers still hold, so this gives a client
/// that is merely slow (not gone) time to read up to the 4008 and know to resume with `since`.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Batch buffer capacity kept between batches. The writer and the outbox swap their buffers on
/// every batch, so both end up with this capacity; a burst that grew them (a room's join events,
/// a replay) is released afterwards, so an idle connection keeps 2 × 8 slots (~0.6 KiB) rather
/// than what its busiest moment needed. A busier connection regrows its buffer per batch: a few
/// reallocations, against one write syscall per batch.
const KEEP_CAPACITY: usize = 8;

pub async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    ping_every: Duration,
) {
    let mut batch = VecDeque::new();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = outbox.take(&mut batch) => match next {
                Batch::Frames => {
                    // A client that stopped reading blocks the write once socket buffers are
                    // full; the overflow of its queue (or shutdown) must still end it.
                    // Killed mid-write: loop round, where `take` hands over the close to send.
                    let written = tokio::select! {
                        written = write_batch(&mut sink, &mut batch) => written,
                        _ = outbox.killed() => continue,
                    };
                    if written.is_err() {
                        break;
                    }
                }
                Batch::Close(close) => {
                    let frame = CloseFrame { code: close.code, reason: close.reason.into() };
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
                    break;
                }
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    // Whatever is still queued cannot be sent any more; stop further pushes too.
    outbox.close(Close {
        code: close::NORMAL,
        reason: "",
        immediate: true,
    });
    outbox.done.cancel();
}

async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut VecDeque<Message>,
) -> Result<(), axum::Error> {
    for frame in batch.drain(..) {
        sink.feed(frame).await?;
    }
    sink.flush().await?;
    if batch.capacity() > KEEP_CAPACITY {
        batch.shrink_to(KEEP_CAPACITY);
    }
    Ok(())
}
