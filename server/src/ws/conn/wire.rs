//! Server frames as wire bytes: encoded in the connection's encoding and wrapped in their
//! WebSocket frame, ready to share between every connection that sends them.

use std::sync::OnceLock;

use bytes::Bytes;
use switchboard_protocol::codec::{EncodeError, Stored};
use switchboard_protocol::{Encoding, ServerFrame};

use super::frame;
use crate::store::{rfc3339, stored, StoredMessage};

/// `frame` in `encoding`, as one WebSocket frame. `None` only if it cannot be encoded (logged):
/// a server frame always can, but a caller would rather skip one than take the connection down.
pub(crate) fn encode(encoding: Encoding, server_frame: &ServerFrame) -> Option<Bytes> {
    match encoding.encode(server_frame) {
        Ok(bytes) => Some(frame::data(encoding, &bytes)),
        Err(e) => {
            tracing::error!(error = ?e, "a server frame could not be encoded");
            None
        }
    }
}

/// One frame's wire bytes per encoding, each made at most once: by the first connection of that
/// encoding that sends it; every other one shares the bytes (a reference-count clone).
#[derive(Default)]
pub(crate) struct PerEncoding {
    json: OnceLock<Option<Bytes>>,
    msgpack: OnceLock<Option<Bytes>>,
}

impl PerEncoding {
    /// The bytes for `encoding`, made by `make` if they are not yet.
    pub(crate) fn get_or_encode(
        &self,
        encoding: Encoding,
        make: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::MsgPack => &self.msgpack,
        };
        cell.get_or_init(make).clone()
    }
}

/// Encodes one stored message as a `message` frame in `encoding`, ready for the wire. The payload
/// stays the JSON text it was stored as: spliced into JSON frames, converted for MessagePack
/// without a value tree, so any stored payload goes out in both encodings.
/// `hidden`: as a reader who blocked its sender gets it, without their content
/// ([`crate::store::lifecycle::hidden_view`]).
pub(crate) fn message(
    msg: &StoredMessage,
    encoding: Encoding,
    hidden: bool,
) -> Result<Bytes, EncodeError> {
    let ts = rfc3339(msg.ts_ms);
    let mut entry = stored(msg, &ts);
    let shown = if hidden {
        crate::store::lifecycle::hidden_view(&msg.data)
    } else {
        None
    };
    if let Some(shown) = &shown {
        entry = Stored {
            data: shown,
            edited_at: None,
            reactions: None,
            hidden: true,
            ..entry
        };
    }
    let bytes = encoding.encode_message(&entry)?;
    Ok(frame::data(encoding, &bytes))
}

/// Encodes a page of stored messages (a history request's `ack`), payloads as above.
pub(crate) fn history(
    encoding: Encoding,
    id: i64,
    page: &[StoredMessage],
) -> Result<Bytes, EncodeError> {
    let times: Vec<String> = page.iter().map(|m| rfc3339(m.ts_ms)).collect();
    let entries: Vec<Stored<'_>> = page
        .iter()
        .zip(&times)
        .map(|(m, ts)| stored(m, ts))
        .collect();
    let bytes = encoding.encode_history(id, &entries)?;
    Ok(frame::data(encoding, &bytes))
}
