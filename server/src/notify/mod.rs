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

use switchboard_protocol::{ChannelKind, Event, UserEvent, UserInfo};

use crate::auth::Principal;
use crate::metrics;
use crate::pipeline::commit::{CommitQueue, SubmitError};
use crate::publish;
use crate::store::messages::NewMessage;
use crate::store::{now_ms, Store, StoreError};

/// Who caused a notification.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub id: Arc<str>,
    pub username: Arc<str>,
}

impl From<&Principal> for Actor {
    fn from(who: &Principal) -> Actor {
        Actor {
            id: who.user_id.clone(),
            username: who.username.clone(),
        }
    }
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

pub(crate) struct Notifier {
    store: Store,
    queue: CommitQueue,
}

impl Notifier {
    pub(crate) fn new(store: Store, queue: CommitQueue) -> Notifier {
        Notifier { store, queue }
    }

    /// Notifies `to` that `from` caused `event` (in `room`, for mentions); payloads inside it
    /// (`D`, `P`) are spliced in as they are stored. Nothing is sent to oneself or when `to`
    /// muted `from` or the room. Returns the notification id once it is stored.
    pub(crate) async fn notify<D: Serialize, P: Serialize>(
        &self,
        to: &str,
        from: &Actor,
        room: Option<&str>,
        event: Event<D, P>,
    ) -> Result<Option<String>, NotifyError> {
        self.notify_keyed(to, from, room, event, None).await
    }

    /// [`Notifier::notify`], at most once per `key` (per recipient and actor): a second call
    /// with the same key stores nothing and answers `None`.
    pub(crate) async fn notify_once<D: Serialize, P: Serialize>(
        &self,
        to: &str,
        from: &Actor,
        room: Option<&str>,
        event: Event<D, P>,
        key: String,
    ) -> Result<Option<String>, NotifyError> {
        self.notify_keyed(to, from, room, event, Some(key)).await
    }

    async fn notify_keyed<D: Serialize, P: Serialize>(
        &self,
        to: &str,
        from: &Actor,
        room: Option<&str>,
        event: Event<D, P>,
        key: Option<String>,
    ) -> Result<Option<String>, NotifyError> {
        // A blocked user notifies the blocker of nothing (mentions included).
        if *from.id == *to
            || self.store.is_muted(to, &from.id, room).await?
            || self.store.has_blocked(to, &from.id).await?
        {
            return Ok(None);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now_ms();
        let kind = event.notification_kind();
        let data = serde_json::value::to_raw_value(&UserEvent {
            id: Some(id.clone()),
            from: Some(UserInfo {
                id: from.id.to_string(),
                username: from.username.to_string(),
            }),
            created_at: Some(created_at),
            event,
        })?;
        let mut message = to_user(to, &from.id, id.clone(), created_at, data);
        message.notification = kind;
        message.idempotency_key = key;
        match self.send(message).await {
            Ok(()) => {}
            // Its id and time differ from the first one's, so the repeat is a "reuse": the
            // notification exists already.
            Err(NotifyError::Publish(publish::Error::Store(SubmitError::KeyReused))) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
        metrics::NOTIFICATIONS.increment(1);
        Ok(Some(id))
    }

    /// Tells all of `user`'s connections that notifications were marked read (`change` is an
    /// [`Event::Read`]).
    pub(crate) async fn read_changed(
        &self,
        user: &str,
        change: Event<(), ()>,
    ) -> Result<(), NotifyError> {
        let id = uuid::Uuid::now_v7().to_string();
        let data = serde_json::value::to_raw_value(&UserEvent {
            id: None,
            from: None,
            created_at: None,
            event: change,
        })?;
        self.send(to_user(user, user, id, now_ms(), data)).await
    }

    async fn send(&self, message: NewMessage) -> Result<(), NotifyError> {
        let stored = self.queue.submit(message).map_err(publish::Error::from)?;
        stored.await.map_err(publish::Error::from)?;
        Ok(())
    }
}

/// A message on `to`'s `user:` channel (not yet a notification: see `notification`).
fn to_user(to: &str, from: &str, id: String, ts_ms: i64, data: Box<RawValue>) -> NewMessage {
    NewMessage {
        channel: ChannelKind::User.name(to).into(),
        id,
        from: from.to_owned(),
        ts_ms,
        data,
        published_at: None,
        notification: None,
        idempotency_key: None,
        effect: None,
    }
}
