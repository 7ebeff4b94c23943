//! The two wire encodings. A connection picks one at upgrade time through its WebSocket
//! subprotocol and keeps it: JSON travels in text frames, MessagePack (maps with the same field
//! names as JSON) in binary frames.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::ClientFrame;
use crate::server::ServerFrame;

/// Subprotocol selecting JSON text frames (also the default when none is offered).
pub const SUBPROTOCOL_JSON: &str = "switchboard.v1.json";
/// Subprotocol selecting MessagePack binary frames.
pub const SUBPROTOCOL_MSGPACK: &str = "switchboard.v1.msgpack";

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

    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, DecodeError> {
        let result = match self {
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Encoding::MsgPack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
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
        let err = ServerFrame::Error(ErrorFrame {
            id: Some(1),
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        });
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
                })
            );
        }
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
