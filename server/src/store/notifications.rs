//! Notification read state. A notification's content is its message on `user:<id>` (written with
//! its `notifications` row by [`super::messages`]); this module lists them with their read flag
//! and marks them read.

use serde_json::value::RawValue;
use sqlx::Row;
use switchboard_protocol::ChannelKind;

use super::messages::placeholders_from;
use super::{now_ms, Result, Store};

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub offset: u64,
    pub read: bool,
    /// The message data: `{"kind": ..., ...}`.
    pub data: Box<RawValue>,
}

/// Ids marked read in one request, at most.
pub const MAX_MARK: usize = 1000;

impl Store {
    /// `user`'s notifications, newest first, with offsets below `before`: up to `limit`, and
    /// at most about `max_bytes` of stored data (always at least one; a reply notification
    /// carries a whole post). The bool: older ones may remain (the page is full or was cut).
    pub async fn notifications(
        &self,
        user: &str,
        before: Option<u64>,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Vec<Notification>, bool)> {
        let channel = ChannelKind::User.name(user);
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let sizes: Vec<(i64, i64)> = sqlx::query(
            "SELECT n.seq, CAST(OCTET_LENGTH(m.data) AS BIGINT) FROM notifications n \
             JOIN messages m ON m.channel = $1 AND m.seq = n.seq \
             WHERE n.user_id = $2 AND n.seq < $3 ORDER BY n.seq DESC LIMIT $4",
        )
        .bind(&channel)
        .bind(user)
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        let kept = super::messages::fitting(&sizes, max_bytes);
        let more = kept < sizes.len() || sizes.len() == limit as usize;
        if kept == 0 {
            return Ok((Vec::new(), more));
        }
        let (newest, oldest) = (sizes[0].0, sizes[kept - 1].0);
        let rows = sqlx::query(
            "SELECT n.id, n.seq, n.read_at, m.data FROM notifications n \
             JOIN messages m ON m.channel = $1 AND m.seq = n.seq \
             WHERE n.user_id = $2 AND n.seq >= $3 AND n.seq <= $4 ORDER BY n.seq DESC",
        )
        .bind(&channel)
        .bind(user)
        .bind(oldest)
        .bind(newest)
        .fetch_all(&self.pool)
        .await?;
        let found = rows
            .iter()
            .map(|r| {
                let data: String = r.get(3);
                Ok(Notification {
                    id: r.get(0),
                    offset: r.get::<i64, _>(1) as u64,
                    read: r.get::<Option<i64>, _>(2).is_some(),
                    data: RawValue::from_string(data)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((found, more))
    }

    pub async fn unread_count(&self, user: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Marks these of `user`'s notifications read; returns the ids that were unread (unknown
    /// ids and other users' ids are ignored).
    pub async fn mark_read(&self, user: &str, ids: &[String]) -> Result<Vec<String>> {
        let _write = self.write_turn().await;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders_from(3, 1, ids.len());
        let sql = format!(
            "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL \
             AND id IN {list} RETURNING id"
        );
        let mut q = sqlx::query(&sql).bind(now_ms()).bind(user);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Marks every notification of `user` up to offset `upto` read; returns how many were unread.
    pub async fn mark_all_read(&self, user: &str, upto: u64) -> Result<u64> {
        let _write = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL \
             AND seq <= $3",
        )
        .bind(now_ms())
        .bind(user)
        .bind(i64::try_from(upto).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
