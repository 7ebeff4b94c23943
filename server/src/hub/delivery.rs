//! A committed message on its way to local subscribers, encoded at most once per encoding.

use bytes::Bytes;
use switchboard_protocol::Encoding;

use crate::store::StoredMessage;
use crate::ws::conn::wire::{self, PerEncoding};
use crate::ws::conn::ConnHandle;

pub(crate) struct Delivery {
    pub msg: StoredMessage,
    frames: PerEncoding,
    /// The frame as connections that hide its sender get it (content left out).
    hidden: PerEncoding,
}

impl Delivery {
    pub(crate) fn new(msg: StoredMessage) -> Delivery {
        Delivery {
            msg,
            frames: PerEncoding::default(),
            hidden: PerEncoding::default(),
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.msg.offset
    }

    /// The `message` frame in `encoding`, as wire bytes: encoded by the first subscriber that
    /// needs it, then a reference-count clone for every other. `None` only if the stored payload
    /// is not JSON at all (storage corruption; logged once).
    #[inline]
    pub(crate) fn frame(&self, encoding: Encoding) -> Option<Bytes> {
        self.encoded(&self.frames, encoding, false)
    }

    /// The frame for `conn`: hidden when its user blocked the sender.
    #[inline]
    pub(crate) fn frame_for(&self, conn: &ConnHandle) -> Option<Bytes> {
        if conn.hides(&self.msg.from) {
            self.encoded(&self.hidden, conn.encoding, true)
        } else {
            self.frame(conn.encoding)
        }
    }

    #[inline]
    fn encoded(&self, cache: &PerEncoding, encoding: Encoding, hidden: bool) -> Option<Bytes> {
        cache.get_or_encode(encoding, || match wire::message(&self.msg, encoding, hidden) {
                Ok(frame) => Some(frame),
                Err(e) => {
                    crate::metrics::UNDELIVERABLE.increment(1);
                    tracing::error!(error = ?e, channel = %self.msg.channel, offset = self.msg.offset, "cannot encode message");
                    None
                }
            })
    }
}
