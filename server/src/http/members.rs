//! `/api/v1/rooms/{name}` and below: one room, its members and roles, ownership, archiving and
//! deleting, bans, timeouts and the audit trail. Storage decides and records each change
//! ([`crate::store::members`]); [`crate::chat::membership`] makes it visible everywhere.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use switchboard_protocol::channel::{is_valid_name, MAX_ROOM_NAME};
use switchboard_protocol::{Channel, ChannelKind, ErrorCode, UserInfo};

use super::bodies::{MemberBody, MemberView, MembersPage, RoomBody, RoomView};
use super::error::ApiError;
use super::extract::{Json, Path, Query, Reader, Writer};
use super::rooms::ROOM_NAME_RULE;
use super::{next_cursor, page_limit};
use crate::auth::Principal;
use crate::chat::membership::{self, Change};
use crate::store::members::{Refusal, Role};
use crate::store::Room;
use crate::AppState;

/// The longest timeout one request sets (a week); longer ones are a ban.
pub(crate) const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;
/// Longest room title, in characters.
pub(crate) const MAX_TITLE_CHARS: usize = 200;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/rooms/{name}",
            get(show).patch(update).delete(remove_room),
        )
        .route("/api/v1/rooms/{name}/members", get(members).post(add))
        .route(
            "/api/v1/rooms/{name}/members/{user}",
            delete(remove).patch(change_role),
        )
        .route("/api/v1/rooms/{name}/leave", post(leave))
        .route("/api/v1/rooms/{name}/owner", post(transfer))
        .route("/api/v1/rooms/{name}/bans", post(ban))
        .route("/api/v1/rooms/{name}/bans/{user}", delete(unban))
        .route("/api/v1/rooms/{name}/timeouts", post(time_out))
        .route("/api/v1/rooms/{name}/timeouts/{user}", delete(lift_timeout))
        .route("/api/v1/rooms/{name}/audit", get(audit))
}

/// The created room `name` (in any case), or 404.
async fn created(state: &AppState, name: &str) -> Result<Room, ApiError> {
    match state.store.room_ignoring_case(name).await? {
        Some(room) if room.deleted => Err(Refusal::Deleted.into()),
        Some(room) => Ok(room),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "no such room (rooms are created with POST /api/v1/rooms)",
        )),
    }
}

/// The created room `name`, if `me` may read it (403 otherwise).
pub(super) async fn readable(
    state: &AppState,
    me: &Principal,
    name: &str,
) -> Result<Room, ApiError> {
    let room = created(state, name).await?;
    state
        .authz
        .can_read(me, &Channel::Room(room.name.clone()))
        .await?;
    Ok(room)
}

/// The user `id`, or 404.
async fn user(state: &AppState, id: &str) -> Result<UserInfo, ApiError> {
    match state.store.user_by_id(id).await? {
        Some(u) => Ok(UserInfo {
            id: u.id,
            username: u.username,
        }),
        None => Err(ApiError::new(ErrorCode::NotFound, "no such user")),
    }
}

/// Someone named in a body: by `user` (id) or by `username`.
#[derive(Deserialize)]
struct Someone {
    user: Option<String>,
    username: Option<String>,
}

impl Someone {
    async fn resolve(&self, state: &AppState) -> Result<UserInfo, ApiError> {
        match (&self.user, &self.username) {
            (Some(id), _) => user(state, id).await,
            (None, Some(name)) => match state.store.user_by_username(name).await? {
                Some(u) => Ok(UserInfo {
                    id: u.id,
                    username: u.username,
                }),
                None => Err(ApiError::new(ErrorCode::NotFound, "no such user")),
            },
            (None, None) => Err(ApiError::new(
                ErrorCode::Unprocessable,
                "name the user: {\"user\": id} or {\"username\": name}",
            )),
        }
    }
}

fn view(room: Room, role: Option<Role>) -> RoomView {
    RoomView {
        channel: ChannelKind::Room.name(&room.name),
        name: room.name,
        private: room.private,
        created_by: Some(room.created_by),
        members: None,
        created: true,
        title: room.title,
        archived: room.archived,
        role: role.map(Role::as_str),
        unread: None,
    }
}

fn change<'a>(room: &'a str, by: &'a Principal, kind: &'static str) -> Change<'a> {
    Change {
        room,
        by,
        kind,
        user: None,
        role: None,
        until: None,
    }
}

/// A change concerning `user`.
fn about<'a>(room: &'a str, by: &'a Principal, kind: &'static str, user: UserInfo) -> Change<'a> {
    Change {
        user: Some(user),
        ..change(room, by, kind)
    }
}

