//! Message lifecycle: edits, deletes and reactions on room messages, and replies.
//!
//! Each is a message of its own in the room's channel, with its own offset and a `data.kind`
//! naming what it is, so live clients and `since` recovery see it like any message. What it does
//! to the earlier message (the new version, the content gone, the reaction counted, the reply
//! counted) is applied in the transaction that stores it ([`crate::store::lifecycle`]). The
//! checks here (whose message it is, whether it can change) run before it is queued; the
//! statement that applies it guards what a race could break (no edit of a deleted message keeps
//! content, no limit is passed).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_protocol::{Channel, ChannelKind, ErrorCode};

use crate::auth::Principal;
use crate::authz::AccessError;
use crate::publish::{self, budget, SYSTEM};
use crate::store::lifecycle::{self as stored, Effect, Moderation, ReactionLimits, Target};
use crate::store::members::Role;
use crate::store::StoreError;
use crate::AppState;

/// `data.kind` values the server gives meaning to in rooms: a user's publish may not carry
/// them, so a client can trust them (edits, deletes and reactions made through their routes;
/// room changes, sent by `system`).
pub(crate) const RESERVED_KINDS: &[&str] = &[
    "edit",
    "delete",
    "reaction",
    "member_added",
    "member_removed",
    "member_left",
    "role_changed",
    "ownership_transferred",
    "renamed",
    "archived",
    "unarchived",
    "deleted",
    "banned",
    "unbanned",
    "timed_out",
    "timeout_lifted",
];

