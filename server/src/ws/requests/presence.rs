//! `presence`: who is in a room, a page at a time.

use switchboard_protocol::{Ack, ErrorCode};

use crate::ws::connection::Handler;

/// Presence page size when the request gives no `limit`, and the most one request may ask for.
const PRESENCE_PAGE: u32 = 100;

const PRESENCE_PAGE_MAX: u32 = 1000;

impl Handler {
    pub(in crate::ws) async fn presence(
        &mut self,
        id: i64,
        raw: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        if channel.room().is_none() {
            return self.error(
                Some(id),
                ErrorCode::BadRequest,
                "presence exists for room: channels only".into(),
            );
        }
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let limit = limit.unwrap_or(PRESENCE_PAGE).clamp(1, PRESENCE_PAGE_MAX);
        match self.state.presence.page(raw, cursor, limit).await {
            Ok(page) => self.ack(Ack {
                id,
                presence: Some(page),
                ..Default::default()
            }),
            Err(e) => {
                tracing::warn!(error = ?e, "presence read failed");
                self.error(
                    Some(id),
                    ErrorCode::Unavailable,
                    "presence is unavailable".into(),
                );
            }
        }
    }
}
