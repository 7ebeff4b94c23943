//! `history`: a page of a channel's stored messages, before an offset.

use switchboard_protocol::{Channel, ErrorCode};

use crate::ws::conn::wire;
use crate::ws::connection::Handler;

impl Handler {
    pub(in crate::ws) async fn history(
        &mut self,
        id: i64,
        raw: &str,
        before: Option<u64>,
        limit: Option<u32>,
    ) {
        let Some(channel) = self.channel(id, raw) else {
            return;
        };
        if let Err(e) = self.state.authz.can_read(self.principal(), &channel).await {
            return self.error(Some(id), e.code(), e.to_string());
        }
        let limit = limit
            .unwrap_or(crate::http::DEFAULT_PAGE)
            .clamp(1, self.state.config.history_max);
        let store = &self.state.store;
        let mut read = store
            .messages_before(&raw.into(), before, limit, self.state.config.page_bytes)
            .await;
        if let (Ok(page), Channel::Room(_)) = (&mut read, &channel) {
            if let Err(e) = store
                .reader_view(raw, &self.principal().user_id, &mut page.messages)
                .await
            {
                read = Err(e);
            }
        }
        match read {
            Ok(page) => match wire::history(self.conn.encoding, id, &page.messages) {
                Ok(frame) => {
                    let _ = self.conn.push(frame);
                }
                Err(e) => {
                    tracing::error!(error = ?e, "history page could not be encoded");
                    self.error(
                        Some(id),
                        ErrorCode::Unavailable,
                        "history is unavailable".into(),
                    );
                }
            },
            Err(e) => {
                tracing::warn!(error = ?e, "history read failed");
                self.error(
                    Some(id),
                    ErrorCode::Unavailable,
                    "storage is unavailable".into(),
                );
            }
        }
    }
}
