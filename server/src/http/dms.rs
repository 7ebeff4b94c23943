//! `/api/v1/dms` (the one private conversation of two users) and `/api/v1/blocks`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use switchboard_protocol::{ChannelKind, ErrorCode, UserInfo};

use super::error::ApiError;
use super::extract::{Json, Path, Query, Reader, Writer};
use super::{next_cursor, page_limit};
use crate::bus::ControlEvent;
use crate::chat::membership;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/dms", post(open))
        .route("/api/v1/blocks", post(block).get(blocked))
        .route("/api/v1/blocks/{user}", delete(unblock))
}

#[derive(Deserialize)]
struct WithUser {
    user: String,
}

#[derive(Serialize)]
struct DmView {
    room: String,
    channel: String,
    user: UserInfo,
}

#[derive(Serialize)]
struct DmBody {
    dm: DmView,
}

async fn other_user(state: &AppState, me: &str, id: &str) -> Result<UserInfo, ApiError> {
    if id == me {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            "a direct message is with someone else",
        ));
    }
    match state.store.user_by_id(id).await? {
        Some(u) => Ok(UserInfo {
            id: u.id,
            username: u.username,
        }),
        None => Err(ApiError::new(ErrorCode::NotFound, "no such user")),
    }
}

/// 201 with the conversation when it is created, 200 when it existed: either user, any number
/// of times, gets the same room. Refused (403) while either blocked the other.
async fn open(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<WithUser>,
) -> Result<(StatusCode, Json<DmBody>), ApiError> {
    let other = other_user(&state, &me.user_id, &body.user).await?;
    if state.store.blocked_between(&me.user_id, &other.id).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "one of you blocked the other: no direct messages",
        ));
    }
    let (room, created) = state.store.open_dm(&me.user_id, &other.id).await?;
    if created {
        // Both users' rules hold on every node before either writes.
        membership::spread_rules(&state, &room).await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DmBody {
            dm: DmView {
                channel: ChannelKind::Room.name(&room),
                room,
                user: other,
            },
        }),
    ))
}

/// Blocks a user: 201 (200 when already blocked). Their conversation with the caller turns
/// read-only on every node at once, and they notify the caller of nothing from now on.
async fn block(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<WithUser>,
) -> Result<StatusCode, ApiError> {
    let other = other_user(&state, &me.user_id, &body.user).await?;
    let max = state.config.max_blocks;
    if !state.store.has_blocked(&me.user_id, &other.id).await?
        && state.store.blocked_ids(&me.user_id).await?.len() >= max as usize
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("at most {max} blocked users (SWITCHBOARD_MAX_BLOCKS)"),
        ));
    }
    let new = state.store.block(&me.user_id, &other.id).await?;
    membership::spread_rules(
        &state,
        &crate::store::blocks::dm_room(&me.user_id, &other.id),
    )
    .await;
    spread_blocks(&state, &me.user_id).await?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

async fn unblock(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.unblock(&me.user_id, &user).await?;
    membership::spread_rules(&state, &crate::store::blocks::dm_room(&me.user_id, &user)).await;
    spread_blocks(&state, &me.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells every node `user`'s block list, so their connections hide those users' messages from
/// the next one on. (Connections read the list when they open.)
async fn spread_blocks(state: &AppState, user: &str) -> Result<(), ApiError> {
    let blocked = state.store.blocked_ids(user).await?;
    let list: Vec<String> = blocked.iter().cloned().collect();
    state.hub.set_hidden(user, &std::sync::Arc::new(blocked));
    state.bus.control(ControlEvent::Blocks {
        user: user.to_owned(),
        blocked: list,
    });
    Ok(())
}

#[derive(Deserialize)]
struct BlockedQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct BlockedPage {
    users: Vec<UserInfo>,
    next_after: Option<String>,
}

async fn blocked(
    State(state): State<AppState>,
    Reader(me): Reader,
    Query(page): Query<BlockedQuery>,
) -> Result<Json<BlockedPage>, ApiError> {
    let limit = page_limit(&state, page.limit);
    let users = state
        .store
        .blocked_by(&me.user_id, page.after.as_deref(), limit)
        .await?;
    let next_after = next_cursor(&users, limit, |u| u.username.clone());
    Ok(Json(BlockedPage { users, next_after }))
}
