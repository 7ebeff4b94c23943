//! `/api/v1/posts`: posting (fanned out to followers' feeds), replies and reactions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_protocol::{ErrorCode, Event};

use super::bodies::{ReactionBody, ReactionView};
use super::error::ApiError;
use super::extract::{Caller, Json, Path, Query, Reader, Writer};
use super::{next_cursor, page_limit, respond, RawJson};
use crate::feed::PostView;
use crate::notify::Actor;
use crate::payload;
use crate::store::{Post, Reacted};
use crate::AppState;

/// Longest reaction, in bytes: room for multi-code-point emoji (flags, skin tones, families).
const MAX_EMOJI_BYTES: usize = 64;
/// Distinct reactions one user may put on one post (each one notifies the author).
pub(crate) const MAX_REACTIONS_PER_USER: usize = 10;
/// Emoji a post shows counts for: the most used ones.
pub(crate) const TOP_REACTIONS: u32 = 20;

pub(crate) fn router() -> Router<AppState> {
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

async fn existing(state: &AppState, id: &str) -> Result<Post, ApiError> {
    state
        .store
        .post(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no post with id {id:?}")))
}

/// `{"post": {...}}`.
#[derive(Serialize)]
struct PostBody<'a> {
    post: PostView<'a>,
}

/// One post with its counts, for `GET /posts/{id}`.
#[derive(Serialize)]
struct PostDetail<'a> {
    #[serde(flatten)]
    post: PostView<'a>,
    replies: i64,
    reactions: Vec<ReactionCount>,
}

#[derive(Serialize)]
struct ReactionCount {
    emoji: String,
    count: i64,
}

/// 201 with the post; it reaches followers' feeds in the background.
async fn create(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<NewPost>,
) -> Result<(StatusCode, RawJson), ApiError> {
    payload::check(&body.data, state.config.max_frame_bytes)?;
    let post = state.feed.post(&me, body.data).await?;
    Ok((
        StatusCode::CREATED,
        respond(&PostBody {
            post: (&post).into(),
        })?,
    ))
}

async fn show(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
) -> Result<RawJson, ApiError> {
    let post = existing(&state, &id).await?;
    let replies = state.store.reply_count(&id).await?;
    let reactions = state
        .store
        .reaction_counts(&id, TOP_REACTIONS)
        .await?
        .into_iter()
        .map(|(emoji, count)| ReactionCount { emoji, count })
        .collect();
    #[derive(Serialize)]
    struct Body<'a> {
        post: PostDetail<'a>,
    }
    respond(&Body {
        post: PostDetail {
            post: (&post).into(),
            replies,
            reactions,
        },
    })
}

/// 201 with the reply; the parent's author gets a `reply` notification.
async fn reply(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
    Json(body): Json<NewPost>,
) -> Result<(StatusCode, RawJson), ApiError> {
    payload::check(&body.data, state.config.max_frame_bytes)?;
    let parent = existing(&state, &id).await?;
    let reply = state.feed.reply(&me, &parent, body.data).await?;
    let event: Event<(), PostView<'_>> = Event::Reply {
        post_id: parent.id.clone(),
        reply: (&reply).into(),
    };
    if let Err(e) = state
        .notifier
        .notify(&parent.author, &Actor::from(&me), None, event)
        .await
    {
        tracing::warn!(error = ?e, "reply notification failed");
    }
    Ok((
        StatusCode::CREATED,
        respond(&PostBody {
            post: (&reply).into(),
        })?,
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
    Reader(_): Reader,
    Path(id): Path<String>,
    Query(page): Query<ReplyPage>,
) -> Result<RawJson, ApiError> {
    existing(&state, &id).await?;
    let limit = page_limit(&state, page.limit);
    let replies = state
        .store
        .replies(&id, page.after.as_deref(), limit)
        .await?;
    let next = next_cursor(&replies, limit, |p| p.id.clone());
    #[derive(Serialize)]
    struct Page<'a> {
        replies: Vec<PostView<'a>>,
        next_after: Option<String>,
    }
    respond(&Page {
        replies: replies.iter().map(PostView::from).collect(),
        next_after: next,
    })
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
        Err(ApiError::new(
            ErrorCode::Unprocessable,
            format!("emoji must be 1-{MAX_EMOJI_BYTES} bytes without whitespace"),
        ))
    }
}

/// 201 when new (the author gets a `reaction` notification), 200 when already there.
async fn react(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
    Json(body): Json<Reaction>,
) -> Result<(StatusCode, Json<ReactionBody>), ApiError> {
    check_emoji(&body.emoji)?;
    let post = existing(&state, &id).await?;
    let new = match state
        .store
        .react(&id, &me.user_id, &body.emoji, MAX_REACTIONS_PER_USER)
        .await?
    {
        Reacted::New => true,
        Reacted::Already => false,
        Reacted::Capped => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                format!("at most {MAX_REACTIONS_PER_USER} different reactions per user on a post"),
            ))
        }
    };
    if new {
        let event: Event<(), ()> = Event::Reaction {
            post_id: post.id.clone(),
            emoji: body.emoji.clone(),
        };
        if let Err(e) = state
            .notifier
            .notify(&post.author, &Actor::from(&me), None, event)
            .await
        {
            tracing::warn!(error = ?e, "reaction notification failed");
        }
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = ReactionBody {
        reaction: ReactionView {
            post_id: post.id,
            emoji: body.emoji,
        },
    };
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
        Err(ApiError::new(
            ErrorCode::NotFound,
            "no such reaction of yours",
        ))
    }
}
