//! `/api/v1/rooms`: create a room (public or private with members) and list visible rooms.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use switchboard_protocol::channel::{is_valid_name, MAX_ROOM_NAME};
use switchboard_protocol::{ChannelKind, ErrorCode};

use super::bodies::{RoomBody, RoomView, RoomsPage};
use super::error::ApiError;
use super::extract::{Json, Query, Reader, Writer};
use super::{next_cursor, page_limit};
use crate::authz::{self, RoomAcl};
use crate::bus::ControlEvent;
use crate::chat::reads::UNREAD_CAP;
use crate::store::StoreError;
use crate::AppState;

/// What a room name must look like, for error messages.
pub(crate) const ROOM_NAME_RULE: &str = "room names are 1-64 characters of A-Z a-z 0-9 _ . -";

/// Most members a room can be created with in one request (resolved in one query, inserted in
/// one statement).
const MAX_INITIAL_MEMBERS: usize = 100;
/// Online users read to decide whether a name is in use: one more than the members a request
/// may name, so a page that holds only members proves nobody else is there.
const PRESENCE_SAMPLE: u32 = MAX_INITIAL_MEMBERS as u32 + 2;

/// Member rooms the room list's `unread_total` sums over (by name): each is one bounded count.
const TOTAL_OVER_ROOMS: u32 = 100;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms", get(list).post(create))
}

#[derive(Deserialize)]
struct NewRoom {
    name: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    members: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<NewRoom>,
) -> Result<(StatusCode, Json<RoomBody>), ApiError> {
    if !is_valid_name(&body.name, 1, MAX_ROOM_NAME) {
        return Err(ApiError::new(ErrorCode::Unprocessable, ROOM_NAME_RULE));
    }
    if crate::authz::is_dm_name(&body.name) {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            "room names starting with dm. are direct messages: POST /api/v1/dms",
        ));
    }
    if body.members.len() > MAX_INITIAL_MEMBERS {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            format!("at most {MAX_INITIAL_MEMBERS} members per request"),
        ));
    }
    let found = state.store.users_by_usernames(&body.members).await?;
    let unknown: Vec<&String> = body
        .members
        .iter()
        .filter(|m| !found.iter().any(|u| u.username.eq_ignore_ascii_case(m)))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            format!("unknown members: {unknown:?}"),
        ));
    }
    let mut member_ids: Vec<String> = found.iter().map(|u| u.id.clone()).collect();
    member_ids.push(me.user_id.to_string());
    refuse_if_in_use(&state, &body.name, &member_ids).await?;
    match state
        .store
        .create_room(&body.name, body.private, &me.user_id, &member_ids)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("room {} already exists", body.name),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    // The new rules hold on this node before the creator hears of the room, and on the others
    // as soon as the control event reaches them (storage is polled too, in case it is lost).
    let acl = if body.private {
        RoomAcl::Private(member_ids.iter().cloned().collect(), Default::default())
    } else {
        RoomAcl::public()
    };
    authz::watch::apply(&state.authz, &state.hub, &body.name, acl);
    state.bus.control(ControlEvent::RoomChanged {
        room: body.name.clone(),
        members: body.private.then_some(member_ids),
        restrictions: Default::default(),
    });
    let members = state.store.room_members(&body.name).await?;
    let room = RoomView {
        channel: ChannelKind::Room.name(&body.name),
        name: body.name,
        private: body.private,
        created_by: None,
        members: Some(members),
        created: true,
        title: None,
        archived: false,
        role: Some("owner"),
        unread: None,
    };
    Ok((StatusCode::CREATED, Json(RoomBody { room })))
}

/// A room can only be created on a name nobody uses yet: a channel with history, or with live
/// subscribers other than the creator and the named members, is someone else's (claiming it
/// would lock them out of it, or hand its history to the claimant). 409 otherwise.
async fn refuse_if_in_use(
    state: &AppState,
    name: &str,
    members: &[String],
) -> Result<(), ApiError> {
    let channel: Arc<str> = ChannelKind::Room.name(name).into();
    // Any case variant counts: once created, the room refuses all of them.
    if state
        .store
        .channel_has_messages_ignoring_case(&channel)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
            "{channel} (in some case) already has messages: a room is created on an unused name"
        ),
        ));
    }
    let local_variant = state
        .hub
        .channels()
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&channel) && **c != *channel);
    if local_variant {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{channel} has subscribers under another case: a room is created on an unused name"
            ),
        ));
    }
    // Presence counts every node's subscribers (each user once).
    let online = state
        .presence
        .page(&channel, None, PRESENCE_SAMPLE)
        .await
        .map_err(|e| {
            tracing::warn!(error = ?e, "presence read failed");
            ApiError::new(
                ErrorCode::Unavailable,
                "cannot tell whether the room name is in use",
            )
        })?;
    let others = online.count > online.users.len() as u64
        || online.users.iter().any(|u| !members.contains(&u.id));
    if others {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("{channel} has subscribers: a room is created on an unused name"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ListPage {
    /// A room name: rooms after it (by name).
    after: Option<String>,
    limit: Option<u32>,
}

/// `{"rooms":[...], "next_after": name|null}`, by name; `next_after` continues the list.
async fn list(
    State(state): State<AppState>,
    Reader(me): Reader,
    Query(page): Query<ListPage>,
) -> Result<Json<RoomsPage>, ApiError> {
    let limit = page_limit(&state, page.limit);
    let found = state
        .store
        .visible_rooms(&me.user_id, page.after.as_deref(), limit)
        .await?;
    let next_after = next_cursor(&found, limit, |r| r.name.clone());
    let names: Vec<String> = found.iter().map(|r| r.name.clone()).collect();
    let marks: HashMap<String, u64> = state
        .store
        .reads_in(&me.user_id, &names)
        .await?
        .into_iter()
        .collect();
    let mut rooms = Vec::with_capacity(found.len());
    for r in found {
        let channel = ChannelKind::Room.name(&r.name);
        let unread = match marks.get(&r.name) {
            Some(&mark) => Some(
                state
                    .store
                    .unread(&channel, &me.user_id, mark, UNREAD_CAP)
                    .await?,
            ),
            None => None,
        };
        rooms.push(RoomView {
            channel,
            name: r.name,
            private: r.private,
            created_by: Some(r.created_by),
            members: None,
            created: true,
            title: r.title,
            archived: r.archived,
            role: None,
            unread,
        });
    }
    let mut unread_total = 0;
    for (room, mark) in state
        .store
        .member_rooms_read(&me.user_id, None, TOTAL_OVER_ROOMS)
        .await?
    {
        let channel = ChannelKind::Room.name(&room);
        unread_total += state
            .store
            .unread(&channel, &me.user_id, mark, UNREAD_CAP)
            .await?;
    }
    Ok(Json(RoomsPage {
        rooms,
        next_after,
        unread_total,
    }))
}
