//! `/api/v1/auth/*`: register, login, refresh, logout.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use switchboard_protocol::channel::is_valid_name;
use switchboard_protocol::{ErrorCode, UserInfo};

use super::bodies::{TokenBody, UserBody};
use super::error::ApiError;
use super::extract::{Caller, ClientAddr, Json};

use crate::auth::AuthError;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, Json<UserBody<UserInfo>>), ApiError> {
    if !is_valid_name(&body.username, 3, 32) {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            "username must be 3-32 characters of A-Z a-z 0-9 _ . -",
        ));
    }
    if !(8..=128).contains(&body.password.chars().count()) {
        return Err(ApiError::new(
            ErrorCode::Unprocessable,
            "password must be 8-128 characters",
        ));
    }
    let id = state
        .auth
        .register(&body.username, &body.password, client)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserBody {
            user: UserInfo {
                id,
                username: body.username,
            },
        }),
    ))
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<Credentials>,
) -> Result<Json<TokenBody>, ApiError> {
    // A malformed username cannot exist: after the IP's throttle it fails like a wrong login.
    let tokens = state
        .auth
        .login(&body.username, &body.password, client)
        .await?;
    Ok(Json(tokens.into()))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenBody>, ApiError> {
    match state.auth.refresh(&body.refresh_token).await {
        Ok(tokens) => Ok(Json(tokens.into())),
        Err(e) => {
            if let AuthError::RefreshReused { session } = &e {
                tracing::warn!(%session, "refresh token reused; session revoked");
                close_session_sockets(&state, session);
            }
            Err(e.into())
        }
    }
}

#[derive(Deserialize, Default)]
struct LogoutBody {
    refresh_token: Option<String>,
}

/// Revokes the caller's session (named by the bearer token, or by a refresh token in the body)
/// and closes its sockets.
async fn logout(
    State(state): State<AppState>,
    caller: Option<Caller>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    // The body is optional: empty with a bearer token, `{"refresh_token":...}` without one.
    let body: LogoutBody = if body.is_empty() {
        LogoutBody::default()
    } else {
        serde_json::from_slice::<Option<LogoutBody>>(&body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?
            .unwrap_or_default()
    };
    let session = match (caller, body.refresh_token) {
        (Some(Caller(p)), _) => p.session_id.to_string(),
        (None, Some(token)) => state.auth.session_of_refresh(&token).await?,
        (None, None) => return Err(AuthError::BadToken.into()),
    };
    state.auth.revoke(&session).await?;
    close_session_sockets(&state, &session);
    Ok(StatusCode::NO_CONTENT)
}

fn close_session_sockets(state: &AppState, session: &str) {
    state.bus.session_revoked(session);
    state.hub.close_session(session);
}
