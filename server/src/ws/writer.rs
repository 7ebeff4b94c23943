//! A connection's writer task. Most frames never reach it: the hub writes them straight into the
//! socket (see [`crate::hub::outbox`]). It writes what queued up behind a blocked socket, performs
//! the close, and pings the client when the connection is quiet.

use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::close;

use crate::hub::frame;
use crate::hub::outbox::{Close, Outbox, Work};

/// How long a close frame may take to go out before the socket is simply dropped. A slow
/// consumer's close waits behind whatever its socket buffers still hold, so this gives a client
/// that is merely slow (not gone) time to read up to the 4008 and know to resume with `since`.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

pub async fn run(outbox: Arc<Outbox>, ping_every: Duration) {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            work = outbox.work() => match work {
                Work::Flush => {
                    // A client that stopped reading never makes the socket writable again; the
                    // overflow of its queue (or shutdown) must still end it. Killed mid-flush:
                    // loop round, where `work` hands over the close to send.
                    let flushed = tokio::select! {
                        flushed = outbox.flush() => flushed,
                        _ = outbox.killed() => continue,
                    };
                    if flushed.is_err() {
                        break;
                    }
                }
                Work::Close(close) => {
                    let _ = tokio::time::timeout(CLOSE_GRACE, outbox.send_close(&close)).await;
                    break;
                }
            },
            _ = ping.tick() => {
                // Refused only while closing, which this loop is about to see.
                let _ = outbox.push(frame::ping());
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
