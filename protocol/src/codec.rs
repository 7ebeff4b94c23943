//! The two wire encodings. A connection picks one at upgrade time through its WebSocket
//! subprotocol and keeps it: JSON travels in text frames, MessagePack (maps with the same field
//! names as JSON) in binary frames.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::ClientFrame;
use crate::server::{MessageRef, ServerFrame};

/// Subprotocol selecting JSON text frames (also the default when none is offered).
pub const SUBPROTOCOL_JSON: &str = "switchboard.v1.json";
/// Subprotocol selecting MessagePack binary frames.
pub const SUBPROTOCOL_MSGPACK: &str = "switchboard.v1.msgpack";

/// Nesting the MessagePack decoder accepts in a client frame: the frame itself, then `data` up to
/// [`crate::data::MAX_DEPTH`] and a little more, so an over-deep payload is refused with the
/// depth message rather than a decoder error.
const MSGPACK_MAX_DEPTH: usize = crate::data::MAX_DEPTH + 16;

fn too_deep() -> String {
    crate::data::TooDeep {
        limit: crate::data::MAX_DEPTH,
    }
    .to_string()
}

/// A MessagePack write into a `Vec` (it cannot fail; the error type is rmp's).
fn write<T, E>(result: Result<T, E>) -> Result<(), EncodeError> {
    result
        .map(drop)
        .map_err(|_| EncodeError::Data(crate::data::NotJson("unwritable")))
}

