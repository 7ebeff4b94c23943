//! `publish`: the connection's own rate and the user's budget, the authorisation (remembered per
//! channel until any room's rules change), then the group commit; the ack follows once stored,
//! while the connection goes on reading.

use std::sync::Arc;

use switchboard_protocol::{Ack, ErrorCode};

use crate::publish::{self, IdempotencyKey};
use crate::ws::connection::Handler;

/// Channels whose publish right one connection remembers; past it the memory starts over (each
/// right is one authorisation check away). Bounds a connection that publishes to ever new names.
const MAX_PUBLISH_RIGHTS: usize = 256;

impl Handler {
    pub(in crate::ws) async fn publish(
        &mut self,
        id: i64,
        raw: &str,
        data: serde_json::Value,
        key: Option<String>,
    ) {
        if self.rate.check().is_err() {
            return self.error(
                Some(id),
                ErrorCode::RateLimited,
                "publish rate limit exceeded".into(),
            );
        }
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        let key = match key.as_deref().map(IdempotencyKey::parse).transpose() {
            Ok(key) => key,
            Err(e) => return self.error(Some(id), ErrorCode::BadRequest, e.to_string()),
        };
        if let Err(e) = self
            .state
            .publish_budget
            .spend(publish::budget::Payer::User(&self.conn.principal.user_id))
        {
            return self.error(Some(id), ErrorCode::RateLimited, e.to_string());
        }
        let data = match serde_json::value::to_raw_value(&data) {
            Ok(data) => data,
            Err(e) => return self.error(Some(id), ErrorCode::BadRequest, e.to_string()),
        };
        let name: Arc<str> = raw.into();
        let generation = self.state.authz.generation();
        if self.publish_rights.get(&name) != Some(&generation) {
            if let Err(e) = self
                .state
                .authz
                .can_publish(self.principal(), &channel)
                .await
            {
                self.publish_rights.remove(&name);
                return self.error(Some(id), e.code(), e.to_string());
            }
            if self.publish_rights.len() >= MAX_PUBLISH_RIGHTS {
                self.publish_rights.clear();
            }
            // Stamped with the generation read before the check: a change during it makes the
            // right stale at once.
            self.publish_rights.insert(name.clone(), generation);
        }
        let effect = match crate::chat::lifecycle::inspect(&self.state, &channel, &data).await {
            Ok(effect) => effect,
            Err(e) => return self.error(Some(id), e.code(), e.to_string()),
        };
        // Queue to storage now, in arrival order, and wait for the ack alongside further reads:
        // a connection can have many publishes in flight, and their order on a channel holds.
        let state = self.state.clone();
        let principal = self.principal().clone();
        let submitted =
            publish::submit_with(&state, &principal.user_id, &channel, data, key, effect);
        self.pending
            .push(Box::pin(async move { (id, submitted.await) }));
    }

    pub(in crate::ws) fn answer_publish(&self, id: i64, result: Result<u64, publish::Error>) {
        match result {
            Ok(offset) => self.ack(Ack {
                id,
                offset: Some(offset),
                ..Default::default()
            }),
            Err(e) => self.error(Some(id), e.code(), e.to_string()),
        }
    }
}
