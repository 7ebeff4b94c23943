//! The `data` of messages on a user's `user:<id>` channel: notifications (`follow`, `mention`,
//! `reply`, `reaction`) and `read` changes, as docs/PROTOCOL.md specifies them ("Notification
//! messages"). One definition for the server that writes them and every client that reads them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::UserInfo;

/// What a notification is about: the `kind` of a stored notification (a `read` change is not
/// one: it is neither listed nor counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Follow,
    Mention,
    Reply,
    Reaction,
    Room,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Follow => "follow",
            NotificationKind::Mention => "mention",
            NotificationKind::Reply => "reply",
            NotificationKind::Reaction => "reaction",
            NotificationKind::Room => "room",
        }
    }
}

/// A message's `data` on a `user:` channel. `D` is the type of a mentioned message's payload and
/// `P` that of a reply's post: `serde_json::Value` when decoding; the server encodes its stored
/// JSON text as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEvent<D = Value, P = Value> {
    /// The notification id (also the message `id`); absent on `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Who caused it; absent on `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<UserInfo>,
    /// Unix ms; absent on `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(flatten)]
    pub event: Event<D, P>,
}

/// The `kind` and its own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event<D = Value, P = Value> {
    /// A new follower.
    Follow,
    /// `@username` in a chat message of a room the user may read.
    Mention {
        room: String,
        channel: String,
        message: Mentioned<D>,
    },
    /// A reply to the user's post.
    Reply { post_id: String, reply: P },
    /// A new reaction to the user's post.
    Reaction { post_id: String, emoji: String },
    /// The user's membership of a room changed: `change` is `member_added`, `member_removed`,
    /// `role_changed` (with the new `role`), `owner` (they now own it), `banned` or `timed_out`
    /// (with `until`, Unix ms).
    Room {
        room: String,
        channel: String,
        change: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
    },
    /// The user's read marker in a room moved (on any of their devices): `offset` is the last
    /// message read, `unread` what is left after it (capped as in the room list).
    RoomRead {
        room: String,
        channel: String,
        offset: u64,
        unread: u64,
    },
    /// Notifications were marked read (on any of the user's devices): `ids`, or `all` with
    /// `upto`; `unread_count` just after the change.
    Read {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ids: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        all: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upto: Option<u64>,
        unread_count: i64,
    },
}

impl<D, P> Event<D, P> {
    /// The stored notification kind; `None` for `read`.
    pub fn notification_kind(&self) -> Option<NotificationKind> {
        match self {
            Event::Follow => Some(NotificationKind::Follow),
            Event::Mention { .. } => Some(NotificationKind::Mention),
            Event::Reply { .. } => Some(NotificationKind::Reply),
            Event::Reaction { .. } => Some(NotificationKind::Reaction),
            Event::Room { .. } => Some(NotificationKind::Room),
            Event::Read { .. } | Event::RoomRead { .. } => None,
        }
    }
}

/// The mentioning message by reference: its offset and id (to read it from history), an
/// excerpt, and its `data` only when that is small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mentioned<D = Value> {
    pub offset: u64,
    pub id: String,
    pub excerpt: String,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<D>,
    /// The message was deleted since: `excerpt` is empty and `data` absent (its content is
    /// gone from storage, here too).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

fn none<D>() -> Option<D> {
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn from() -> UserInfo {
        UserInfo {
            id: "u1".into(),
            username: "ada".into(),
        }
    }

    /// The field names and shapes of docs/PROTOCOL.md, for every kind, both ways.
    #[test]
    fn every_kind_has_the_documented_shape() {
        let about = |event| UserEvent {
            id: Some("n1".into()),
            from: Some(from()),
            created_at: Some(7),
            event,
        };
        let cases: Vec<(UserEvent, Value)> = vec![
            (
                about(Event::Follow),
                json!({"kind":"follow","id":"n1","from":{"id":"u1","username":"ada"},"created_at":7}),
            ),
            (
                about(Event::Mention {
                    room: "lobby".into(),
                    channel: "room:lobby".into(),
                    message: Mentioned {
                        offset: 3,
                        id: "m1".into(),
                        excerpt: "hi @bob".into(),
                        data: Some(json!({"text":"hi @bob"})),
                        deleted: false,
                    },
                }),
                json!({"kind":"mention","id":"n1","from":{"id":"u1","username":"ada"},"created_at":7,
                       "room":"lobby","channel":"room:lobby",
                       "message":{"offset":3,"id":"m1","excerpt":"hi @bob","data":{"text":"hi @bob"}}}),
            ),
            (
                about(Event::Reply {
                    post_id: "p1".into(),
                    reply: json!({"id":"p2"}),
                }),
                json!({"kind":"reply","id":"n1","from":{"id":"u1","username":"ada"},"created_at":7,
                       "post_id":"p1","reply":{"id":"p2"}}),
            ),
            (
                about(Event::Reaction {
                    post_id: "p1".into(),
                    emoji: "🎉".into(),
                }),
                json!({"kind":"reaction","id":"n1","from":{"id":"u1","username":"ada"},"created_at":7,
                       "post_id":"p1","emoji":"🎉"}),
            ),
            (
                about(Event::Room {
                    room: "plans".into(),
                    channel: "room:plans".into(),
                    change: "role_changed".into(),
                    role: Some("admin".into()),
                    until: None,
                }),
                json!({"kind":"room","id":"n1","from":{"id":"u1","username":"ada"},"created_at":7,
                       "room":"plans","channel":"room:plans","change":"role_changed","role":"admin"}),
            ),
            (
                UserEvent {
                    id: None,
                    from: None,
                    created_at: None,
                    event: Event::Read {
                        ids: None,
                        all: Some(true),
                        upto: Some(9),
                        unread_count: 0,
                    },
                },
                json!({"kind":"read","all":true,"upto":9,"unread_count":0}),
            ),
        ];
        for (event, wire) in cases {
            assert_eq!(serde_json::to_value(&event).unwrap(), wire);
            let back: UserEvent = serde_json::from_value(wire).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn a_large_mention_has_no_data() {
        let m: Mentioned =
            serde_json::from_value(json!({"offset":1,"id":"m","excerpt":"x"})).unwrap();
        assert_eq!(m.data, None);
        assert!(!serde_json::to_string(&m).unwrap().contains("data"));
    }
}
