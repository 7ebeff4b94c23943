//! Read state: per user per room, the offset of the last message they have read; and unread
//! counts from it. A marker only moves forward and never past the channel's last offset.

use sqlx::Row;

use super::{now_ms, Result, Store};

impl Store {
    /// Moves `user`'s marker in `room` (channel `channel`) to `offset` if that is further, capped
    /// at the channel's last offset; returns the marker after the change.
    pub async fn move_read_marker(
        &self,
        room: &str,
        channel: &str,
        user: &str,
        offset: u64,
    ) -> Result<u64> {
        let _write = self.write_turn().await;
        let last: i64 = sqlx::query("SELECT last_offset FROM channels WHERE name = $1")
            .bind(channel)
            .fetch_optional(&self.pool)
            .await?
            .map_or(0, |r| r.get(0));
        let offset = (offset.min(i64::MAX as u64) as i64).min(last);
        sqlx::query(
            "INSERT INTO room_reads (room, user_id, last_read, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room, user_id) DO UPDATE SET \
             last_read = CASE WHEN excluded.last_read > room_reads.last_read \
                              THEN excluded.last_read ELSE room_reads.last_read END, \
             at = excluded.at",
        )
        .bind(room)
        .bind(user)
        .bind(offset)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.last_read(room, user).await
    }

    /// `user`'s marker in `room` (0: nothing read).
    pub async fn last_read(&self, room: &str, user: &str) -> Result<u64> {
        let row = sqlx::query("SELECT last_read FROM room_reads WHERE room = $1 AND user_id = $2")
            .bind(room)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.get::<i64, _>(0).max(0) as u64))
    }

    /// Messages of `channel` after offset `after` that `user` has not read: chat messages of
    /// others, not deleted (system messages, edits, deletes and reactions left out), counted up
    /// to `cap` (a count that reaches it means "cap or more": the count is one bounded index
    /// range scan).
    pub async fn unread(&self, channel: &str, user: &str, after: u64, cap: u32) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE channel = $1 AND seq > $2 \
             AND sender <> $3 AND sender <> 'system' AND kind IS NULL AND deleted_at IS NULL \
             LIMIT $4) AS unread",
        )
        .bind(channel)
        .bind(after as i64)
        .bind(user)
        .bind(cap as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// The rooms `user` is a member of with their markers, by room name, up to `limit` after
    /// `after` (for unread totals).
    pub async fn member_rooms_read(
        &self,
        user: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT m.room, COALESCE(r.last_read, 0) FROM room_members m \
             LEFT JOIN room_reads r ON r.room = m.room AND r.user_id = m.user_id \
             WHERE m.user_id = $1 AND m.room > $2 ORDER BY m.room LIMIT $3",
        )
        .bind(user)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1).max(0) as u64))
            .collect())
    }

    /// Of `rooms`, those `user` is a member of, with their markers.
    pub async fn reads_in(&self, user: &str, rooms: &[String]) -> Result<Vec<(String, u64)>> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..rooms.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT m.room, COALESCE(r.last_read, 0) FROM room_members m \
             LEFT JOIN room_reads r ON r.room = m.room AND r.user_id = m.user_id \
             WHERE m.user_id = $1 AND m.room IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(user);
        for room in rooms {
            q = q.bind(room);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get::<i64, _>(1).max(0) as u64))
            .collect())
    }

    /// Members of `room` with their markers, by username, up to `limit` after `after`.
    pub async fn read_state_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(switchboard_protocol::UserInfo, u64)>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, COALESCE(r.last_read, 0) FROM room_members m \
             JOIN users u ON u.id = m.user_id \
             LEFT JOIN room_reads r ON r.room = m.room AND r.user_id = m.user_id \
             WHERE m.room = $1 AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(room)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    switchboard_protocol::UserInfo {
                        id: r.get(0),
                        username: r.get(1),
                    },
                    r.get::<i64, _>(2).max(0) as u64,
                )
            })
            .collect())
    }

    /// How many members `room` has.
    pub async fn member_count(&self, room: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM room_members WHERE room = $1")
            .bind(room)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }
}
