//! `/api/v1/users`: looking users up, the follow graph, and a user's posts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use switchboard_protocol::{ErrorCode, Event, UserInfo};

use super::bodies::{FollowEntry, Following, Profile, UserBody, UsersPage};
use super::error::ApiError;
use super::extract::{Caller, Json, Path, Query, Writer};
use super::{next_cursor, page_limit, respond, RawJson};
use crate::feed::PostView;
use crate::notify::Actor;
use crate::store::follows::Party;
use crate::store::{Direction, User};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(find))
        .route("/api/v1/users/{id}", get(profile))
        .route("/api/v1/users/{id}/follow", post(follow).delete(unfollow))
        .route("/api/v1/users/{id}/followers", get(followers))
        .route("/api/v1/users/{id}/following", get(following))
        .route("/api/v1/users/{id}/posts", get(posts))
}

#[derive(Deserialize)]
struct ByName {
    username: String,
}

/// `GET /api/v1/users?username=NAME`: a username's id (to follow or mute them).
async fn find(
    State(state): State<AppState>,
    Caller(_): Caller,
    Query(q): Query<ByName>,
) -> Result<Json<UserBody<UserInfo>>, ApiError> {
    let user = state
        .store
        .user_by_username(&q.username)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no user named {:?}", q.username),
            )
        })?;
    Ok(Json(UserBody {
        user: UserInfo {
            id: user.id,
            username: user.username,
        },
    }))
}

async fn existing(state: &AppState, id: &str) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no user with id {id:?}")))
}

async fn profile(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
) -> Result<Json<UserBody<Profile>>, ApiError> {
    let user = existing(&state, &id).await?;
    let (followers, following) = state.store.follow_counts(&id).await?;
    Ok(Json(UserBody {
        user: Profile {
            id: user.id,
            username: user.username,
            followers,
            following,
        },
    }))
}

/// Follows `id`: 201 when new (and `id` is notified), 200 when already following.
async fn follow(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Following>), ApiError> {
    if id == *me.user_id {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            "you cannot follow yourself",
        ));
    }
    let target = existing(&state, &id).await?;
    let new = state
        .store
        .follow(
            Party {
                id: &me.user_id,
                username: &me.username,
            },
            Party {
                id: &target.id,
                username: &target.username,
            },
        )
        .await?;
    // A follow → unfollow → follow loop notifies once per window, not once per loop.
    if new
        && state
            .follow_notices
            .first_in_window(&me.user_id, &target.id)
    {
        let actor = Actor::from(&me);
        // The follow stands even if its notification cannot be stored right now.
        if let Err(e) = state
            .notifier
            .notify(&target.id, &actor, None, Event::<(), ()>::Follow)
            .await
        {
            tracing::warn!(error = ?e, "follow notification failed");
        }
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Following {
        following: UserInfo {
            id: target.id,
            username: target.username,
        },
    };
    Ok((status, Json(body)))
}

async fn unfollow(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.unfollow(&me.user_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            "you do not follow this user",
        ))
    }
}

#[derive(Deserialize)]
struct FollowPage {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn followers(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    page: Query<FollowPage>,
) -> Result<Json<UsersPage>, ApiError> {
    follow_list(state, caller, id, page, Direction::Followers).await
}

async fn following(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    page: Query<FollowPage>,
) -> Result<Json<UsersPage>, ApiError> {
    follow_list(state, caller, id, page, Direction::Following).await
}

/// A page of followers or followees, newest first; `next_before` continues it (null at the end).
async fn follow_list(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<String>,
    Query(page): Query<FollowPage>,
    direction: Direction,
) -> Result<Json<UsersPage>, ApiError> {
    // Anyone holding a token can follow, so one's own lists exist even without an account row.
    if id != *me.user_id {
        existing(&state, &id).await?;
    }
    let limit = page_limit(&state, page.limit);
    let edges = state
        .store
        .follow_page(&id, direction, page.before, limit)
        .await?;
    let next = next_cursor(&edges, limit, |e| e.id);
    let users = edges
        .into_iter()
        .map(|e| FollowEntry {
            id: e.user_id,
            username: e.username,
            followed_at: e.created_at,
        })
        .collect();
    Ok(Json(UsersPage {
        users,
        next_before: next,
    }))
}

#[derive(Deserialize)]
struct PostPage {
    before: Option<String>,
    limit: Option<u32>,
}

/// `id`'s posts (not replies), newest first.
async fn posts(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(id): Path<String>,
    Query(page): Query<PostPage>,
) -> Result<RawJson, ApiError> {
    let limit = page_limit(&state, page.limit);
    let posts = state
        .store
        .posts_by(&id, page.before.as_deref(), limit)
        .await?;
    let next = next_cursor(&posts, limit, |p| p.id.clone());
    #[derive(serde::Serialize)]
    struct Page<'a> {
        posts: Vec<PostView<'a>>,
        next_before: Option<String>,
    }
    respond(&Page {
        posts: posts.iter().map(PostView::from).collect(),
        next_before: next,
    })
}
