//! Frames the server sends: replies (`ack`, `error`), channel messages, and control frames.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// WebSocket close codes the server uses. 1xxx are RFC 6455; 4xxx are Switchboard's own.
pub mod close {
    /// Normal close (client asked, or unsubscribe-all on logout of another session).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down or draining; reconnect (after the hinted delay).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol violation at the framing level (e.g. a text frame on a msgpack connection).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Policy: not authenticated in time, or the token was refused.
    pub const POLICY: u16 = 1008;
    /// A frame larger than the configured maximum.
    pub const TOO_BIG: u16 = 1009;
    /// Unexpected server error.
    pub const INTERNAL: u16 = 1011;
    /// Over a capacity bound (too many connections for this user): try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The session was revoked (logout, refresh-token reuse): log in again.
    pub const SESSION_REVOKED: u16 = 4001;
    /// The connection's access token expired and no fresh one came in an `auth` frame (the
    /// server warned with `token_expiring` first): refresh, reconnect, resume with `since`.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The connection's outbound queue overflowed (slow consumer): reconnect and resume with `since`.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No frame or pong from the client within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4009;
}

/// Machine-readable error codes: the one table of them. `error` frames and HTTP error bodies
/// both carry these, each with the HTTP status of [`ErrorCode::http_status`]. Four exist on HTTP
/// only (`conflict`, `unprocessable`, `method_not_allowed`, `internal`); an `error` frame carries
/// their WebSocket equivalent instead ([`ErrorCode::on_websocket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
    /// HTTP only: the thing exists already (a taken username, a room name).
    Conflict,
    /// HTTP only: well-formed but invalid (field rules, wrong types, nesting too deep).
    Unprocessable,
    /// HTTP only: the route exists, the method does not.
    MethodNotAllowed,
    /// HTTP only: a server fault (the cause is logged, never sent).
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The status of an HTTP error with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code an `error` frame carries for this one: a frame that cannot be acted on is a bad
    /// request whatever made it so, and a server fault is, to a WebSocket client, a request to
    /// retry.
    pub fn on_websocket(self) -> ErrorCode {
        match self {
            ErrorCode::Conflict | ErrorCode::Unprocessable | ErrorCode::MethodNotAllowed => {
                ErrorCode::BadRequest
            }
            ErrorCode::Internal => ErrorCode::Unavailable,
            other => other,
        }
    }
}

/// A user as shown to other clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub username: String,
}

/// Successful reply to the request with the same `id`. Which optional fields are present depends
/// on the request: `offset` (publish: the stored offset; subscribe: the channel's last offset),
/// `messages` (history), `user` (auth).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ack {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<MessageFrame>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresencePage>,
    /// `read`: messages of others left unread after the marker (`offset` is the marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
}

/// One page of a room's online users (each user once, however many connections they have).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresencePage {
    /// Users online in the room now.
    pub count: u64,
    pub users: Vec<UserInfo>,
    /// Pass back for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Refusal of the request with the same `id` (absent when the frame could not be parsed far
/// enough to find one, and on errors no request caused). The connection stays usable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub code: ErrorCode,
    pub message: String,
    /// The channel the error is about, when it ends a subscription: e.g. `forbidden` when a
    /// room's access rules changed and no longer admit this user. Nothing more of that channel
    /// is sent on this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl ErrorFrame {
    /// The refusal of request `id`, with `code` as WebSocket carries it
    /// ([`ErrorCode::on_websocket`]).
    pub fn new(id: Option<i64>, code: ErrorCode, message: impl Into<String>) -> ErrorFrame {
        ErrorFrame {
            id,
            code: code.on_websocket(),
            message: message.into(),
            channel: None,
        }
    }
}

/// One stored message of a channel. `D` is the payload type: `serde_json::Value` when decoding;
/// the server encodes from already-serialised JSON text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageFrame<D = Value> {
    pub channel: String,
    /// Position in the channel: starts at 1, increases by exactly 1.
    pub offset: u64,
    /// Globally unique message id.
    pub id: String,
    /// User id of the publisher.
    pub from: String,
    /// When the server stored it (RFC 3339, UTC).
    pub ts: String,
    pub data: D,
    // What became of the message after it was published (PROTOCOL.md, "Message lifecycle"):
    // history and `since` replay show its state now; a live message is always as published.
    // Each field is left out when it has its default, so a message nothing happened to is
    // encoded exactly as before.
    /// When it was last edited (RFC 3339, UTC); `data` is the latest version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Deleted: `data` is `null`, and the content is gone from storage.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// Messages of the channel whose `reply_to` is this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: u64,
    /// Reactions, most frequent first (history only: `me` is about the reader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Vec<ReactionCount>>,
    /// Sent by a user the reader blocked: `data` is `null` (the offset stays, so the sequence
    /// stays gapless).
    #[serde(default, skip_serializing_if = "is_false")]
    pub hidden: bool,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCount {
    pub emoji: String,
    pub count: u64,
    /// The reader is one of them.
    pub me: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A server → client frame. The `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ack(Ack),
    Error(ErrorFrame),
    Message(MessageFrame),
    /// The server is going away: reconnect after `after_ms` (jittered per client), then resume
    /// every subscription with `since`.
    Reconnect {
        after_ms: u64,
    },
    /// A user came online in a room (their first connection subscribed, on any node).
    Join {
        channel: String,
        user: UserInfo,
    },
    /// A user went offline in a room (their last connection left, or their node died).
    Leave {
        channel: String,
        user: UserInfo,
    },
    /// `user` is typing in `channel` (or stopped: `typing` false). Not stored and without an
    /// offset; show it for `ttl_ms` unless another one renews it. Sent to every subscriber of
    /// the channel on every node, the typer's own connections included.
    Typing {
        channel: String,
        user: UserInfo,
        typing: bool,
        ttl_ms: u64,
    },
    /// A read receipt: `user` has read `channel` up to `offset` (their marker moved). Not
    /// stored as a message and without an offset of its own; sent to every subscriber of the
    /// room on every node, in rooms of at most `SWITCHBOARD_READ_RECEIPTS_MAX_MEMBERS` members.
    /// `GET /api/v1/rooms/{name}/read_state` gives the same state after a reconnect.
    Read {
        channel: String,
        user: UserInfo,
        offset: u64,
    },
    /// The connection's access token expires in `expires_in` seconds: send a fresh one in an
    /// `auth` frame before then, or the connection is closed with 4002.
    TokenExpiring {
        expires_in: u64,
    },
}

/// Borrowing twin of [`ServerFrame::Message`] used to encode a message once per encoding without
/// copying its payload into an owned frame.
#[derive(Serialize)]
#[serde(tag = "type", rename = "message")]
pub struct MessageRef<'a, D: Serialize + ?Sized> {
    pub channel: &'a str,
    pub offset: u64,
    pub id: &'a str,
    pub from: &'a str,
    pub ts: &'a str,
    pub data: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub replies: u64,
    /// JSON text of a [`ReactionCount`] array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
}