/// One room; a valid name never created is an open public room (`created` false), not a 404.
async fn show(
    State(state): State<AppState>,
    Reader(me): Reader,
    Path(name): Path<String>,
) -> Result<Json<RoomBody>, ApiError> {
    if !is_valid_name(&name, 1, MAX_ROOM_NAME) {
        return Err(ApiError::new(ErrorCode::Unprocessable, ROOM_NAME_RULE));
    }
    if state.store.room_ignoring_case(&name).await?.is_none() {
        state
            .authz
            .can_read(&me, &Channel::Room(name.clone()))
            .await?;
        return Ok(Json(RoomBody {
            room: RoomView {
                channel: ChannelKind::Room.name(&name),
                name,
                private: false,
                created_by: None,
                members: None,
                created: false,
                title: None,
                archived: false,
                role: None,
                unread: None,
            },
        }));
    }
    let room = readable(&state, &me, &name).await?;
    let role = state.store.member_role(&room.name, &me.user_id).await?;
    Ok(Json(RoomBody {
        room: view(room, role),
    }))
}

#[derive(Deserialize)]
struct RoomUpdate {
    /// A new title; `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "some")]
    title: Option<Option<String>>,
    archived: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

async fn update(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<RoomUpdate>,
) -> Result<Json<RoomBody>, ApiError> {
    if let Some(Some(title)) = &body.title {
        if title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                format!(
                    "a title has at most {MAX_TITLE_CHARS} characters and no control characters"
                ),
            ));
        }
    }
    let room = created(&state, &name).await?;
    let title = body.title.as_ref().map(|t| t.as_deref());
    state
        .store
        .update_room(&room.name, &me.user_id, title, body.archived)
        .await??;
    if body.title.is_some() {
        membership::announce(&state, change(&room.name, &me, "renamed")).await;
    }
    if let Some(archived) = body.archived {
        let kind = if archived { "archived" } else { "unarchived" };
        membership::announce(&state, change(&room.name, &me, kind)).await;
    }
    let room = created(&state, &room.name).await?;
    let role = state.store.member_role(&room.name, &me.user_id).await?;
    Ok(Json(RoomBody {
        room: view(room, role),
    }))
}

async fn remove_room(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    state.store.delete_room(&room.name, &me.user_id).await??;
    membership::announce(&state, change(&room.name, &me, "deleted")).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct MembersQuery {
    /// A username: members after it.
    after: Option<String>,
    limit: Option<u32>,
}

async fn members(
    State(state): State<AppState>,
    Reader(me): Reader,
    Path(name): Path<String>,
    Query(page): Query<MembersQuery>,
) -> Result<Json<MembersPage>, ApiError> {
    let room = readable(&state, &me, &name).await?;
    let limit = page_limit(&state, page.limit);
    let found = state
        .store
        .members_page(&room.name, page.after.as_deref(), limit)
        .await?;
    let next_after = next_cursor(&found, limit, |m| m.user.username.clone());
    Ok(Json(MembersPage {
        members: found.into_iter().map(MemberView::from).collect(),
        next_after,
    }))
}

async fn member_body(state: &AppState, room: &str, who: UserInfo) -> Result<MemberBody, ApiError> {
    let role = state
        .store
        .member_role(room, &who.id)
        .await?
        .unwrap_or(Role::Member);
    Ok(MemberBody {
        member: MemberView {
            id: who.id,
            username: who.username,
            role: role.as_str(),
        },
    })
}

/// 201 with the member when added; 200 when they already were one.
async fn add(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<Someone>,
) -> Result<(StatusCode, Json<MemberBody>), ApiError> {
    let room = created(&state, &name).await?;
    let who = body.resolve(&state).await?;
    let added = state
        .store
        .add_member(&room.name, &me.user_id, &who.id)
        .await??;
    if added {
        membership::announce(&state, about(&room.name, &me, "member_added", who.clone())).await;
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(member_body(&state, &room.name, who).await?)))
}

async fn remove(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    let who = user(&state, &user_id).await?;
    take_out(&state, &me, &room.name, who).await
}

async fn leave(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    let who = UserInfo {
        id: me.user_id.to_string(),
        username: me.username.to_string(),
    };
    take_out(&state, &me, &room.name, who).await
}

