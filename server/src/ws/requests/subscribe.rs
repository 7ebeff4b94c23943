//! `subscribe` (with `since` replay) and `unsubscribe`, and what leaving a channel takes with it
//! (the hub's subscription, the user's presence in a room, a publish right).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_protocol::{Ack, Channel, ChannelKind, ErrorCode, ErrorFrame, ServerFrame};

use crate::auth::Principal;
use crate::authz::Authz;
use crate::hub::{Admission, SubscribeError};
use crate::ws::connection::Handler;

/// The hub's view of this connection's read authorisation while a subscription is set up (see
/// [`Admission`]): unchanged while no room's rules moved since it was checked.
struct Gate<'a> {
    authz: &'a Authz,
    who: &'a Principal,
    channel: &'a Channel,
    generation: AtomicU64,
}

impl Admission for Gate<'_> {
    fn unchanged(&self) -> bool {
        self.authz.generation() == self.generation.load(Ordering::Acquire)
    }

    fn recheck(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let generation = self.authz.generation();
            // A storage failure refuses: the subscribe is answered `forbidden` and may be retried.
            let allowed = self.authz.can_read(self.who, self.channel).await.is_ok();
            if allowed {
                self.generation.store(generation, Ordering::Release);
            }
            allowed
        })
    }
}

impl Handler {
    pub(in crate::ws) async fn subscribe(&mut self, id: i64, raw: &str, since: Option<u64>) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        let name: Arc<str> = raw.into();
        let max = self.state.config.max_subscriptions;
        if !self.subscriptions.contains(&name) && self.subscriptions.len() >= max {
            return self.error(
                Some(id),
                ErrorCode::TooLarge,
                format!("subscription limit ({max}) reached"),
            );
        }
        let generation = self.state.authz.generation();
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let conn = self.conn.clone();
        let gate = Gate {
            authz: &self.state.authz,
            who: &self.conn.principal,
            channel: &channel,
            generation: AtomicU64::new(generation),
        };
        let registered = |offset| {
            let _ = conn.send(&ServerFrame::Ack(Ack {
                id,
                offset: Some(offset),
                ..Default::default()
            }));
        };
        let subscribed = self
            .state
            .hub
            .subscribe(&name, &conn, since, &gate, registered)
            .await;
        match subscribed {
            Ok(()) => {
                let first = self.subscriptions.insert(name.clone());
                if first && channel.room().is_some() {
                    self.state.presence.enter(&name, &self.conn.principal).await;
                }
            }
            Err(SubscribeError::Closed | SubscribeError::Evicted) => {}
            Err(SubscribeError::Forbidden) => {
                self.forget(&name).await;
                let mut error = ErrorFrame::new(
                    Some(id),
                    ErrorCode::Forbidden,
                    "access to this channel was withdrawn",
                );
                error.channel = Some(name.to_string());
                let _ = self.conn.send(&ServerFrame::Error(error));
            }
            Err(e) => {
                self.state.hub.unsubscribe(&name, self.conn.conn_id);
                tracing::warn!(error = ?e, channel = raw, "subscribe failed");
                self.error(Some(id), ErrorCode::Unavailable, e.to_string());
            }
        }
    }

    pub(in crate::ws) async fn unsubscribe(&mut self, id: i64, raw: &str) {
        let name: Arc<str> = raw.into();
        if self.subscriptions.remove(&name) {
            self.leave(&name).await;
        }
        self.ack(Ack {
            id,
            ..Default::default()
        });
    }

    /// The hub ended the subscription to `name` (its rules no longer admit this user; the client
    /// was told): forget it here too, with the user's presence there and any publish right.
    pub(in crate::ws) async fn forget(&mut self, name: &Arc<str>) {
        self.publish_rights.remove(name);
        self.typing.forget(name);
        if self.subscriptions.remove(name) && ChannelKind::Room.of(name) {
            self.state.presence.leave(name, &self.conn.principal).await;
        }
    }

    /// Takes the connection out of a channel: the hub's subscription and, for rooms, presence.
    pub(in crate::ws) async fn leave(&mut self, name: &Arc<str>) {
        self.typing.forget(name);
        self.state.hub.unsubscribe(name, self.conn.conn_id);
        if ChannelKind::Room.of(name) {
            self.state.presence.leave(name, &self.conn.principal).await;
        }
    }
}
