//! `read`: moves the user's read marker in a room ([`crate::chat::reads`]).

use switchboard_protocol::{Ack, ErrorCode};

use crate::chat::reads;
use crate::ws::connection::Handler;

impl Handler {
    pub(in crate::ws) async fn read(&mut self, id: i64, raw: &str, offset: u64) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        let Some(room) = channel.room() else {
            return self.error(
                Some(id),
                ErrorCode::BadRequest,
                "read markers exist for room: channels only".into(),
            );
        };
        let state = self.state.clone();
        match reads::mark(&state, self.principal(), room, offset).await {
            Ok(m) => self.ack(Ack {
                id,
                offset: Some(m.offset),
                unread: Some(m.unread),
                ..Default::default()
            }),
            Err(e) => self.error(Some(id), e.code(), e.to_string()),
        }
    }
}
