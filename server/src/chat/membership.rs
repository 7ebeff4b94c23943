//! What follows a membership or moderation change that storage accepted: the room's new rules
//! reach the subscriptions on this node at once and on the others through a control event (and
//! the storage poll, if that is lost); the room's channel carries a system message with the
//! change, under its own offset, so live clients and `since` recovery both see it; and the user
//! it concerns gets a `room` notification.
//!
//! The change is already committed when this runs, so a failure here is logged and counted, not
//! answered as an error: the rules still reach every node through the poll. A node that dies
//! between the commit and the system message loses that message (the member list, read again,
//! is right); recording it through an outbox as mentions do is noted in docs/PROTOCOL.md.

use serde_json::{json, Value};
use switchboard_protocol::{Channel, Event, UserInfo};

use crate::auth::Principal;
use crate::authz::{self, RoomAcl};
use crate::bus::ControlEvent;
use crate::metrics;
use crate::notify::Actor;
use crate::publish;
use crate::store::members::Role;
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
    pub title: Option<Option<String>>,
}

impl Change<'_> {
    /// The system message's `data`.
    fn data(&self) -> Value {
        let mut data = json!({
            "kind": self.kind,
            "by": {"id": &*self.by.user_id, "username": &*self.by.username},
        });
        if let Some(user) = &self.user {
            data["user"] = json!({"id": user.id, "username": user.username});
        }
        if let Some(role) = self.role {
            data["role"] = json!(role.as_str());
        }
        if let Some(until) = self.until {
            data["until"] = json!(until);
        }
        if let Some(title) = &self.title {
            data["title"] = json!(title);
        }
        data
    }

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

/// Makes a stored change visible; returns the system message's offset when it was stored.
pub(crate) async fn announce(state: &AppState, change: Change<'_>) -> Option<u64> {
    spread_rules(state, change.room).await;
    let channel = Channel::Room(change.room.to_owned());
    let offset = if change.kind == "deleted" {
        None // the channel is gone with its messages
    } else {
        match system_message(state, &channel, change.data()).await {
            Ok(offset) => Some(offset),
            Err(e) => {
                metrics::worker_skipped("room_system_message");
                tracing::warn!(error = ?e, room = change.room, kind = change.kind, "the system message of a room change was not stored");
                None
            }
        }
    };
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
    offset
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
    #[error("cannot encode the system message: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Stores `data` on `channel` as sent by the server (`from` is `system`): no access check, so
/// it lands in an archived room too.
async fn system_message(
    state: &AppState,
    channel: &Channel,
    data: Value,
) -> Result<u64, SystemMessageError> {
    let raw = serde_json::value::to_raw_value(&data)?;
    Ok(publish::submit(state, publish::SYSTEM, channel, raw, None).await?)
}
