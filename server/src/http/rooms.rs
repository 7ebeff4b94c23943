//! `/api/v1/rooms`: create a room (public or private with members) and list visible rooms.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_protocol::channel::{is_valid_name, MAX_ROOM_NAME};

use super::error::ApiError;
use super::extract::{Caller, Json, Writer};
use crate::store::StoreError;
use crate::AppState;

/// What a room name must look like, for error messages.
pub const ROOM_NAME_RULE: &str = "room names are 1-64 characters of A-Z a-z 0-9 _ . -";

/// Most members a room can be created with in one request.
const MAX_INITIAL_MEMBERS: usize = 1000;

pub fn router() -> Router<AppState> {
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
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !is_valid_name(&body.name, 1, MAX_ROOM_NAME) {
        return Err(ApiError::Unprocessable(ROOM_NAME_RULE.into()));
    }
    if body.members.len() > MAX_INITIAL_MEMBERS {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_INITIAL_MEMBERS} members per request"
        )));
    }
    let found = state.store.user_ids_by_usernames(&body.members).await?;
    let unknown: Vec<&String> = body
        .members
        .iter()
        .filter(|m| !found.iter().any(|(_, name)| name == *m))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "unknown members: {unknown:?}"
        )));
    }
    let mut member_ids: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
    member_ids.push(me.user_id.to_string());
    match state
        .store
        .create_room(&body.name, body.private, &me.user_id, &member_ids)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "room {} already exists",
                body.name
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let members: Vec<Value> = state
        .store
        .room_members(&body.name)
        .await?
        .into_iter()
        .map(|(id, username)| json!({ "id": id, "username": username }))
        .collect();
    let room = json!({ "name": body.name, "channel": format!("room:{}", body.name), "private": body.private, "members": members });
    Ok((StatusCode::CREATED, Json(json!({ "room": room }))))
}

async fn list(State(state): State<AppState>, Caller(me): Caller) -> Result<Json<Value>, ApiError> {
    let rooms: Vec<Value> = state
        .store
        .visible_rooms(&me.user_id)
        .await?
        .into_iter()
        .map(|r| json!({ "name": r.name, "channel": format!("room:{}", r.name), "private": r.private, "created_by": r.created_by }))
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}
