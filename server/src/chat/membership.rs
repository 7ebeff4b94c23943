//! What follows a membership or moderation change that storage accepted: the room's new rules
//! reach the subscriptions on this node at once and on the others through a control event (and
//! the storage poll, if that is lost); the room's channel carries a system message with the
//! change, under its own offset, so live clients and `since` recovery both see it; and the user
//! it concerns gets a `room` notification.
//!
//! The change is already committed when this runs, so a failure here is logged and counted, not
//! answered as an error: the rules still reach every node through the poll. The system message
//! is due from the change's own transaction on (its audit row is marked pending there), so a
//! node that dies before storing it leaves it to [`sweep`] on any node, which stores it under the
//! same idempotency key: once, in the order of the changes. (The `room` notification to the user
//! concerned is sent by the request only.)

use serde_json::{json, Value};
use switchboard_protocol::{Channel, Event, UserInfo};

use crate::auth::Principal;
use crate::authz::{self, RoomAcl};
use crate::bus::ControlEvent;
use crate::metrics;
use crate::notify::Actor;
use crate::publish;
use crate::store::members::{Role, Unannounced};
use crate::store::now_ms;
use crate::AppState;

/// One change, as announced.
pub(crate) struct Change<'a> {
    /// The room's name as created.
    pub room: &'a str,
    pub by: &'a Principal,
    /// The system message's `data.kind` (PROTOCOL.md, "Room membership").
    pub kind: &'static str,
    /// The user it concerns, if any.
    pub user: Option<UserInfo>,
    pub role: Option<Role>,
    pub until: Option<i64>,
}

impl Change<'_> {
    /// The `change` of the notification the concerned user gets, if they get one.
    fn notice(&self) -> Option<&'static str> {
        match self.kind {
            "member_added" | "member_removed" | "role_changed" | "banned" | "timed_out" => {
                Some(self.kind)
            }
            "ownership_transferred" => Some("owner"),
            _ => None,
        }
    }
}

/// Makes a stored change visible.
pub(crate) async fn announce(state: &AppState, change: Change<'_>) {
    spread_rules(state, change.room).await;
    let channel = Channel::Room(change.room.to_owned());
    // Every pending change of the room, this one included, in order (a concurrent request or
    // the sweep may store some of them too: the key makes that once).
    if let Err(e) = announce_pending(state, Some(change.room), i64::MAX).await {
        metrics::worker_skipped("room_system_message");
        tracing::warn!(error = %e, room = change.room, kind = change.kind, "the system message of a room change was not stored; the sweep retries");
    }
    if let (Some(user), Some(notice)) = (&change.user, change.notice()) {
        let event: Event = Event::Room {
            room: change.room.to_owned(),
            channel: channel.to_string(),
            change: notice.to_owned(),
            role: change.role.map(|r| r.as_str().to_owned()),
            until: change.until,
        };
        if let Err(e) = state
            .notifier
            .notify(&user.id, &Actor::from(change.by), None, event)
            .await
        {
            metrics::worker_skipped("room_notification");
            tracing::warn!(error = ?e, room = change.room, "a room change notification was not stored");
        }
    }
}

/// Reads the room's rules back from storage and applies them here and, through the bus, on
/// every other node.
pub(crate) async fn spread_rules(state: &AppState, room: &str) {
    let (name, acl) = match state.authz.load_named(room).await {
        Ok(found) => found,
        Err(e) => {
            // Every node's poll (this one's included) picks the change up from storage.
            tracing::warn!(error = ?e, room, "reading a room's new rules failed; the poll applies them");
            return;
        }
    };
    let event = match &acl {
        RoomAcl::Private(members, restrictions) => ControlEvent::RoomChanged {
            room: name.clone(),
            members: Some(members.iter().cloned().collect()),
            restrictions: restrictions.clone(),
        },
        RoomAcl::Public(restrictions) => ControlEvent::RoomChanged {
            room: name.clone(),
            members: None,
            restrictions: restrictions.clone(),
        },
        RoomAcl::Uncreated | RoomAcl::Alias(_) => return,
    };
    authz::watch::apply(&state.authz, &state.hub, &name, acl);
    state.bus.control(event);
}

#[derive(Debug, thiserror::Error)]
enum SystemMessageError {
    #[error(transparent)]
    Publish(#[from] publish::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot encode the system message: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("not an idempotency key")]
    Key,
}

/// Changes per sweep, and the age a change must have before a sweep takes it (the request that
/// made it normally announces it at once).
const SWEEP_BATCH: u32 = 100;
const SWEEP_AFTER_MS: i64 = 5_000;
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Stores the system messages of pending changes, oldest first: those of `room`, or of every
/// room when `None` (older than `before`, Unix ms). Stops at the first failure, so the order
/// of a room's system messages is the order of its changes.
async fn announce_pending(
    state: &AppState,
    room: Option<&str>,
    before: i64,
) -> Result<usize, SystemMessageError> {
    let pending = state.store.unannounced(room, before, SWEEP_BATCH).await?;
    let n = pending.len();
    for change in pending {
        // A deleted room's channel is gone with its messages: nothing more goes into it.
        let gone = change.action == "deleted"
            || !matches!(state.store.room_ignoring_case(&change.room).await?, Some(r) if !r.deleted);
        if !gone {
            let channel = Channel::Room(change.room.clone());
            let raw = serde_json::value::to_raw_value(&system_data(&change))?;
            let key = publish::IdempotencyKey::parse(&format!("room-change-{}", change.id))
                .map_err(|_| SystemMessageError::Key)?;
            publish::submit(state, publish::SYSTEM, &channel, raw, Some(key)).await?;
        }
        state.store.announced(change.id).await?;
    }
    Ok(n)
}

/// The system message's `data` for a change (PROTOCOL.md, "Room membership").
fn system_data(change: &Unannounced) -> Value {
    let mut data = json!({
        "kind": change.action,
        "by": {"id": change.actor.id, "username": change.actor.username},
    });
    if let Some(user) = &change.target {
        data["user"] = json!({"id": user.id, "username": user.username});
    }
    let detail = change.detail.as_deref();
    match change.action.as_str() {
        "role_changed" => data["role"] = json!(detail),
        "timed_out" => data["until"] = json!(detail.and_then(|d| d.parse::<i64>().ok())),
        "renamed" => data["title"] = json!(detail),
        "ownership_transferred" => data["role"] = json!(Role::Owner.as_str()),
        _ => {}
    }
    data
}

/// Every [`SWEEP_EVERY`], announces the changes whose request did not (its node died, or
/// storage failed then), until shutdown.
pub(crate) async fn sweep(state: AppState) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match announce_pending(&state, None, now_ms() - SWEEP_AFTER_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "announced room changes left pending"),
            Err(e) => tracing::warn!(error = %e, "announcing pending room changes failed"),
        }
    }
}