/// Longest emoji, in bytes: room for multi-code-point ones (flags, skin tones, families).
pub(crate) const MAX_EMOJI_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub(crate) enum LifecycleError {
    #[error("no such room")]
    NoRoom,
    #[error("no message at that offset in this room")]
    NoMessage,
    #[error("the message is deleted")]
    Deleted,
    #[error("only chat messages can be {0} (not room changes, edits, deletes or reactions)")]
    NotChat(&'static str),
    #[error("only its author edits a message")]
    NotAuthor,
    #[error("only its author or a room owner or admin deletes a message")]
    NotModerator,
    #[error("data.kind \"{0}\" is the server's: edit, delete and react through their routes")]
    Reserved(String),
    #[error("reply_to is the offset of a chat message of the same channel")]
    BadReplyTo,
    #[error("an edit keeps the message's reply_to")]
    ReplyToChanged,
    #[error("an emoji is 1 to 64 bytes without spaces or control characters")]
    BadEmoji,
    #[error("at most {0} different reactions per user on a message")]
    TooManyOfMine(u32),
    #[error("at most {0} different reactions on a message")]
    TooManyOnMessage(u32),
    #[error("no such reaction of yours")]
    NotReacted,
    #[error(transparent)]
    Publish(#[from] publish::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccessError> for LifecycleError {
    fn from(e: AccessError) -> Self {
        LifecycleError::Publish(publish::Error::Access(e))
    }
}

impl LifecycleError {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            LifecycleError::NoRoom
            | LifecycleError::NoMessage
            | LifecycleError::Deleted
            | LifecycleError::NotReacted => ErrorCode::NotFound,
            LifecycleError::NotAuthor | LifecycleError::NotModerator => ErrorCode::Forbidden,
            LifecycleError::NotChat(_)
            | LifecycleError::Reserved(_)
            | LifecycleError::BadReplyTo
            | LifecycleError::ReplyToChanged
            | LifecycleError::BadEmoji => ErrorCode::Unprocessable,
            LifecycleError::TooManyOfMine(_) | LifecycleError::TooManyOnMessage(_) => {
                ErrorCode::Conflict
            }
            LifecycleError::Publish(e) => e.code(),
            LifecycleError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// A room's channel (a created room by its name in any case; else a never-created public room,
/// where anyone may publish, by its name as given), for a lifecycle change by `who`: they must
/// be able to write there (a member where it is private; not banned, muted or archived).
async fn writable(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<Channel, LifecycleError> {
    let channel = match state.store.room_ignoring_case(name).await? {
        Some(room) if !room.deleted => Channel::Room(room.name),
        Some(_) => return Err(LifecycleError::NoRoom),
        None => ChannelKind::Room
            .name(name)
            .parse()
            .map_err(|_| LifecycleError::NoRoom)?,
    };
    state.authz.can_publish(who, &channel).await?;
    Ok(channel)
}

/// The chat message at `offset` (not a room change, edit, delete or reaction; not deleted).
async fn chat_message(
    state: &AppState,
    channel: &str,
    offset: u64,
    doing: &'static str,
) -> Result<Target, LifecycleError> {
    let target = state
        .store
        .message_target(channel, offset)
        .await?
        .ok_or(LifecycleError::NoMessage)?;
    if target.kind.is_some() || target.sender == SYSTEM {
        return Err(LifecycleError::NotChat(doing));
    }
    if target.deleted {
        return Err(LifecycleError::Deleted);
    }
    Ok(target)
}

/// Counts against `who`'s publish budget and stores `data` with its effect; the new offset.
async fn store(
    state: &AppState,
    who: &Principal,
    channel: &Channel,
    data: String,
    effect: Effect,
) -> Result<u64, LifecycleError> {
    state
        .publish_budget
        .spend(budget::Payer::User(&who.user_id))
        .map_err(publish::Error::from)?;
    let data = RawValue::from_string(data).map_err(|_| LifecycleError::BadReplyTo)?;
    Ok(publish::submit_with(state, &who.user_id, channel, data, None, Some(effect)).await?)
}

/// `who` edits their message at `offset` of room `name`: `content` becomes its `data`. Returns
/// the edit's own offset.
pub(crate) async fn edit(
    state: &AppState,
    who: &Principal,
    name: &str,
    offset: u64,
    content: Box<RawValue>,
) -> Result<u64, LifecycleError> {
    let channel = writable(state, who, name).await?;
    let key = channel.to_string();
    let target = chat_message(state, &key, offset, "edited").await?;
    if *target.sender != *who.user_id {
        return Err(LifecycleError::NotAuthor);
    }
    // The new version meets a publish's rules, and stays a reply to what it replied to.
    if checked_head(&content)? != target.reply_to {
        return Err(LifecycleError::ReplyToChanged);
    }
    let data = stored::edit_data(offset, &content);
    let effect = Effect::Edit {
        target: offset,
        content,
    };
    store(state, who, &channel, data, effect).await
}

/// `who` deletes the message at `offset` of room `name`: theirs, or anyone's if they are the
/// room's owner or an admin (then audited). Returns the delete's own offset.
pub(crate) async fn delete(
    state: &AppState,
    who: &Principal,
    name: &str,
    offset: u64,
) -> Result<u64, LifecycleError> {
    let channel = writable(state, who, name).await?;
    let key = channel.to_string();
    let target = chat_message(state, &key, offset, "deleted").await?;
    let moderator = if *target.sender == *who.user_id {
        None
    } else {
        let room = ChannelKind::Room.key(&key).unwrap_or(&key).to_owned();
        match state.store.member_role(&room, &who.user_id).await? {
            Some(Role::Owner | Role::Admin) => Some(Moderation {
                room,
                actor: who.user_id.to_string(),
                author: target.sender,
            }),
            _ => return Err(LifecycleError::NotModerator),
        }
    };
    let data = stored::delete_data(offset);
    let effect = Effect::Delete {
        target: offset,
        moderator,
    };
    store(state, who, &channel, data, effect).await
}

/// What a reaction request did.
pub(crate) enum Reacted {
    /// Stored as a `reaction` message at this offset.
    Changed(u64),
    /// The caller had this reaction already: nothing stored.
    Already,
}

/// `who` adds (`add`) or removes their `emoji` reaction on the message at `offset`.
pub(crate) async fn react(
    state: &AppState,
    who: &Principal,
    name: &str,
    offset: u64,
    emoji: &str,
    add: bool,
) -> Result<Reacted, LifecycleError> {
    if emoji.is_empty()
        || emoji.len() > MAX_EMOJI_BYTES
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LifecycleError::BadEmoji);
    }
    let channel = writable(state, who, name).await?;
    let key = channel.to_string();
    chat_message(state, &key, offset, "reacted to").await?;
    let limits = ReactionLimits {
        per_user: state.config.reactions_per_user,
        per_message: state.config.reactions_per_message,
    };
    let now = state
        .store
        .reactions_now(&key, offset, &who.user_id, emoji)
        .await?;
    if add {
        if now.has_mine {
            return Ok(Reacted::Already);
        }
        if now.mine >= limits.per_user {
            return Err(LifecycleError::TooManyOfMine(limits.per_user));
        }
        if !now.has_any && now.distinct >= limits.per_message {
            return Err(LifecycleError::TooManyOnMessage(limits.per_message));
        }
    } else if !now.has_mine {
        return Err(LifecycleError::NotReacted);
    }
    // The stored payload is written in the transaction, with the count after the change.
    let placeholder = r#"{"kind":"reaction"}"#.to_owned();
    let effect = Effect::React {
        target: offset,
        emoji: emoji.to_owned(),
        add,
        limits,
    };
    let offset = store(state, who, &channel, placeholder, effect).await?;
    Ok(Reacted::Changed(offset))
}

/// The top-level fields of a room publish the server reads.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    reply_to: Option<serde_json::Value>,
}

/// Checks a user's publish to a room: no server `kind`, and a `reply_to` that names a chat
/// message of the channel (then counted on it). Most messages have neither field, and skip the
/// parse.
pub(crate) async fn inspect(
    state: &AppState,
    channel: &Channel,
    data: &RawValue,
) -> Result<Option<Effect>, LifecycleError> {
    if !matches!(channel, Channel::Room(_)) {
        return Ok(None);
    }
    let Some(parent) = checked_head(data)? else {
        return Ok(None);
    };
    let key = channel.to_string();
    match chat_message(state, &key, parent, "replied to").await {
        Ok(_) => Ok(Some(Effect::Reply { parent })),
        Err(LifecycleError::NoMessage | LifecycleError::NotChat(_)) => {
            Err(LifecycleError::BadReplyTo)
        }
        Err(e) => Err(e),
    }
}

/// The `reply_to` of a room payload (`None` when absent or null), after refusing a server
/// `kind`. Most payloads have neither field and skip the parse.
fn checked_head(data: &RawValue) -> Result<Option<u64>, LifecycleError> {
    let text = data.get();
    if !text.starts_with('{') || !(text.contains("\"kind\"") || text.contains("\"reply_to\"")) {
        return Ok(None);
    }
    // An object whose fields have other types is refused below only for `reply_to`; a `kind`
    // that is not a string is not one of ours.
    let head: Head<'_> = match serde_json::from_str(text) {
        Ok(head) => head,
        Err(_) => match serde_json::from_str::<HeadReply>(text) {
            Ok(h) => Head {
                kind: None,
                reply_to: h.reply_to,
            },
            Err(_) => return Ok(None),
        },
    };
    if let Some(kind) = head.kind.as_deref() {
        if RESERVED_KINDS.contains(&kind) {
            return Err(LifecycleError::Reserved(kind.to_owned()));
        }
    }
    match head.reply_to {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(LifecycleError::BadReplyTo),
    }
}

/// `reply_to` alone, for a payload whose `kind` is not a string.
#[derive(Deserialize)]
struct HeadReply {
    #[serde(default)]
    reply_to: Option<serde_json::Value>,
}
