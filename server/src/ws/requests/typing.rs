//! `typing`: a typing indicator for a room the connection is subscribed to, passed to every
//! subscriber on every node ([`crate::chat::typing`]).

use std::sync::Arc;
use std::time::Instant;

use switchboard_protocol::{Ack, ErrorCode, UserInfo};

use crate::bus::ControlEvent;
use crate::chat::typing;
use crate::ws::connection::Handler;

impl Handler {
    pub(in crate::ws) async fn typing(&mut self, id: Option<i64>, raw: &str, typing: bool) {
        let Ok(channel) = raw.parse::<switchboard_protocol::Channel>() else {
            return self.error(id, ErrorCode::BadRequest, "not a channel name".into());
        };
        if channel.room().is_none() {
            return self.error(
                id,
                ErrorCode::BadRequest,
                "typing exists for room: channels only".into(),
            );
        }
        let Some(name) = self.subscriptions.get(raw).cloned() else {
            return self.error(
                id,
                ErrorCode::BadRequest,
                "subscribe to the channel before sending typing to it".into(),
            );
        };
        // The rules for publishing hold for typing too: not in an archived room, not while
        // timed out, and never after access was withdrawn.
        if let Err(e) = self
            .state
            .authz
            .can_publish(self.principal(), &channel)
            .await
        {
            return self.error(id, e.code(), e.to_string());
        }
        if !self.typing.allow(&name, typing, Instant::now()) {
            crate::metrics::refused("typing_rate");
            // Without an id the client asked for no answer: a signal too soon is just dropped.
            if id.is_some() {
                self.error(
                    id,
                    ErrorCode::RateLimited,
                    format!(
                        "one typing signal per channel every {} s",
                        typing::EVERY.as_secs()
                    ),
                );
            }
            return;
        }
        let who = self.principal();
        let user = UserInfo {
            id: who.user_id.to_string(),
            username: who.username.to_string(),
        };
        self.state.hub.broadcast(
            raw,
            &user.id,
            &typing::frame(raw.to_owned(), user.clone(), typing),
        );
        self.state.bus.control(ControlEvent::Typing {
            channel: Arc::<str>::from(raw).to_string(),
            user_id: user.id,
            username: user.username,
            typing,
        });
        if let Some(id) = id {
            self.ack(Ack {
                id,
                ..Default::default()
            });
        }
    }
}
