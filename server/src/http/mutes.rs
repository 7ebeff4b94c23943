//! `/api/v1/mutes`: mute a room or a user (no more notifications from it), unmute, list.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use switchboard_protocol::channel::{is_valid_name, MAX_ROOM_NAME};
use switchboard_protocol::ErrorCode;

use super::bodies::{MuteBody, MuteEntry, Mutes};
use super::error::ApiError;
use super::extract::{Caller, Json, Query, Writer};
use super::rooms::ROOM_NAME_RULE;

use crate::store::MuteTarget;
use crate::AppState;

/// Longest user id accepted as a mute target.
const MAX_USER_ID: usize = 128;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/mutes", get(list).post(mute).delete(unmute))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Target {
    room: Option<String>,
    user: Option<String>,
}

impl Target {
    fn parse(self, me: &str) -> Result<MuteTarget, ApiError> {
        match (self.room, self.user) {
            (Some(room), None) if is_valid_name(&room, 1, MAX_ROOM_NAME) => {
                Ok(MuteTarget::Room(room))
            }
            (Some(_), None) => Err(ApiError::new(ErrorCode::Unprocessable, ROOM_NAME_RULE)),
            (None, Some(user)) if user == me => Err(ApiError::new(
                ErrorCode::Unprocessable,
                "you cannot mute yourself",
            )),
            (None, Some(user)) if !user.is_empty() && user.len() <= MAX_USER_ID => {
                Ok(MuteTarget::User(user))
            }
            (None, Some(_)) => Err(ApiError::new(
                ErrorCode::Unprocessable,
                "user must be a user id",
            )),
            _ => Err(ApiError::new(
                ErrorCode::Unprocessable,
                "give exactly one of \"room\" or \"user\"",
            )),
        }
    }
}

/// 201 when newly muted, 200 when it already was.
async fn mute(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<Target>,
) -> Result<(StatusCode, Json<MuteBody>), ApiError> {
    let target = body.parse(&me.user_id)?;
    let new = state.store.mute(&me.user_id, &target).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(MuteBody {
            mute: (&target).into(),
        }),
    ))
}

/// The target comes as a JSON body like `POST`'s, or as `?room=` / `?user=` for clients that
/// send no body with `DELETE`.
async fn unmute(
    State(state): State<AppState>,
    Writer(me): Writer,
    Query(query): Query<Target>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let target = if body.iter().all(u8::is_ascii_whitespace) {
        query
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}")))?
    };
    let target = target.parse(&me.user_id)?;
    if state.store.unmute(&me.user_id, &target).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "not muted"))
    }
}

async fn list(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Mutes>, ApiError> {
    let mutes = state
        .store
        .mutes(&me.user_id)
        .await?
        .iter()
        .map(|(target, at)| MuteEntry {
            target: target.into(),
            created_at: *at,
        })
        .collect();
    Ok(Json(Mutes { mutes }))
}
