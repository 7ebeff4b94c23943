//! The mention outbox: room messages that may mention someone are recorded in the transaction
//! that stores them, so a crash between the commit and the mention notifications delays those
//! notifications instead of losing them.
//!
//! The storing node processes its own rows from memory at once and deletes them when done; each
//! row carries a lease (`lease_until`) for that. A row whose lease ran out belongs to a node that
//! died (or fell behind), and any node's sweep claims it, with a compare-and-set on the lease.
//! Processing a row twice is harmless: a mention notification carries an idempotency key per
//! message and recipient, so the second attempt stores nothing.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Row};
use switchboard_protocol::ChannelKind;

use super::messages::{NewMessage, StoredMessage};
use super::{now_ms, Result, Store};

/// How long the storing node has to process a row before other nodes may take it over.
pub const LEASE: Duration = Duration::from_secs(30);

/// Takeovers before a row is given up (logged and counted): one that fails every time, say a
/// message that makes the scan panic, must not be retried forever.
const MAX_TAKEOVERS: i64 = 5;

/// Whether `message` goes through the outbox: room messages with an `@` somewhere (the scan for
/// real mentions runs later, off the commit path).
pub fn may_mention(channel: &str, data: &str) -> bool {
    ChannelKind::Room.of(channel) && data.contains('@')
}

/// Records the messages just stored that may mention someone (inside their transaction).
pub(super) async fn record(conn: &mut AnyConnection, stored: &[(&NewMessage, u64)]) -> Result<()> {
    let lease_until = now_ms() + LEASE.as_millis() as i64;
    let rows: Vec<&(&NewMessage, u64)> = stored
        .iter()
        .filter(|(m, _)| may_mention(&m.channel, m.data.get()))
        .collect();
    for chunk in rows.chunks(super::messages::INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO mention_outbox (channel, seq, lease_until) VALUES {}",
            super::messages::values(conn, chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (m, offset) in chunk {
            q = q.bind(&*m.channel).bind(*offset as i64).bind(lease_until);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// The message's mentions are handled (notified, or deliberately not): forget its row.
    pub async fn mention_done(&self, channel: &str, offset: u64) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query("DELETE FROM mention_outbox WHERE channel = $1 AND seq = $2")
            .bind(channel)
            .bind(offset as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes over up to `limit` rows whose lease ran out by `now`, leasing them until
    /// `lease_until`, and returns their messages. A row whose message is gone is dropped.
    pub async fn claim_mentions(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let due: Vec<(String, i64, i64)> = sqlx::query(
            "SELECT channel, seq, attempts FROM mention_outbox WHERE lease_until < $1 \
             ORDER BY lease_until LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for (channel, seq, attempts) in due {
            if attempts >= MAX_TAKEOVERS {
                tracing::error!(%channel, offset = seq, attempts, "mentions of a message failed every time; given up");
                crate::metrics::worker_skipped("mentions");
                self.mention_done(&channel, seq as u64).await?;
                continue;
            }
            let won = {
                let _write = self.write_turn().await;
                sqlx::query(
                    "UPDATE mention_outbox SET lease_until = $1, attempts = attempts + 1 \
                     WHERE channel = $2 AND seq = $3 AND lease_until < $4",
                )
                .bind(lease_until)
                .bind(&channel)
                .bind(seq)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1
            };
            if !won {
                continue; // another node's sweep took it
            }
            let name: Arc<str> = channel.as_str().into();
            let page = self.range(&name, seq, seq).await?;
            match page.into_iter().next() {
                Some(message) => claimed.push(message),
                None => self.mention_done(&channel, seq as u64).await?,
            }
        }
        Ok(claimed)
    }
}
