//! Extractors that turn rejections into `ApiError` JSON bodies, and the bearer-token caller.

use std::net::SocketAddr;

use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts,
};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use switchboard_protocol::ErrorCode;

use super::error::ApiError;
use crate::auth::Principal;
use crate::AppState;

/// `axum::Json` with JSON error bodies.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub T);

/// `axum::extract::Query` with JSON error bodies.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

/// `axum::extract::Path` with JSON error bodies.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if the header has that form.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The client's address: the TCP peer, or, from a trusted proxy, the client it forwards for
/// ([`crate::net::client`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub std::net::IpAddr);

impl<S> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no peer address on request")))?;
        Ok(ClientAddr(crate::net::client::client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
            state.config.client_ip_header,
        )))
    }
}

/// The authenticated caller (401 without a valid access token of a live session).
pub(crate) struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
        Ok(Caller(state.auth.authenticate(token)?))
    }
}

impl<S> OptionalFromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    /// Absent header → `None`; a header with a bad token is still an error.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if parts.headers.get(AUTHORIZATION).is_none() {
            return Ok(None);
        }
        <Caller as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// An authenticated caller making a social write over HTTP (post, reply, reaction, follow, mute,
/// mark read, room): also counted against the caller's HTTP write budget, so a script cannot
/// flood followers' feeds or someone's notifications (429 `rate_limited` past it).
pub(crate) struct Writer(pub Principal);

impl<S> FromRequestParts<S> for Writer
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        counted(parts, state, |s| &s.http_writes).await.map(Writer)
    }
}

/// An authenticated caller reading a page (history, feed, notifications, presence, posts):
/// counted against the caller's HTTP read budget (429 `rate_limited` past it), so a script
/// cannot make the node serialise pages without pause.
pub(crate) struct Reader(pub Principal);

impl<S> FromRequestParts<S> for Reader
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        counted(parts, state, |s| &s.http_reads).await.map(Reader)
    }
}

/// The caller, counted against the per-user budget `budget` picks.
async fn counted<S>(
    parts: &mut Parts,
    state: &S,
    budget: fn(&AppState) -> &super::throttle::UserRate,
) -> Result<Principal, ApiError>
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    let Caller(me) = <Caller as FromRequestParts<S>>::from_request_parts(parts, state).await?;
    budget(&AppState::from_ref(state)).check(&me.user_id)?;
    Ok(me)
}
