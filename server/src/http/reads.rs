//! Read state over HTTP: a user's read marker per room (`POST /api/v1/rooms/{name}/read`),
//! synced to their other connections; and read receipts, how far each member has read
//! (`GET /api/v1/rooms/{name}/read_state`), for rooms small enough for them to mean something.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use switchboard_protocol::ErrorCode;

use super::error::ApiError;
use super::extract::{Json, Path, Query, Reader, Writer};
use super::members::readable;
use super::{next_cursor, page_limit};
use crate::chat::reads;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{name}/read", post(mark))
        .route("/api/v1/rooms/{name}/read_state", get(receipts))
}

#[derive(Deserialize)]
struct MarkBody {
    offset: u64,
}

#[derive(Serialize)]
struct ReadView {
    room: String,
    channel: String,
    offset: u64,
    unread: u64,
}

#[derive(Serialize)]
struct ReadBody {
    read: ReadView,
}

async fn mark(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<MarkBody>,
) -> Result<Json<ReadBody>, ApiError> {
    let m = reads::mark(&state, &me, &name, body.offset).await?;
    Ok(Json(ReadBody {
        read: ReadView {
            room: m.room,
            channel: m.channel,
            offset: m.offset,
            unread: m.unread,
        },
    }))
}

#[derive(Deserialize)]
struct ReceiptsQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct Receipt {
    id: String,
    username: String,
    offset: u64,
}

#[derive(Serialize)]
struct ReceiptsPage {
    members: Vec<Receipt>,
    next_after: Option<String>,
}

async fn receipts(
    State(state): State<AppState>,
    Reader(me): Reader,
    Path(name): Path<String>,
    Query(page): Query<ReceiptsQuery>,
) -> Result<Json<ReceiptsPage>, ApiError> {
    let room = readable(&state, &me, &name).await?;
    let max = state.config.read_receipts_max_members;
    if state.store.member_count(&room.name).await? > max {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("read receipts are off in rooms of more than {max} members (SWITCHBOARD_READ_RECEIPTS_MAX_MEMBERS)"),
        ));
    }
    let limit = page_limit(&state, page.limit);
    let found = state
        .store
        .read_state_page(&room.name, page.after.as_deref(), limit)
        .await?;
    let next_after = next_cursor(&found, limit, |(u, _)| u.username.clone());
    Ok(Json(ReceiptsPage {
        members: found
            .into_iter()
            .map(|(u, offset)| Receipt {
                id: u.id,
                username: u.username,
                offset,
            })
            .collect(),
        next_after,
    }))
}