async fn take_out(
    state: &AppState,
    me: &Principal,
    room: &str,
    who: UserInfo,
) -> Result<StatusCode, ApiError> {
    let removed = state
        .store
        .remove_member(room, &me.user_id, &who.id)
        .await??;
    if removed {
        let kind = if *me.user_id == who.id {
            "member_left"
        } else {
            "member_removed"
        };
        membership::announce(state, about(room, me, kind, who)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RoleChange {
    role: String,
}

async fn change_role(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, user_id)): Path<(String, String)>,
    Json(body): Json<RoleChange>,
) -> Result<Json<MemberBody>, ApiError> {
    let role = match Role::parse(&body.role) {
        Some(role @ (Role::Admin | Role::Member)) => role,
        _ => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                "role is \"admin\" or \"member\" (ownership moves with POST .../owner)",
            ))
        }
    };
    let room = created(&state, &name).await?;
    let who = user(&state, &user_id).await?;
    let changed = state
        .store
        .change_role(&room.name, &me.user_id, &who.id, role)
        .await??;
    if changed {
        let c = Change {
            role: Some(role),
            ..about(&room.name, &me, "role_changed", who.clone())
        };
        membership::announce(&state, c).await;
    }
    Ok(Json(member_body(&state, &room.name, who).await?))
}

async fn transfer(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<Someone>,
) -> Result<Json<MemberBody>, ApiError> {
    let room = created(&state, &name).await?;
    let who = body.resolve(&state).await?;
    state
        .store
        .transfer_ownership(&room.name, &me.user_id, &who.id)
        .await??;
    let c = Change {
        role: Some(Role::Owner),
        ..about(&room.name, &me, "ownership_transferred", who.clone())
    };
    membership::announce(&state, c).await;
    Ok(Json(member_body(&state, &room.name, who).await?))
}

async fn ban(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<Someone>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    let who = body.resolve(&state).await?;
    let banned = state.store.ban(&room.name, &me.user_id, &who.id).await??;
    if banned {
        membership::announce(&state, about(&room.name, &me, "banned", who)).await;
        return Ok(StatusCode::CREATED);
    }
    Ok(StatusCode::OK)
}

async fn unban(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    let who = user(&state, &user_id).await?;
    if state
        .store
        .unban(&room.name, &me.user_id, &who.id)
        .await??
    {
        membership::announce(&state, about(&room.name, &me, "unbanned", who)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TimeoutBody {
    #[serde(flatten)]
    who: Someone,
    seconds: u64,
}

#[derive(Serialize)]
struct TimeoutView {
    user: String,
    until: i64,
}

#[derive(Serialize)]
struct TimeoutBodyOut {
    timeout: TimeoutView,
}

async fn time_out(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path(name): Path<String>,
    Json(body): Json<TimeoutBody>,
) -> Result<(StatusCode, Json<TimeoutBodyOut>), ApiError> {
    if body.seconds == 0 || body.seconds > MAX_TIMEOUT_SECS {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            format!("seconds is 1 to {MAX_TIMEOUT_SECS} (longer: ban)"),
        ));
    }
    let room = created(&state, &name).await?;
    let who = body.who.resolve(&state).await?;
    let until = crate::store::now_ms() + body.seconds as i64 * 1000;
    state
        .store
        .set_timeout(&room.name, &me.user_id, &who.id, until)
        .await??;
    let c = Change {
        until: Some(until),
        ..about(&room.name, &me, "timed_out", who.clone())
    };
    membership::announce(&state, c).await;
    Ok((
        StatusCode::CREATED,
        Json(TimeoutBodyOut {
            timeout: TimeoutView {
                user: who.id,
                until,
            },
        }),
    ))
}

async fn lift_timeout(
    State(state): State<AppState>,
    Writer(me): Writer,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = created(&state, &name).await?;
    let who = user(&state, &user_id).await?;
    state
        .store
        .set_timeout(&room.name, &me.user_id, &who.id, 0)
        .await??;
    membership::announce(&state, about(&room.name, &me, "timeout_lifted", who)).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct AuditView {
    id: i64,
    actor: String,
    action: String,
    target: Option<String>,
    detail: Option<String>,
    at: i64,
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<AuditView>,
    next_before: Option<i64>,
}

/// The room's audit trail, newest first (owners and admins only).
async fn audit(
    State(state): State<AppState>,
    Reader(me): Reader,
    Path(name): Path<String>,
    Query(page): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let room = created(&state, &name).await?;
    let role = state.store.member_role(&room.name, &me.user_id).await?;
    if role.is_none_or(|r| r < Role::Admin) {
        return Err(
            Refusal::NotAllowed("only the room's owner and admins read its audit trail").into(),
        );
    }
    let limit = page_limit(&state, page.limit);
    let found = state
        .store
        .audit_page(&room.name, page.before, limit)
        .await?;
    let next_before = next_cursor(&found, limit, |e| e.id);
    Ok(Json(AuditPage {
        entries: found
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
                at: e.at,
            })
            .collect(),
        next_before,
    }))
}
