//! The JSON bodies of the HTTP API's answers, as docs/PROTOCOL.md ("HTTP API") specifies them:
//! one type per shape, so the contract is written down once, in types (and an OpenAPI
//! description can be derived from them later). The answers that carry stored payloads (posts,
//! pages of posts, notifications and history) splice those in as they are stored, from borrowed
//! views defined beside their handlers (`feed::PostView`, the page structs in `users` and
//! `notifications`, `store::stored`).

use serde::Serialize;
use switchboard_protocol::UserInfo;

use crate::auth::Tokens;
use crate::store::MuteTarget;

/// `{"status": "ok"}` (`/healthz`), `{"status": "ready"}` (`/readyz`).
#[derive(Serialize)]
pub(crate) struct Status {
    pub status: &'static str,
}

/// `{"user": {...}}`.
#[derive(Serialize)]
pub(crate) struct UserBody<U> {
    pub user: U,
}

/// A user's profile: who they are and how connected.
#[derive(Serialize)]
pub(crate) struct Profile {
    pub id: String,
    pub username: String,
    pub followers: i64,
    pub following: i64,
}

/// What login and refresh answer.
#[derive(Serialize)]
pub(crate) struct TokenBody {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub user: UserInfo,
}

impl From<Tokens> for TokenBody {
    fn from(t: Tokens) -> TokenBody {
        TokenBody {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            user: UserInfo {
                id: t.user_id,
                username: t.username,
            },
        }
    }
}

/// `{"offset": n}`: where a publish was stored.
#[derive(Serialize)]
pub(crate) struct Offset {
    pub offset: u64,
}

/// `{"following": {"id", "username"}}`.
#[derive(Serialize)]
pub(crate) struct Following {
    pub following: UserInfo,
}

/// One entry of a followers or following page.
#[derive(Serialize)]
pub(crate) struct FollowEntry {
    pub id: String,
    pub username: String,
    pub followed_at: i64,
}

/// A page of users; `next_before` continues it (null at the end).
#[derive(Serialize)]
pub(crate) struct UsersPage {
    pub users: Vec<FollowEntry>,
    pub next_before: Option<i64>,
}

/// A room as listed, and as created (with its members then).
#[derive(Serialize)]
pub(crate) struct RoomView {
    pub name: String,
    pub channel: String,
    pub private: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<UserInfo>>,
    /// False for a name never created (an open public room without members or roles).
    pub created: bool,
    /// The display title (null when unset).
    pub title: Option<String>,
    pub archived: bool,
    /// The caller's role in the room (`owner`, `admin`, `member`), when they are a member; only
    /// on a single room (`GET /api/v1/rooms/{name}`, and on create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// In the room list, for rooms the caller is a member of: messages of others after their
    /// read marker (up to 1000: "1000 or more").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
}

/// A room member with their role.
#[derive(Serialize)]
pub(crate) struct MemberView {
    pub id: String,
    pub username: String,
    pub role: &'static str,
}

impl From<crate::store::members::Member> for MemberView {
    fn from(m: crate::store::members::Member) -> MemberView {
        MemberView {
            id: m.user.id,
            username: m.user.username,
            role: m.role.as_str(),
        }
    }
}

/// `{"member": {...}}`.
#[derive(Serialize)]
pub(crate) struct MemberBody {
    pub member: MemberView,
}

/// A page of members by username; `next_after` continues it (null at the end).
#[derive(Serialize)]
pub(crate) struct MembersPage {
    pub members: Vec<MemberView>,
    pub next_after: Option<String>,
}

/// `{"room": {...}}`.
#[derive(Serialize)]
pub(crate) struct RoomBody {
    pub room: RoomView,
}

/// A page of rooms; `next_after` continues it (null at the end).
#[derive(Serialize)]
pub(crate) struct RoomsPage {
    pub rooms: Vec<RoomView>,
    pub next_after: Option<String>,
    /// Unread messages over the caller's member rooms (the first 100 by name, each counted up
    /// to 1000), whatever the page.
    pub unread_total: u64,
}

/// What a mute is of: `{"room": name}` or `{"user": id}`.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MuteView {
    Room(String),
    User(String),
}

impl From<&MuteTarget> for MuteView {
    fn from(target: &MuteTarget) -> MuteView {
        match target {
            MuteTarget::Room(name) => MuteView::Room(name.clone()),
            MuteTarget::User(id) => MuteView::User(id.clone()),
        }
    }
}

/// `{"mute": {...}}`.
#[derive(Serialize)]
pub(crate) struct MuteBody {
    pub mute: MuteView,
}

/// One of the caller's mutes, with when it was made.
#[derive(Serialize)]
pub(crate) struct MuteEntry {
    #[serde(flatten)]
    pub target: MuteView,
    pub created_at: i64,
}

/// `{"mutes": [...]}`.
#[derive(Serialize)]
pub(crate) struct Mutes {
    pub mutes: Vec<MuteEntry>,
}

/// `{"unread_count": n}`.
#[derive(Serialize)]
pub(crate) struct Unread {
    pub unread_count: i64,
}

/// What marking notifications read changed.
#[derive(Serialize)]
pub(crate) struct Marked {
    pub marked: u64,
    pub unread_count: i64,
}

/// `{"reaction": {"post_id", "emoji"}}`.
#[derive(Serialize)]
pub(crate) struct ReactionBody {
    pub reaction: ReactionView,
}

#[derive(Serialize)]
pub(crate) struct ReactionView {
    pub post_id: String,
    pub emoji: String,
}
