//! Chat rooms. A room that was never created is public (anyone logged in may use it); creating
//! one fixes whether it is private and who its members are.

use sqlx::Row;

use switchboard_protocol::UserInfo;

use super::{now_ms, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub name: String,
    pub private: bool,
    pub created_by: String,
    /// The display title the owner set (the name is the channel, and never changes).
    pub title: Option<String>,
    pub archived: bool,
    pub deleted: bool,
}

/// The columns [`room_from_row`] reads.
const ROOM_COLUMNS: &str = "name, private, created_by, title, archived, deleted";

/// Members inserted per statement.
const MEMBER_CHUNK: usize = 500;

impl Store {
    /// Creates a room with its members (the creator included) in one transaction;
    /// `StoreError::Conflict` when a room of that name, in any case, exists.
    pub async fn create_room(
        &self,
        name: &str,
        private: bool,
        created_by: &str,
        member_ids: &[String],
    ) -> Result<()> {
        let _write = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO rooms (name, private, created_by, created_at, acl_changed_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(name)
        .bind(private as i64)
        .bind(created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // One statement for the whole list: inside SQLite's single write turn, a row-by-row
        // insert of a long list would hold every publish back.
        for chunk in member_ids.chunks(MEMBER_CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, ${}, $2)", 2 * i + 3, 2 * i + 4))
                .collect();
            let sql = format!(
                "INSERT INTO room_members (room, user_id, role, joined_at) VALUES {} \
                 ON CONFLICT DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(name).bind(now);
            for member in chunk {
                let role = if member == created_by {
                    "owner"
                } else {
                    "member"
                };
                query = query.bind(member).bind(role);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The room whose name equals `name` ignoring case (at most one: names are unique so).
    pub async fn room_ignoring_case(&self, name: &str) -> Result<Option<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE lower(name) = lower($1)");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(room_from_row))
    }

    /// Whether a channel named `channel` in any case has stored messages.
    pub async fn channel_has_messages_ignoring_case(&self, channel: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM channels WHERE lower(name) = lower($1) AND last_offset > 0 LIMIT 1",
        )
        .bind(channel)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Rooms whose access rules changed at or after `since_ms`, with when.
    pub async fn rooms_changed_since(&self, since_ms: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT name, acl_changed_at FROM rooms WHERE acl_changed_at >= $1")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn is_member(&self, room: &str, user_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM room_members WHERE room = $1 AND user_id = $2")
            .bind(room)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn room_members(&self, room: &str) -> Result<Vec<UserInfo>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username FROM room_members m JOIN users u ON u.id = m.user_id \
             WHERE m.room = $1 ORDER BY u.username",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| UserInfo {
                id: r.get(0),
                username: r.get(1),
            })
            .collect())
    }

    /// Created rooms this user may see (every public room and the private rooms they belong
    /// to), by name, up to `limit` of those after `after`.
    pub async fn visible_rooms(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Room>> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE name > $2 AND deleted = 0 AND (private = 0 \
             OR EXISTS (SELECT 1 FROM room_members m WHERE m.room = r.name AND m.user_id = $1)) \
             AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room = r.name AND b.user_id = $1) \
             ORDER BY name LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(room_from_row).collect())
    }
}

fn room_from_row(r: sqlx::any::AnyRow) -> Room {
    Room {
        name: r.get(0),
        private: r.get::<i64, _>(1) != 0,
        created_by: r.get(2),
        title: r.get(3),
        archived: r.get::<i64, _>(4) != 0,
        deleted: r.get::<i64, _>(5) != 0,
    }
}
