//! `/api/v1/posts`: posting (fanned out to followers' feeds), replies and reactions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{Caller, Json, Path, Query, Writer};
use super::{next_cursor, page_limit};
use crate::auth::Principal;
use crate::feed::post_json;
use crate::notify::{Actor, Kind};
use crate::store::Post;
use crate::AppState;

/// Longest reaction, in bytes: room for multi-code-point emoji (flags, skin tones, families).
const MAX_EMOJI_BYTES: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/posts", post(create))
        .route("/api/v1/posts/{id}", get(show))
        .route("/api/v1/posts/{id}/replies", post(reply).get(replies))
        .route("/api/v1/posts/{id}/reactions", post(react).delete(unreact))
}

#[derive(Deserialize)]
struct NewPost {
    data: Box<RawValue>,
}

fn check_size(state: &AppState, data: &RawValue) -> Result<(), ApiError> {
    let (len, limit) = (data.get().len(), state.config.max_frame_bytes);
    if len > limit {
        return Err(ApiError::TooLarge(format!(
            "data is too large ({len} bytes, limit {limit})"
        )));
    }
    Ok(())
}

async fn existing(state: &AppState, id: &str) -> Result<Post, ApiError> {
    state
        .store
        .post(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no post with id {id:?}")))
}

fn actor(me: &Principal) -> Actor {
    Actor {
        id: me.user_id.clone(),
        username: me.username.clone(),
    }
}

/// 201 with the post; it reaches followers' feeds in the background.
async fn create(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<NewPost>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_size(&state, &body.data)?;
    let post = state.feed.post(&me, body.data).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "post": post_json(&post) })),
    ))
}

async fn show(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let post = existing(&state, &id).await?;
    let replies = state.store.reply_count(&id).await?;
    let reactions: Vec<Value> = state
        .store
        .reaction_counts(&id)
        .await?
        .into_iter()
        .map(|(emoji, count)| json!({ "emoji": emoji, "count": count }))
        .collect();
    let mut body = post_json(&post);
    body["replies"] = replies.into();
    body["reactions"] = reactions.into();
    Ok(Json(json!({ "post": body })))
}

/// 201 with the reply; the parent's author gets a `reply` notification.
async fn reply(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
    Json(body): Json<NewPost>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_size(&state, &body.data)?;
    let parent = existing(&state, &id).await?;
    let reply = state.feed.reply(&me, &parent, body.data).await?;
    let mut fields = Map::new();
    fields.insert("post_id".into(), parent.id.clone().into());
    fields.insert("reply".into(), post_json(&reply));
    if let Err(e) = state
        .notifier
        .notify(&parent.author, &actor(&me), None, Kind::Reply, fields)
        .await
    {
        tracing::warn!(error = %e, "reply notification failed");
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "post": post_json(&reply) })),
    ))
}

#[derive(Deserialize)]
struct ReplyPage {
    after: Option<String>,
    limit: Option<u32>,
}

/// Replies oldest first; `next_after` continues (null at the end).
async fn replies(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
    Query(page): Query<ReplyPage>,
) -> Result<Json<Value>, ApiError> {
    existing(&state, &id).await?;
    let limit = page_limit(&state, page.limit);
    let replies = state
        .store
        .replies(&id, page.after.as_deref(), limit)
        .await?;
    let next = next_cursor(&replies, limit, |p| p.id.clone());
    let replies: Vec<Value> = replies.iter().map(post_json).collect();
    Ok(Json(json!({ "replies": replies, "next_after": next })))
}

#[derive(Deserialize)]
struct Reaction {
    emoji: String,
}

fn check_emoji(emoji: &str) -> Result<(), ApiError> {
    let ok = !emoji.is_empty()
        && emoji.len() <= MAX_EMOJI_BYTES
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "emoji must be 1-{MAX_EMOJI_BYTES} bytes without whitespace"
        )))
    }
}

/// 201 when new (the author gets a `reaction` notification), 200 when already there.
async fn react(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
    Json(body): Json<Reaction>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_emoji(&body.emoji)?;
    let post = existing(&state, &id).await?;
    let new = state.store.react(&id, &me.user_id, &body.emoji).await?;
    if new {
        let mut fields = Map::new();
        fields.insert("post_id".into(), post.id.clone().into());
        fields.insert("emoji".into(), body.emoji.clone().into());
        if let Err(e) = state
            .notifier
            .notify(&post.author, &actor(&me), None, Kind::Reaction, fields)
            .await
        {
            tracing::warn!(error = %e, "reaction notification failed");
        }
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({ "reaction": { "post_id": post.id, "emoji": body.emoji } });
    Ok((status, Json(body)))
}

async fn unreact(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
    Json(body): Json<Reaction>,
) -> Result<StatusCode, ApiError> {
    if state.store.unreact(&id, &me.user_id, &body.emoji).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such reaction of yours".into()))
    }
}
