//! `/api/v1/notifications`: the caller's notifications, unread count, and marking them read.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use switchboard_protocol::{ChannelKind, ErrorCode, Event};

use super::bodies::{Marked, Unread};
use super::error::ApiError;
use super::extract::{Caller, Json, Query, Reader, Writer};
use super::{page_limit, respond, RawJson};
use crate::store::{Notification, MAX_MARK};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications", get(list))
        .route("/api/v1/notifications/unread_count", get(unread_count))
        .route("/api/v1/notifications/read", post(mark_read))
}

#[derive(Deserialize)]
struct Page {
    /// An offset on `user:<id>`: notifications strictly older than it.
    before: Option<u64>,
    limit: Option<u32>,
}

/// Newest first: each is its `user:<id>` message data plus `offset` and `read`.
async fn list(
    State(state): State<AppState>,
    Reader(me): Reader,
    Query(page): Query<Page>,
) -> Result<RawJson, ApiError> {
    let limit = page_limit(&state, page.limit);
    let (found, more) = state
        .store
        .notifications(&me.user_id, page.before, limit, state.config.page_bytes)
        .await?;
    let next = if more {
        found.last().map(|n| n.offset)
    } else {
        None
    };
    let notifications = found.iter().map(item).collect::<Result<Vec<_>, _>>()?;
    #[derive(serde::Serialize)]
    struct Body {
        notifications: Vec<Box<RawValue>>,
        next_before: Option<u64>,
    }
    respond(&Body {
        notifications,
        next_before: next,
    })
}

/// A notification as listed: its stored data (an object) with `offset` and `read` added, the
/// stored text spliced in rather than parsed.
fn item(n: &Notification) -> Result<Box<RawValue>, ApiError> {
    let head = format!(r#"{{"offset":{},"read":{}"#, n.offset, n.read);
    let stored = n.data.get().trim();
    let text = match stored.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        Some(fields) if !fields.trim().is_empty() => format!("{head},{fields}}}"),
        Some(_) => format!("{head}}}"),
        // Every notification is stored as an object; anything else is kept whole beside.
        None => format!(r#"{head},"id":{},"data":{stored}}}"#, json!(n.id)),
    };
    RawValue::from_string(text).map_err(|e| ApiError::Internal(e.into()))
}

async fn unread_count(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Unread>, ApiError> {
    let count = state.store.unread_count(&me.user_id).await?;
    Ok(Json(Unread {
        unread_count: count,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRead {
    ids: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
    /// With `all`: only up to this `user:<id>` offset (what the client has shown), so a
    /// notification that arrived meanwhile stays unread.
    upto: Option<u64>,
}

/// `{"ids":[...]}` or `{"all":true}` (optionally `"upto": offset`). Answers how many changed and
/// the unread count; the user's connections get a `read` notification frame when any changed.
async fn mark_read(
    State(state): State<AppState>,
    Writer(me): Writer,
    Json(body): Json<MarkRead>,
) -> Result<Json<Marked>, ApiError> {
    // What changed, for the `read` event: (ids) or (all, upto).
    let (marked, ids, upto) = match (body.ids, body.all) {
        (Some(ids), false) => {
            if ids.len() > MAX_MARK {
                return Err(ApiError::new(
                    ErrorCode::Unprocessable,
                    format!("at most {MAX_MARK} ids per request"),
                ));
            }
            let marked = state.store.mark_read(&me.user_id, &ids).await?;
            (marked.len() as u64, Some(marked), None)
        }
        (None, true) => {
            let last = state
                .store
                .last_offset(&ChannelKind::User.name(&me.user_id))
                .await?;
            let upto = body.upto.map_or(last, |u| u.min(last));
            let marked = state.store.mark_all_read(&me.user_id, upto).await?;
            (marked, None, Some(upto))
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                "give either \"ids\": [...] or \"all\": true",
            ))
        }
    };
    let unread = state.store.unread_count(&me.user_id).await?;
    if marked > 0 {
        let change = Event::Read {
            all: upto.is_some().then_some(true),
            ids,
            upto,
            unread_count: unread,
        };
        if let Err(e) = state.notifier.read_changed(&me.user_id, change).await {
            tracing::warn!(error = ?e, "read-state notification failed");
        }
    }
    Ok(Json(Marked {
        marked,
        unread_count: unread,
    }))
}
