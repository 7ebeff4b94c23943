//! Read markers: how far a user has read a room, moved over HTTP or WebSocket alike, and synced
//! to the user's other connections through a `room_read` event on their `user:` channel.

use switchboard_protocol::{Channel, ChannelKind, ErrorCode, Event, ServerFrame, UserInfo};

use crate::auth::Principal;
use crate::authz::AccessError;
use crate::bus::ControlEvent;
use crate::store::StoreError;
use crate::AppState;

/// Unread messages counted per room at most: a count that reaches it means "1000 or more".
pub(crate) const UNREAD_CAP: u32 = 1000;

/// A marker after a move.
pub(crate) struct Marked {
    pub room: String,
    pub channel: String,
    pub offset: u64,
    pub unread: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("no such room (read markers are kept for created rooms)")]
    NoRoom,
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReadError {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            ReadError::NoRoom => ErrorCode::NotFound,
            ReadError::Access(e) => e.code(),
            ReadError::Store(_) => ErrorCode::Unavailable,
        }
    }
}

/// Moves `who`'s marker in the room `name` (any case) to `offset` if that is further (never
/// past the last message), and tells their other connections when it moved.
pub(crate) async fn mark(
    state: &AppState,
    who: &Principal,
    name: &str,
    offset: u64,
) -> Result<Marked, ReadError> {
    let room = match state.store.room_ignoring_case(name).await? {
        Some(room) if !room.deleted => room,
        _ => return Err(ReadError::NoRoom),
    };
    state
        .authz
        .can_read(who, &Channel::Room(room.name.clone()))
        .await?;
    let channel = ChannelKind::Room.name(&room.name);
    let before = state.store.last_read(&room.name, &who.user_id).await?;
    let offset = state
        .store
        .move_read_marker(&room.name, &channel, &who.user_id, offset)
        .await?;
    let unread = state
        .store
        .unread(&channel, &who.user_id, offset, UNREAD_CAP)
        .await?;
    if offset > before {
        let event: Event<(), ()> = Event::RoomRead {
            room: room.name.clone(),
            channel: channel.clone(),
            offset,
            unread,
        };
        if let Err(e) = state.notifier.read_changed(&who.user_id, event).await {
            // The marker is stored; the other devices see it in their next room list.
            tracing::warn!(error = ?e, "telling a user's devices of a read marker failed");
        }
        spread_receipt(state, who, &room.name, &channel, offset).await;
    }
    Ok(Marked {
        room: room.name,
        channel,
        offset,
        unread,
    })
}

/// The `read` frame every subscriber of the room gets when a member's marker moves.
pub(crate) fn receipt(channel: String, user: UserInfo, offset: u64) -> ServerFrame {
    ServerFrame::Read {
        channel,
        user,
        offset,
    }
}

/// Tells the room's subscribers on every node that `who` read up to `offset`, if the room is
/// small enough for read receipts (`SWITCHBOARD_READ_RECEIPTS_MAX_MEMBERS`).
async fn spread_receipt(state: &AppState, who: &Principal, room: &str, channel: &str, offset: u64) {
    match state.store.member_count(room).await {
        Ok(n) if n <= state.config.read_receipts_max_members => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = ?e, "counting a room's members failed; no read receipt sent");
            return;
        }
    }
    let user = UserInfo {
        id: who.user_id.to_string(),
        username: who.username.to_string(),
    };
    state.hub.broadcast(
        channel,
        &user.id,
        &receipt(channel.to_owned(), user.clone(), offset),
    );
    state.bus.control(ControlEvent::Read {
        channel: channel.to_owned(),
        user_id: user.id,
        username: user.username,
        offset,
    });
}
