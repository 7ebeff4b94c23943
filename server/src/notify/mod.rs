//! Notifications: events (a follow, an `@mention`, a reply, a reaction) become a message on the
//! target user's `user:<id>` channel — pushed live to all their connections on every node and
//! recovered with `since` like any channel — and a `notifications` row holding its read state,
//! both written in one transaction by the storage writer.
//!
//! Read-state changes are themselves `read` messages on the same channel, so a user's other
//! devices see them live. The data of every kind is specified in docs/PROTOCOL.md.

pub mod mentions;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::metrics;
use crate::publish::PublishFailure;
use crate::store::messages::NewMessage;
use crate::store::writer::Publisher;
use crate::store::{now_ms, Store, StoreError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Follow,
    Mention,
    Reply,
    Reaction,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
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
pub struct Actor {
    pub id: Arc<str>,
    pub username: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishFailure),
}

pub struct Notifier {
    store: Store,
    publisher: Publisher,
}

impl Notifier {
    pub fn new(store: Store, publisher: Publisher) -> Notifier {
        Notifier { store, publisher }
    }

    /// Notifies `to` that `from` did `kind` (in `room`, for mentions), with the kind's own
    /// `fields`. Nothing is sent to oneself or when `to` muted `from` or the room. Returns the
    /// notification id once it is stored.
    pub async fn notify(
        &self,
        to: &str,
        from: &Actor,
        room: Option<&str>,
        kind: Kind,
        fields: Map<String, Value>,
    ) -> Result<Option<String>, NotifyError> {
        if *from.id == *to || self.store.is_muted(to, &from.id, room).await? {
            return Ok(None);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now_ms();
        let mut data = Map::new();
        data.insert("kind".into(), kind.as_str().into());
        data.insert("id".into(), id.clone().into());
        data.insert(
            "from".into(),
            json!({ "id": &*from.id, "username": &*from.username }),
        );
        data.insert("created_at".into(), created_at.into());
        data.extend(fields);
        self.send(
            to,
            &from.id,
            id.clone(),
            created_at,
            Value::Object(data),
            Some(kind),
        )
        .await?;
        metrics::NOTIFICATIONS.increment(1);
        Ok(Some(id))
    }

    /// Tells all of `user`'s connections that notifications were marked read: `change` holds
    /// `ids` or `all`/`upto`; `unread_count` is added.
    pub async fn read_changed(
        &self,
        user: &str,
        mut change: Map<String, Value>,
        unread_count: i64,
    ) -> Result<(), NotifyError> {
        change.insert("kind".into(), "read".into());
        change.insert("unread_count".into(), unread_count.into());
        let id = uuid::Uuid::now_v7().to_string();
        self.send(user, user, id, now_ms(), Value::Object(change), None)
            .await
    }

    async fn send(
        &self,
        to: &str,
        from: &str,
        id: String,
        ts_ms: i64,
        data: Value,
        kind: Option<Kind>,
    ) -> Result<(), NotifyError> {
        let data = serde_json::value::to_raw_value(&data).expect("a JSON value always serialises");
        let message = NewMessage {
            channel: format!("user:{to}").into(),
            id,
            from: from.to_owned(),
            ts_ms,
            data,
            published_at: None,
            notification: kind.map(Kind::as_str),
        };
        let stored = self
            .publisher
            .submit(message)
            .map_err(PublishFailure::from)?;
        stored.await.map_err(PublishFailure::from)?;
        Ok(())
    }
}
