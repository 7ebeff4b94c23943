//! `/api/v1/channels/{channel}/messages`: history pages and server-side publish.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_protocol::codec::json_page;
use switchboard_protocol::{Channel, ErrorCode};

use super::bodies::Offset;
use super::error::ApiError;
use super::extract::{bearer, Json, Path, Query, Reader};
use super::page_limit;

use crate::publish::budget::Payer;
use crate::publish::{self, publish, submit, IdempotencyKey, SYSTEM};
use crate::store::{rfc3339, stored};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/channels/{channel}/messages",
        get(history).post(post_message),
    )
}

fn parse_channel(raw: &str) -> Result<Channel, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("{e}")))
}

#[derive(Deserialize)]
struct Page {
    before: Option<u64>,
    limit: Option<u32>,
}

async fn history(
    State(state): State<AppState>,
    Reader(me): Reader,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let channel = parse_channel(&raw)?;
    state.authz.can_read(&me, &channel).await?;
    let limit = page_limit(&state, page.limit);
    let name: Arc<str> = channel.to_string().into();
    let mut page = state
        .store
        .messages_before(&name, page.before, limit, state.config.page_bytes)
        .await?
        .messages;
    if matches!(channel, Channel::Room(_)) {
        state
            .store
            .reader_view(&name, &me.user_id, &mut page)
            .await?;
    }
    let times: Vec<String> = page.iter().map(|m| rfc3339(m.ts_ms)).collect();
    let entries: Vec<_> = page
        .iter()
        .zip(&times)
        .map(|(m, ts)| stored(m, ts))
        .collect();
    let body = json_page(&entries).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
struct PostBody {
    data: Box<RawValue>,
    /// The same as an `Idempotency-Key` header.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// The publish's idempotency key, from the `Idempotency-Key` header or the body's field (both
/// may be given only if they agree).
fn idempotency_key(
    headers: &HeaderMap,
    body: &PostBody,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                ErrorCode::Unprocessable,
                "Idempotency-Key is not visible ASCII",
            )
        })?),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                "more than one Idempotency-Key header",
            ))
        }
    };
    let key = match (header, body.idempotency_key.as_deref()) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                "the Idempotency-Key header and the body's idempotency_key differ",
            ))
        }
        (Some(k), _) | (None, Some(k)) => Some(k),
        (None, None) => None,
    };
    key.map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::Unprocessable, e.to_string()))
}

/// Publishes as the caller (counted against their publish budget), or, with a server API key
/// as the bearer token, as `system` to any room (counted against the key's budget).
async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Json(body): Json<PostBody>,
) -> Result<(StatusCode, Json<Offset>), ApiError> {
    let channel = parse_channel(&raw)?;
    let idem = idempotency_key(&headers, &body)?;
    let token = bearer(&headers)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing bearer token"))?;
    let offset = match state.publish_budget.api_key(token) {
        Some(key) => {
            if !matches!(channel, Channel::Room(_)) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "an API key publishes to rooms; user and feed channels are the server's",
                ));
            }
            state
                .publish_budget
                .spend(Payer::ApiKey(key))
                .map_err(publish::Error::from)?;
            submit(&state, SYSTEM, &channel, body.data, idem).await?
        }
        None => {
            let me = state.auth.authenticate(token)?;
            publish(&state, &me, &channel, body.data, idem).await?
        }
    };
    Ok((StatusCode::CREATED, Json(Offset { offset })))
}
