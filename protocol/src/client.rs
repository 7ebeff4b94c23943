//! Frames a client sends. Every request carries a client-chosen integer `id` that the server
//! echoes in its `ack` or `error` reply.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client → server frame. The `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate the connection (first frame unless the upgrade carried a bearer token).
    Auth {
        id: i64,
        token: String,
    },
    /// Subscribe; with `since`, first replay every stored message with offset > since.
    Subscribe {
        id: i64,
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    Unsubscribe {
        id: i64,
        channel: String,
    },
    /// Publish `data` (any JSON value) to a channel; acked with its offset once stored.
    Publish {
        id: i64,
        channel: String,
        data: Value,
        /// Client-chosen, 1–64 visible ASCII characters: a retry with the same key by the same
        /// user on the same channel is stored once and acked with the first one's offset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// A page of stored messages just before `before` (newest page when absent).
    History {
        id: i64,
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Who is online in a `room:` channel, a page at a time (`cursor` from the previous page).
    Presence {
        id: i64,
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Ping {
        id: i64,
    },
    /// Moves the user's read marker in a `room:` channel to `offset` (never back, never past
    /// the last message); `ack` with the marker as `offset` and `unread`.
    Read {
        id: i64,
        channel: String,
        offset: u64,
    },
    /// The user is typing (`typing`, the default) or stopped (`false`) in a `room:` channel the
    /// connection is subscribed to. Never stored, no offset; `id` is optional: with one, the
    /// server answers `ack` or `error`, without, it answers only errors that are not rate limits.
    Typing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<i64>,
        channel: String,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        typing: bool,
    },
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl ClientFrame {
    /// The request id the server must echo (`None` for a `typing` frame sent without one).
    pub fn id(&self) -> Option<i64> {
        match self {
            ClientFrame::Auth { id, .. }
            | ClientFrame::Subscribe { id, .. }
            | ClientFrame::Unsubscribe { id, .. }
            | ClientFrame::Publish { id, .. }
            | ClientFrame::History { id, .. }
            | ClientFrame::Presence { id, .. }
            | ClientFrame::Read { id, .. }
            | ClientFrame::Ping { id } => Some(*id),
            ClientFrame::Typing { id, .. } => *id,
        }
    }
}
