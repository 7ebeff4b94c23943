//! Mutes: a user silences notifications from a room or from another user.

use sqlx::Row;

use super::{now_ms, Result, Store};

/// What is muted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuteTarget {
    Room(String),
    User(String),
}

impl MuteTarget {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            MuteTarget::Room(name) => ("room", name),
            MuteTarget::User(id) => ("user", id),
        }
    }
}

impl Store {
    /// Mutes `target` for `user`; false when it already was.
    pub async fn mute(&self, user: &str, target: &MuteTarget) -> Result<bool> {
        let _write = self.write_turn().await;
        let (kind, value) = target.parts();
        let done = sqlx::query(
            "INSERT INTO mutes (user_id, kind, target, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(kind)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Unmutes; false when it was not muted.
    pub async fn unmute(&self, user: &str, target: &MuteTarget) -> Result<bool> {
        let _write = self.write_turn().await;
        let (kind, value) = target.parts();
        let done =
            sqlx::query("DELETE FROM mutes WHERE user_id = $1 AND kind = $2 AND target = $3")
                .bind(user)
                .bind(kind)
                .bind(value)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Everything `user` muted, oldest first, with when.
    pub async fn mutes(&self, user: &str) -> Result<Vec<(MuteTarget, i64)>> {
        let rows = sqlx::query(
            "SELECT kind, target, created_at FROM mutes WHERE user_id = $1 ORDER BY created_at, target",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let target: String = r.get(1);
                let target = match r.get::<String, _>(0).as_str() {
                    "room" => MuteTarget::Room(target),
                    _ => MuteTarget::User(target),
                };
                (target, r.get(2))
            })
            .collect())
    }

    /// Has `user` muted the actor `from` or the room `room`?
    pub async fn is_muted(&self, user: &str, from: &str, room: Option<&str>) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM mutes WHERE user_id = $1 AND \
             ((kind = 'user' AND target = $2) OR (kind = 'room' AND target = $3)) LIMIT 1",
        )
        .bind(user)
        .bind(from)
        .bind(room.unwrap_or(""))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
