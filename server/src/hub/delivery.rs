//! A committed message on its way to local subscribers, encoded at most once per encoding.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;
use switchboard_protocol::{Encoding, MessageFrame, MessageRef};

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

    /// The `message` frame in `encoding`, as wire bytes: encoded by the first subscriber that needs it, then a
    /// reference-count clone for every other. `None` only if encoding failed (logged once).
    pub fn frame(&self, encoding: Encoding) -> Option<Bytes> {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| match encode_message(&self.msg, encoding) {
            Ok(frame) => Some(frame),
            Err(e) => {
                tracing::error!(error = %e, channel = %self.msg.channel, offset = self.msg.offset, "cannot encode message");
                None
            }
        })
        .clone()
    }
}

/// Encodes one stored message as a `message` frame in `encoding`.
pub fn encode_message(msg: &StoredMessage, encoding: Encoding) -> anyhow::Result<Bytes> {
    let ts = rfc3339(msg.ts_ms);
    let bytes = match encoding {
        // JSON: the payload is already JSON text; splice it in without re-parsing.
        Encoding::Json => encoding.encode(&message_ref(msg, &ts, &msg.data))?,
        // MessagePack needs the payload as a value tree.
        Encoding::MsgPack => {
            let data: Value = serde_json::from_str(msg.data.get())?;
            encoding.encode(&message_ref(msg, &ts, &data))?
        }
    };
    Ok(wrap(encoding, &bytes))
}

/// Wraps an encoded frame in the WebSocket frame of `encoding`, ready for the wire.
pub fn wrap(encoding: Encoding, bytes: &[u8]) -> Bytes {
    super::frame::data(encoding, bytes)
}

fn message_ref<'a, D: serde::Serialize>(
    msg: &'a StoredMessage,
    ts: &'a str,
    data: &'a D,
) -> MessageRef<'a, D> {
    MessageRef {
        channel: &msg.channel,
        offset: msg.offset,
        id: &msg.id,
        from: &msg.from,
        ts,
        data,
    }
}

/// The owned frame (payload as a value), for history replies.
pub fn message_frame(msg: &StoredMessage) -> MessageFrame {
    MessageFrame {
        channel: msg.channel.to_string(),
        offset: msg.offset,
        id: msg.id.clone(),
        from: msg.from.clone(),
        ts: rfc3339(msg.ts_ms),
        data: serde_json::from_str(msg.data.get()).unwrap_or(Value::Null),
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-28T10:21:09.123Z`).
pub fn rfc3339(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
