//! A committed message on its way to local subscribers, encoded at most once per encoding.

use std::sync::OnceLock;

use bytes::Bytes;
use switchboard_protocol::codec::Stored;
use switchboard_protocol::Encoding;

use crate::store::StoredMessage;

pub struct Delivery {
    pub msg: StoredMessage,
    json: OnceLock<Option<Bytes>>,
    msgpack: OnceLock<Option<Bytes>>,
}

impl Delivery {
    pub fn new(msg: StoredMessage) -> Delivery {
        Delivery {
            msg,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.msg.offset
    }

    /// The `message` frame in `encoding`, as wire bytes: encoded by the first subscriber that
    /// needs it, then a reference-count clone for every other. `None` only if the stored payload
    /// is not JSON at all (storage corruption; logged once).
    pub fn frame(&self, encoding: Encoding) -> Option<Bytes> {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| match encode_message(&self.msg, encoding) {
            Ok(frame) => Some(frame),
            Err(e) => {
                crate::metrics::UNDELIVERABLE.increment(1);
                tracing::error!(error = %e, channel = %self.msg.channel, offset = self.msg.offset, "cannot encode message");
                None
            }
        })
        .clone()
    }
}

/// Encodes one stored message as a `message` frame in `encoding`, ready for the wire. The payload
/// stays the JSON text it was stored as: spliced into JSON frames, converted for MessagePack
/// without a value tree, so any stored payload goes out in both encodings.
pub fn encode_message(msg: &StoredMessage, encoding: Encoding) -> anyhow::Result<Bytes> {
    let ts = rfc3339(msg.ts_ms);
    let bytes = encoding.encode_message(&stored(msg, &ts))?;
    Ok(wrap(encoding, &bytes))
}

/// A stored message as the protocol crate encodes it; `ts` is its formatted time.
pub fn stored<'a>(msg: &'a StoredMessage, ts: &'a str) -> Stored<'a> {
    Stored {
        channel: &msg.channel,
        offset: msg.offset,
        id: &msg.id,
        from: &msg.from,
        ts,
        data: &msg.data,
    }
}

/// Encodes a page of stored messages (a history request's `ack`), payloads as above.
pub fn encode_history(
    encoding: Encoding,
    id: i64,
    page: &[StoredMessage],
) -> anyhow::Result<Bytes> {
    let times: Vec<String> = page.iter().map(|m| rfc3339(m.ts_ms)).collect();
    let entries: Vec<Stored<'_>> = page
        .iter()
        .zip(&times)
        .map(|(m, ts)| stored(m, ts))
        .collect();
    let bytes = encoding.encode_history(id, &entries)?;
    Ok(wrap(encoding, &bytes))
}

/// Wraps an encoded frame in the WebSocket frame of `encoding`, ready for the wire.
pub fn wrap(encoding: Encoding, bytes: &[u8]) -> Bytes {
    super::frame::data(encoding, bytes)
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-28T10:21:09.123Z`).
pub fn rfc3339(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
