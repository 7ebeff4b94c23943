//! `GET /api/v1/feed`: the caller's home feed (their `feed:<id>` channel), newest first.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{Caller, Json, Query};
use super::{next_cursor, page_limit};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/feed", get(feed))
}

#[derive(Deserialize)]
struct Page {
    /// A feed offset: items strictly older than it.
    before: Option<u64>,
    limit: Option<u32>,
}

/// `{"items":[{"offset":N,"post":{...}}], "next_before": N|null}`. Offsets are those of the live
/// `feed:<id>` messages, so a client can page back from the first live item it saw.
async fn feed(
    State(state): State<AppState>,
    Caller(me): Caller,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(&state, page.limit);
    let channel: Arc<str> = format!("feed:{}", me.user_id).into();
    let mut messages = state
        .store
        .messages_before(&channel, page.before, limit)
        .await?;
    messages.reverse();
    let next = next_cursor(&messages, limit, |m| m.offset);
    let items: Vec<Value> = messages
        .iter()
        .map(|m| {
            let item: Value = serde_json::from_str(m.data.get()).unwrap_or(Value::Null);
            json!({ "offset": m.offset, "post": item.get("post").cloned().unwrap_or(Value::Null) })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next_before": next })))
}
