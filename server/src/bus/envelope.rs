//! The form a committed message takes on Redis: MessagePack with short field names, tagged with
//! the publishing node so that node can skip its own echo (it delivered locally already).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::members::Restrictions;
use crate::store::StoredMessage;

/// The envelope's fields are sent under one-letter names (every message pays for them).
#[derive(Serialize)]
struct Out<'a> {
    #[serde(rename = "n")]
    node: &'a str,
    #[serde(rename = "c")]
    channel: &'a str,
    #[serde(rename = "o")]
    offset: u64,
    #[serde(rename = "i")]
    id: &'a str,
    #[serde(rename = "f")]
    from: &'a str,
    #[serde(rename = "t")]
    ts_ms: i64,
    #[serde(rename = "d")]
    data: &'a str,
}

#[derive(Deserialize)]
struct In {
    #[serde(rename = "n")]
    node: String,
    #[serde(rename = "c")]
    channel: String,
    #[serde(rename = "o")]
    offset: u64,
    #[serde(rename = "i")]
    id: String,
    #[serde(rename = "f")]
    from: String,
    #[serde(rename = "t")]
    ts_ms: i64,
    #[serde(rename = "d")]
    data: String,
}

pub(super) fn encode(node: &str, msg: &StoredMessage) -> Vec<u8> {
    let out = Out {
        node,
        channel: &msg.channel,
        offset: msg.offset,
        id: &msg.id,
        from: &msg.from,
        ts_ms: msg.ts_ms,
        data: msg.data.get(),
    };
    // Serialising a struct of strings and integers to a Vec cannot fail.
    rmp_serde::to_vec(&out).unwrap_or_default()
}

/// Decodes an envelope; `None` for one this node published itself (or garbage, logged).
pub(super) fn decode(node: &str, bytes: &[u8]) -> Option<StoredMessage> {
    let env: In = match rmp_serde::from_slice(bytes) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(error = ?e, "undecodable message on the bus");
            return None;
        }
    };
    if env.node == node {
        return None;
    }
    let data = RawValue::from_string(env.data).ok()?;
    Some(StoredMessage {
        channel: Arc::from(env.channel),
        offset: env.offset,
        id: env.id,
        from: env.from,
        ts_ms: env.ts_ms,
        data,
        published_at: None,
        state: None,
    })
}

/// A cluster-wide control event (on `<prefix>ctl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlEvent {
    /// Session revoked (logout, refresh-token reuse): refuse its tokens, close its sockets.
    Revoked(String),
    /// A room's access rules changed (it was created, made private, lost a member): every node
    /// applies them to its live subscriptions at once. The rules travel with the event so that
    /// applying needs no storage read: on a single Redis connection it is applied before any
    /// message the same node published after the change. (A message another node publishes in
    /// the moments before the event reaches it was authorised under the old rules; the storage
    /// poll bounds how long a lost event leaves any node on them.)
    RoomChanged {
        /// The room's name as created.
        room: String,
        /// `None`: the room is public (or was never created); `Some`: private, its members.
        members: Option<Vec<String>>,
        /// Archived, deleted, banned and timed-out users (absent from older nodes' events).
        #[serde(default)]
        restrictions: Restrictions,
    },
    /// A user is typing (or stopped) in a room channel: every node passes it to its local
    /// subscribers. Lost ones are lost (an indicator lapses by itself).
    Typing {
        channel: String,
        user_id: String,
        username: String,
        typing: bool,
    },
    /// A member's read marker moved in a room small enough for read receipts: every node
    /// passes it to its local subscribers. Lost ones are lost (`read_state` has the truth).
    Read {
        channel: String,
        user_id: String,
        username: String,
        offset: u64,
    },
    /// `user` blocked or unblocked someone: every node hides, on that user's connections, the
    /// messages of the users in `blocked` (the whole list, at most `SWITCHBOARD_MAX_BLOCKS`).
    Blocks { user: String, blocked: Vec<String> },
    /// A user came online (`joined`) or went offline in a room channel.
    Presence {
        channel: String,
        user_id: String,
        username: String,
        joined: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct ControlEnvelope {
    /// Origin node.
    n: String,
    e: ControlEvent,
}

pub(super) fn encode_control(node: &str, event: &ControlEvent) -> Vec<u8> {
    let env = ControlEnvelope {
        n: node.to_owned(),
        e: event.clone(),
    };
    rmp_serde::to_vec(&env).unwrap_or_default()
}

/// A control event from another node (`None` for this node's own, or garbage).
pub(super) fn decode_control(node: &str, bytes: &[u8]) -> Option<ControlEvent> {
    let env: ControlEnvelope = rmp_serde::from_slice(bytes).ok()?;
    (env.n != node).then_some(env.e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_skips_own_node() {
        let msg = StoredMessage {
            channel: "room:a".into(),
            offset: 7,
            id: "m".into(),
            from: "u".into(),
            ts_ms: 5,
            data: RawValue::from_string(r#"{"x":[1,"two"]}"#.into()).unwrap(),
            published_at: None,
            state: None,
        };
        let bytes = encode("node-1", &msg);
        assert!(decode("node-1", &bytes).is_none());
        let back = decode("node-2", &bytes).unwrap();
        assert_eq!(
            (&*back.channel, back.offset, back.data.get()),
            ("room:a", 7, r#"{"x":[1,"two"]}"#)
        );
        assert!(decode("node-2", b"\xc1garbage").is_none());
    }

    #[test]
    fn control_events_round_trip_and_skip_own_node() {
        for event in [
            ControlEvent::Revoked("sess-1".into()),
            ControlEvent::RoomChanged {
                room: "plans".into(),
                members: Some(vec!["u1".into(), "u2".into()]),
                restrictions: Restrictions {
                    archived: true,
                    banned: ["u3".to_string()].into(),
                    timeouts: [("u2".to_string(), 99)].into(),
                    ..Default::default()
                },
            },
            ControlEvent::Presence {
                channel: "room:a".into(),
                user_id: "u".into(),
                username: "al".into(),
                joined: true,
            },
        ] {
            let bytes = encode_control("a", &event);
            assert_eq!(decode_control("b", &bytes), Some(event));
            assert_eq!(decode_control("a", &bytes), None);
        }
    }
}
