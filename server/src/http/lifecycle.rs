//! `/api/v1/rooms/{name}/messages/{offset}`: editing and deleting a room message, and
//! reactions on it. Each change is a message of its own in the room ([`crate::chat::lifecycle`]);
//! the answer is its offset.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, patch, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::bodies::Offset;
use super::error::ApiError;
use super::extract::{Json, Path, Writer};
use crate::chat::lifecycle::{self, Reacted};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/rooms/{name}/messages/{offset}",
            patch(edit).delete(remove),
        )
        .route(
            "/api/v1/rooms/{name}/messages/{offset}/reactions",
            post(react),
        )
        .route(
            "/api/v1/rooms/{name}/messages/{offset}/reactions/{emoji}",
            delete(unreact),
        )
}

#[derive(Deserialize)]
struct EditBody {
    data: Box<RawValue>,
}

/// 201 with the edit's own offset.
async fn edit(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, offset)): Path<(String, u64)>,
    Json(body): Json<EditBody>,
) -> Result<(StatusCode, Json<Offset>), ApiError> {
    let offset = lifecycle::edit(&state, &me, &name, offset, body.data).await?;
    Ok((StatusCode::CREATED, Json(Offset { offset })))
}

/// 200 with the delete's own offset.
async fn remove(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, offset)): Path<(String, u64)>,
) -> Result<Json<Offset>, ApiError> {
    let offset = lifecycle::delete(&state, &me, &name, offset).await?;
    Ok(Json(Offset { offset }))
}

#[derive(Deserialize)]
struct ReactBody {
    emoji: String,
}

/// The reaction message's offset; absent when nothing changed (the reaction was there).
#[derive(Serialize)]
struct ReactView {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

/// 201 with the reaction message's offset, or 200 without one when the caller had reacted so.
async fn react(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, offset)): Path<(String, u64)>,
    Json(body): Json<ReactBody>,
) -> Result<(StatusCode, Json<ReactView>), ApiError> {
    Ok(
        match lifecycle::react(&state, &me, &name, offset, &body.emoji, true).await? {
            Reacted::Changed(offset) => (
                StatusCode::CREATED,
                Json(ReactView {
                    offset: Some(offset),
                }),
            ),
            Reacted::Already => (StatusCode::OK, Json(ReactView { offset: None })),
        },
    )
}

/// 200 with the reaction message's offset; 404 when the caller had no such reaction.
async fn unreact(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, offset, emoji)): Path<(String, u64, String)>,
) -> Result<Json<ReactView>, ApiError> {
    let offset = match lifecycle::react(&state, &me, &name, offset, &emoji, false).await? {
        Reacted::Changed(offset) => Some(offset),
        Reacted::Already => None,
    };
    Ok(Json(ReactView { offset }))
}
