//! Notifications: events (a follow, an `@mention`, a reply, a reaction) become a message on the
//! target user's `user:<id>` channel — pushed live to all their connections on every node and
//! recovered with `since` like any channel — and a `notifications` row holding its read state,
//! both written in one transaction by the storage writer.
//!
//! Read-state changes are themselves `read` messages on the same channel, so a user's other
//! devices see them live. The data of every kind is specified in docs/PROTOCOL.md.

pub(crate) mod mentions;
pub(crate) mod once;

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::metrics;
use crate::pipeline::commit::CommitQueue;
use crate::publish;
use crate::store::messages::NewMessage;
use crate::store::{now_ms, Store, StoreError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Follow,
    Mention,
    Reply,
    Reaction,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Follow => "follow",
            Kind::Mention => "mention",
            Kind::Reply => "reply",
            Kind::Reaction => "reaction",
        }
    }
}

/// Who caused a notification.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub id: Arc<str>,
    pub username: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] publish::Error),
    #[error("cannot encode the notification: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A notification's `data`: the common fields, then the kind's own (`fields`, flattened).
#[derive(Serialize)]
struct NotificationData<'a, F: Serialize> {
    kind: &'static str,
    id: &'a str,
    from: ActorView<'a>,
    created_at: i64,
    #[serde(flatten)]
    fields: F,
}

#[derive(Serialize)]
struct ActorView<'a> {
    id: &'a str,
    username: &'a str,
}

pub(crate) struct Notifier {
    store: Store,
    queue: CommitQueue,
}

impl Notifier {
    pub(crate) fn new(store: Store, queue: CommitQueue) -> Notifier {
        Notifier { store, queue }
    }

    /// Notifies `to` that `from` did `kind` (in `room`, for mentions), with the kind's own
    /// `fields` (a struct or map, flattened into the data; stored payloads inside are spliced in
    /// as they are). Nothing is sent to oneself or when `to` muted `from` or the room. Returns
    /// the notification id once it is stored.
    pub(crate) async fn notify(
        &self,
        to: &str,
        from: &Actor,
        room: Option<&str>,
        kind: Kind,
        fields: impl Serialize,
    ) -> Result<Option<String>, NotifyError> {
        if *from.id == *to || self.store.is_muted(to, &from.id, room).await? {
            return Ok(None);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now_ms();
        let data = serde_json::value::to_raw_value(&NotificationData {
            kind: kind.as_str(),
            id: &id,
            from: ActorView {
                id: &from.id,
                username: &from.username,
            },
            created_at,
            fields,
        })?;
        self.send(to, &from.id, id.clone(), created_at, data, Some(kind))
            .await?;
        metrics::NOTIFICATIONS.increment(1);
        Ok(Some(id))
    }

    /// Tells all of `user`'s connections that notifications were marked read: `change` holds
    /// `ids` or `all`/`upto`; `unread_count` is added.
    pub(crate) async fn read_changed(
        &self,
        user: &str,
        mut change: Map<String, Value>,
        unread_count: i64,
    ) -> Result<(), NotifyError> {
        change.insert("kind".into(), "read".into());
        change.insert("unread_count".into(), unread_count.into());
        let id = uuid::Uuid::now_v7().to_string();
        let data = serde_json::value::to_raw_value(&Value::Object(change))?;
        self.send(user, user, id, now_ms(), data, None).await
    }

    async fn send(
        &self,
        to: &str,
        from: &str,
        id: String,
        ts_ms: i64,
        data: Box<RawValue>,
        kind: Option<Kind>,
    ) -> Result<(), NotifyError> {
        let message = NewMessage {
            channel: format!("user:{to}").into(),
            id,
            from: from.to_owned(),
            ts_ms,
            data,
            published_at: None,
            notification: kind.map(Kind::as_str),
        };
        let stored = self.queue.submit(message).map_err(publish::Error::from)?;
        stored.await.map_err(publish::Error::from)?;
        Ok(())
    }
}
