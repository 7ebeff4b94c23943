//! `/api/v1/channels/{channel}/messages`: history pages and server-side publish.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_protocol::codec::json_page;
use switchboard_protocol::Channel;

use super::error::ApiError;
use super::extract::{Caller, Json, Path, Query};
use super::page_limit;
use crate::hub::delivery::{rfc3339, stored};
use crate::publish::publish;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/channels/{channel}/messages",
        get(history).post(post_message),
    )
}

fn parse_channel(raw: &str) -> Result<Channel, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::BadRequest(format!("{e}")))
}

#[derive(Deserialize)]
struct Page {
    before: Option<u64>,
    limit: Option<u32>,
}

async fn history(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(raw): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let channel = parse_channel(&raw)?;
    state.authz.can_read(&me, &channel).await?;
    let limit = page_limit(&state, page.limit);
    let name: Arc<str> = channel.to_string().into();
    let page = state
        .store
        .messages_before(&name, page.before, limit)
        .await?;
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
}

async fn post_message(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(raw): Path<String>,
    Json(body): Json<PostBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let channel = parse_channel(&raw)?;
    let offset = publish(&state, &me, &channel, body.data).await?;
    Ok((StatusCode::CREATED, Json(json!({ "offset": offset }))))
}
