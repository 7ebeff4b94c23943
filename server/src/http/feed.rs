//! `GET /api/v1/feed`: the caller's home feed (their `feed:<id>` channel), newest first.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_protocol::ChannelKind;

use super::error::ApiError;
use super::extract::{Query, Reader};
use super::{page_limit, respond, RawJson};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
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
    Reader(me): Reader,
    Query(page): Query<Page>,
) -> Result<RawJson, ApiError> {
    let limit = page_limit(&state, page.limit);
    let channel: Arc<str> = ChannelKind::Feed.name(&me.user_id).into();
    let page = state
        .store
        .messages_before(&channel, page.before, limit, state.config.page_bytes)
        .await?;
    let mut messages = page.messages;
    messages.reverse();
    let next = if page.more {
        messages.last().map(|m| m.offset)
    } else {
        None
    };
    // The stored feed item is `{"kind":"post","post":{...}}`: its post is borrowed as raw text
    // (serde_json checks a `RawValue` without recursing), never parsed into a tree.
    #[derive(Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        post: Option<&'a RawValue>,
    }
    #[derive(Serialize)]
    struct Item<'a> {
        offset: u64,
        post: Option<&'a RawValue>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        items: Vec<Item<'a>>,
        next_before: Option<u64>,
    }
    let items = messages
        .iter()
        .map(|m| Item {
            offset: m.offset,
            post: serde_json::from_str::<Stored<'_>>(m.data.get())
                .ok()
                .and_then(|s| s.post),
        })
        .collect();
    respond(&Body {
        items,
        next_before: next,
    })
}