/// One stored message as a MessagePack map, with `"type":"message"` first when `tagged` (a
/// live frame), without it as a history entry: the fields `rmp-serde` writes for
/// [`MessageRef`] and [`crate::MessageFrame`], in the same order.
fn write_msgpack_entry(out: &mut Vec<u8>, m: &Stored<'_>, tagged: bool) -> Result<(), EncodeError> {
    let state = [
        m.edited_at.is_some(),
        m.deleted,
        m.replies > 0,
        m.reactions.is_some(),
        m.hidden,
    ];
    let fields = 6 + u32::from(tagged) + state.iter().filter(|&&f| f).count() as u32;
    write(rmp::encode::write_map_len(out, fields))?;
    if tagged {
        write(rmp::encode::write_str(out, "type"))?;
        write(rmp::encode::write_str(out, "message"))?;
    }
    write(rmp::encode::write_str(out, "channel"))?;
    write(rmp::encode::write_str(out, m.channel))?;
    write(rmp::encode::write_str(out, "offset"))?;
    write(rmp::encode::write_uint(out, m.offset))?;
    for (key, value) in [("id", m.id), ("from", m.from), ("ts", m.ts)] {
        write(rmp::encode::write_str(out, key))?;
        write(rmp::encode::write_str(out, value))?;
    }
    write(rmp::encode::write_str(out, "data"))?;
    crate::data::json_to_msgpack(m.data.get(), out)?;
    if let Some(at) = m.edited_at {
        write(rmp::encode::write_str(out, "edited_at"))?;
        write(rmp::encode::write_str(out, at))?;
    }
    if m.deleted {
        write(rmp::encode::write_str(out, "deleted"))?;
        write(rmp::encode::write_bool(out, true))?;
    }
    if m.replies > 0 {
        write(rmp::encode::write_str(out, "replies"))?;
        write(rmp::encode::write_uint(out, m.replies))?;
    }
    if let Some(reactions) = m.reactions {
        write(rmp::encode::write_str(out, "reactions"))?;
        crate::data::json_to_msgpack(reactions.get(), out)?;
    }
    if m.hidden {
        write(rmp::encode::write_str(out, "hidden"))?;
        write(rmp::encode::write_bool(out, true))?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Json,
    MsgPack,
}

/// A frame that could not be decoded. `id` is the request id when it could still be read, so the
/// error reply can be matched to the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed frame: {reason}")]
pub struct DecodeError {
    pub id: Option<i64>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    MsgPack(#[from] rmp_serde::encode::Error),
    #[error(transparent)]
    Data(#[from] crate::data::NotJson),
}

/// A stored message on its way out, its payload still the JSON text it was stored as. Serialised
/// as it is, it is a history entry: [`crate::MessageFrame`]'s fields.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stored<'a> {
    pub channel: &'a str,
    pub offset: u64,
    pub id: &'a str,
    pub from: &'a str,
    pub ts: &'a str,
    pub data: &'a RawValue,
    /// The message's state now ([`crate::MessageFrame`]'s fields of that name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub replies: u64,
    /// JSON text of a [`crate::server::ReactionCount`] array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
}

impl<'a> Stored<'a> {
    /// A message as published: no state.
    pub fn new(
        channel: &'a str,
        offset: u64,
        id: &'a str,
        from: &'a str,
        ts: &'a str,
        data: &'a RawValue,
    ) -> Stored<'a> {
        Stored {
            channel,
            offset,
            id,
            from,
            ts,
            data,
            edited_at: None,
            deleted: false,
            replies: 0,
            reactions: None,
            hidden: false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The JSON form of a history page: `{"messages":[...]}` (the HTTP history body), payloads
/// spliced in as stored.
pub fn json_page(messages: &[Stored<'_>]) -> Result<Vec<u8>, EncodeError> {
    #[derive(Serialize)]
    struct Page<'a, 'b> {
        messages: &'b [Stored<'a>],
    }
    Ok(serde_json::to_vec(&Page { messages })?)
}

impl Encoding {
    /// The encoding for a negotiated subprotocol; `None` (no subprotocol) means JSON.
    pub fn from_subprotocol(protocol: Option<&str>) -> Option<Encoding> {
        match protocol {
            None | Some(SUBPROTOCOL_JSON) => Some(Encoding::Json),
            Some(SUBPROTOCOL_MSGPACK) => Some(Encoding::MsgPack),
            Some(_) => None,
        }
    }

    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => SUBPROTOCOL_JSON,
            Encoding::MsgPack => SUBPROTOCOL_MSGPACK,
        }
    }

    /// True when this encoding travels in binary WebSocket frames.
    pub fn is_binary(self) -> bool {
        self == Encoding::MsgPack
    }

    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, EncodeError> {
        Ok(match self {
            Encoding::Json => serde_json::to_vec(value)?,
            Encoding::MsgPack => rmp_serde::to_vec_named(value)?,
        })
    }

    /// A `message` frame for a stored message. JSON splices the stored payload text in as it
    /// is; MessagePack converts it without building a value tree, so any stored payload can be
    /// delivered in both encodings.
    pub fn encode_message(self, m: &Stored<'_>) -> Result<Vec<u8>, EncodeError> {
        match self {
            Encoding::Json => Ok(serde_json::to_vec(&MessageRef {
                channel: m.channel,
                offset: m.offset,
                id: m.id,
                from: m.from,
                ts: m.ts,
                data: m.data,
                edited_at: m.edited_at,
                deleted: m.deleted,
                replies: m.replies,
                reactions: m.reactions,
                hidden: m.hidden,
            })?),
            Encoding::MsgPack => {
                let mut out = Vec::with_capacity(m.data.get().len() + 128);
                write_msgpack_entry(&mut out, m, true)?;
                Ok(out)
            }
        }
    }

    /// The `ack` of a `history` request: `{"type":"ack","id":…,"messages":[…]}`, encoded as
    /// [`Encoding::encode_message`] encodes each message (entries carry no `type`).
    pub fn encode_history(self, id: i64, messages: &[Stored<'_>]) -> Result<Vec<u8>, EncodeError> {
        match self {
            Encoding::Json => {
                let mut out = format!("{{\"type\":\"ack\",\"id\":{id},\"messages\":").into_bytes();
                serde_json::to_writer(&mut out, messages)?;
                out.push(b'}');
                Ok(out)
            }
            Encoding::MsgPack => {
                let size: usize = messages.iter().map(|m| m.data.get().len() + 128).sum();
                let mut out = Vec::with_capacity(size + 32);
                let w = &mut out;
                write(rmp::encode::write_map_len(w, 3))?;
                write(rmp::encode::write_str(w, "type"))?;
                write(rmp::encode::write_str(w, "ack"))?;
                write(rmp::encode::write_str(w, "id"))?;
                write(rmp::encode::write_sint(w, id))?;
                write(rmp::encode::write_str(w, "messages"))?;
                let n = u32::try_from(messages.len()).unwrap_or(u32::MAX);
                write(rmp::encode::write_array_len(w, n))?;
                for m in messages {
                    write_msgpack_entry(w, m, false)?;
                }
                Ok(out)
            }
        }
    }

    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, DecodeError> {
        let result = match self {
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| {
                // serde_json's own bound (128 levels) is the one a JSON frame meets first.
                if e.to_string().starts_with("recursion limit exceeded") {
                    too_deep()
                } else {
                    e.to_string()
                }
            }),
            Encoding::MsgPack => {
                // rmp-serde allows 1024 levels; a frame is its envelope plus `data`, whose depth
                // is checked once it is JSON text. This bounds the decoder's own recursion.
                let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
                de.set_max_depth(MSGPACK_MAX_DEPTH);
                T::deserialize(&mut de).map_err(|e| match e {
                    rmp_serde::decode::Error::DepthLimitExceeded => too_deep(),
                    e => e.to_string(),
                })
            }
        };
        result.map_err(|reason| DecodeError {
            id: self.request_id(bytes),
            reason,
        })
    }

    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        self.decode(bytes)
    }

    pub fn decode_server(self, bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        self.decode(bytes)
    }

    /// Best-effort read of the `id` field of a frame that failed to decode in full.
    fn request_id(self, bytes: &[u8]) -> Option<i64> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: Option<i64>,
        }
        let parsed: Option<IdOnly> = match self {
            Encoding::Json => serde_json::from_slice(bytes).ok(),
            Encoding::MsgPack => rmp_serde::from_slice(bytes).ok(),
        };
        parsed.and_then(|p| p.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Ack, ErrorCode, ErrorFrame, MessageFrame, MessageRef};
    use serde_json::json;

    fn client_frames() -> Vec<ClientFrame> {
        vec![
            ClientFrame::Auth {
                id: 1,
                token: "t".into(),
            },
            ClientFrame::Subscribe {
                id: 2,
                channel: "room:lobby".into(),
                since: Some(17),
            },
            ClientFrame::Subscribe {
                id: 2,
                channel: "room:lobby".into(),
                since: None,
            },
            ClientFrame::Unsubscribe {
                id: 3,
                channel: "room:lobby".into(),
            },
            ClientFrame::Publish {
                id: 4,
                channel: "room:lobby".into(),
                data: json!({"text": "hi", "n": [1, 2.5, null]}),
                idempotency_key: None,
            },
            ClientFrame::History {
                id: 5,
                channel: "room:lobby".into(),
                before: Some(18),
                limit: Some(50),
            },
            ClientFrame::Presence {
                id: 7,
                channel: "room:lobby".into(),
                cursor: Some("42".into()),
                limit: Some(10),
            },
            ClientFrame::Ping { id: 6 },
        ]
    }

    #[test]
    fn client_frames_round_trip_in_both_encodings() {
        for enc in [Encoding::Json, Encoding::MsgPack] {
            for frame in client_frames() {
                let bytes = enc.encode(&frame).unwrap();
                assert_eq!(enc.decode_client(&bytes).unwrap(), frame, "{enc:?}");
            }
        }
    }

    #[test]
    fn json_field_names_are_the_documented_ones() {
        let f: ClientFrame = serde_json::from_value(json!(
            {"type":"subscribe","id":2,"channel":"room:lobby","since":17}
        ))
        .unwrap();
        assert_eq!(
            f,
            ClientFrame::Subscribe {
                id: 2,
                channel: "room:lobby".into(),
                since: Some(17)
            }
        );
        let ack = ServerFrame::Ack(Ack {
            id: 4,
            offset: Some(18),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            json!({"type":"ack","id":4,"offset":18})
        );
        let err = ServerFrame::Error(ErrorFrame::new(
            Some(1),
            ErrorCode::RateLimited,
            "slow down",
        ));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"type":"error","id":1,"code":"rate_limited","message":"slow down"})
        );
    }

    #[test]
    fn message_ref_encodes_like_the_owned_frame() {
        let data = json!({"text": "hello"});
        let r = MessageRef {
            channel: "room:a",
            offset: 3,
            id: "m",
            from: "u",
            ts: "2026-01-01T00:00:00Z",
            data: &data,
            edited_at: None,
            deleted: false,
            replies: 0,
            reactions: None,
            hidden: false,
        };
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let bytes = enc.encode(&r).unwrap();
            let decoded = enc.decode_server(&bytes).unwrap();
            assert_eq!(
                decoded,
                ServerFrame::Message(MessageFrame {
                    channel: "room:a".into(),
                    offset: 3,
                    id: "m".into(),
                    from: "u".into(),
                    ts: "2026-01-01T00:00:00Z".into(),
                    data: data.clone(),
                    edited_at: None,
                    deleted: false,
                    replies: 0,
                    reactions: None,
                    hidden: false,
                })
            );
        }
    }

    fn stored<'a>(data: &'a RawValue, offset: u64) -> Stored<'a> {
        Stored::new("room:a", offset, "m", "u", "2026-01-01T00:00:00Z", data)
    }

    /// The stored-message encoders write what the generic encoder writes for the same frame,
    /// byte for byte, so clients see no difference.
    #[test]
    fn stored_messages_encode_like_the_owned_frames() {
        let payload = json!({"text": "hello", "n": [1, -2, 3.5, null, true], "o": {}});
        let raw = serde_json::value::to_raw_value(&payload).unwrap();
        let owned = |offset| MessageFrame {
            channel: "room:a".into(),
            offset,
            id: "m".into(),
            from: "u".into(),
            ts: "2026-01-01T00:00:00Z".into(),
            data: payload.clone(),
            edited_at: None,
            deleted: false,
            replies: 0,
            reactions: None,
            hidden: false,
        };
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let live = enc.encode_message(&stored(&raw, 300)).unwrap();
            assert_eq!(
                live,
                enc.encode(&ServerFrame::Message(owned(300))).unwrap(),
                "{enc:?}"
            );
            let page = [stored(&raw, 1), stored(&raw, 70_000)];
            let ack = Ack {
                id: 12,
                messages: Some(vec![owned(1), owned(70_000)]),
                ..Default::default()
            };
            let history = enc.encode_history(12, &page).unwrap();
            assert_eq!(
                enc.decode_server(&history).unwrap(),
                ServerFrame::Ack(ack.clone()),
                "{enc:?}"
            );
            if enc == Encoding::Json {
                assert_eq!(history, enc.encode(&ServerFrame::Ack(ack)).unwrap());
            }
        }
    }

    /// A history entry's state fields decode to the same frame from both encodings, and a
    /// message without state carries none of them.
    #[test]
    fn message_state_fields_encode_in_both_encodings() {
        use crate::server::ReactionCount;
        let raw = serde_json::value::to_raw_value(&json!(null)).unwrap();
        let reactions = serde_json::value::to_raw_value(&json!([
            {"emoji": "👍", "count": 2, "me": true}
        ]))
        .unwrap();
        let mut entry = stored(&raw, 9);
        entry.edited_at = Some("2026-01-01T00:00:01Z");
        entry.deleted = true;
        entry.replies = 3;
        entry.reactions = Some(&reactions);
        entry.hidden = true;
        let expected = MessageFrame {
            channel: "room:a".into(),
            offset: 9,
            id: "m".into(),
            from: "u".into(),
            ts: "2026-01-01T00:00:00Z".into(),
            data: json!(null),
            edited_at: Some("2026-01-01T00:00:01Z".into()),
            deleted: true,
            replies: 3,
            reactions: Some(vec![ReactionCount {
                emoji: "👍".into(),
                count: 2,
                me: true,
            }]),
            hidden: true,
        };
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let live = enc.encode_message(&entry).unwrap();
            assert_eq!(
                enc.decode_server(&live).unwrap(),
                ServerFrame::Message(expected.clone()),
                "{enc:?}"
            );
        }
        let plain = Encoding::Json.encode_message(&stored(&raw, 9)).unwrap();
        let text = String::from_utf8(plain).unwrap();
        for field in ["edited_at", "deleted", "replies", "reactions", "hidden"] {
            assert!(!text.contains(field), "{text}");
        }
    }

    #[test]
    fn a_msgpack_frame_nested_past_the_bound_is_refused_with_its_id() {
        let mut data = json!(1);
        for _ in 0..MSGPACK_MAX_DEPTH + 1 {
            data = json!([data]);
        }
        let frame = json!({"type": "publish", "id": 5, "channel": "room:a", "data": data});
        let bytes = rmp_serde::to_vec_named(&frame).unwrap();
        let e = Encoding::MsgPack.decode_client(&bytes).unwrap_err();
        assert_eq!(e.id, Some(5));
        assert!(e.reason.contains("nested too deeply"), "{e}");
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let json = format!(r#"{{"type":"publish","id":6,"channel":"room:a","data":{deep}}}"#);
        let e = Encoding::Json.decode_client(json.as_bytes()).unwrap_err();
        assert!(e.reason.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn presence_frames_have_the_documented_shape() {
        use crate::server::{PresencePage, UserInfo};
        let user = UserInfo {
            id: "u1".into(),
            username: "al".into(),
        };
        let join = ServerFrame::Join {
            channel: "room:a".into(),
            user: user.clone(),
        };
        assert_eq!(
            serde_json::to_value(&join).unwrap(),
            json!({"type":"join","channel":"room:a","user":{"id":"u1","username":"al"}})
        );
        let page = Ack {
            id: 7,
            presence: Some(PresencePage {
                count: 1,
                users: vec![user],
                cursor: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(ServerFrame::Ack(page.clone())).unwrap(),
            json!({"type":"ack","id":7,"presence":{"count":1,"users":[{"id":"u1","username":"al"}]}})
        );
        for enc in [Encoding::Json, Encoding::MsgPack] {
            for frame in [join.clone(), ServerFrame::Ack(page.clone())] {
                assert_eq!(
                    enc.decode_server(&enc.encode(&frame).unwrap()).unwrap(),
                    frame
                );
            }
        }
    }

    #[test]
    fn malformed_frames_report_the_request_id_when_readable() {
        let e = Encoding::Json
            .decode_client(br#"{"type":"publish","id":9,"channel":"room:a"}"#)
            .unwrap_err();
        assert_eq!(e.id, Some(9));
        let e = Encoding::Json
            .decode_client(br#"{"type":"nope","id":3}"#)
            .unwrap_err();
        assert_eq!(e.id, Some(3));
        let e = Encoding::Json.decode_client(b"not json").unwrap_err();
        assert_eq!(e.id, None);
        let e = Encoding::MsgPack.decode_client(&[0xc1, 0x00]).unwrap_err();
        assert_eq!(e.id, None);
    }

    #[test]
    fn subprotocols_select_encodings() {
        assert_eq!(Encoding::from_subprotocol(None), Some(Encoding::Json));
        assert_eq!(
            Encoding::from_subprotocol(Some(SUBPROTOCOL_MSGPACK)),
            Some(Encoding::MsgPack)
        );
        assert_eq!(Encoding::from_subprotocol(Some("other")), None);
    }
}
