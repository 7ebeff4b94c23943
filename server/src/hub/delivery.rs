//! A committed message on its way to local subscribers, encoded at most once per encoding.

use bytes::Bytes;
use switchboard_protocol::Encoding;

use crate::store::StoredMessage;
use crate::ws::conn::wire::{self, PerEncoding};

pub(crate) struct Delivery {
    pub msg: StoredMessage,
    frames: PerEncoding,
}

impl Delivery {
    pub(crate) fn new(msg: StoredMessage) -> Delivery {
        Delivery {
            msg,
            frames: PerEncoding::default(),
        }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.msg.offset
    }

    /// The `message` frame in `encoding`, as wire bytes: encoded by the first subscriber that
    /// needs it, then a reference-count clone for every other. `None` only if the stored payload
    /// is not JSON at all (storage corruption; logged once).
    pub(crate) fn frame(&self, encoding: Encoding) -> Option<Bytes> {
        self.frames
            .get_or_encode(encoding, || match wire::message(&self.msg, encoding) {
                Ok(frame) => Some(frame),
                Err(e) => {
                    crate::metrics::UNDELIVERABLE.increment(1);
                    tracing::error!(error = ?e, channel = %self.msg.channel, offset = self.msg.offset, "cannot encode message");
                    None
                }
            })
    }
}
