//! Blocks and direct messages: a user blocks another (no direct messages between them, no
//! notifications from the blocked one); a direct message is the one private room of a pair.

use sha2::{Digest, Sha256};
use sqlx::Row;
use switchboard_protocol::UserInfo;

use super::{now_ms, Result, Store, StoreError};

/// The room name of the direct messages between `a` and `b` (either order): `dm.` and 40 hex
/// digits of a hash of the sorted pair, within the 64 characters of a room name.
pub fn dm_room(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::digest(format!("{lo}|{hi}").as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("dm.{hex}")
}

impl Store {
    /// `user` blocks `blocked`; false when they already had.
    pub async fn block(&self, user: &str, blocked: &str) -> Result<bool> {
        let _write = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO blocks (user_id, blocked, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(blocked)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.touch_dm(user, blocked).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lifts `user`'s block of `blocked`; false when there was none.
    pub async fn unblock(&self, user: &str, blocked: &str) -> Result<bool> {
        let _write = self.write_turn().await;
        let done = sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked = $2")
            .bind(user)
            .bind(blocked)
            .execute(&self.pool)
            .await?;
        self.touch_dm(user, blocked).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the pair's direct-message room (if any) as changed, for every node's access poll.
    async fn touch_dm(&self, a: &str, b: &str) -> Result<()> {
        sqlx::query("UPDATE rooms SET acl_changed_at = $2 WHERE name = $1")
            .bind(dm_room(a, b))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `user` blocked `other`.
    pub async fn has_blocked(&self, user: &str, other: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM blocks WHERE user_id = $1 AND blocked = $2")
            .bind(user)
            .bind(other)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Whether either of `a` and `b` blocked the other.
    pub async fn blocked_between(&self, a: &str, b: &str) -> Result<bool> {
        Ok(self.has_blocked(a, b).await? || self.has_blocked(b, a).await?)
    }

    /// The users `user` blocked, by username, up to `limit` after `after`.
    pub async fn blocked_by(
        &self,
        user: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserInfo>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username FROM blocks b JOIN users u ON u.id = b.blocked \
             WHERE b.user_id = $1 AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(user)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
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

    /// Creates the direct-message room of `a` and `b` unless it exists; returns its name and
    /// whether it was created now.
    pub async fn open_dm(&self, a: &str, b: &str) -> Result<(String, bool)> {
        let name = dm_room(a, b);
        let _write = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let created = sqlx::query(
            "INSERT INTO rooms (name, private, created_by, created_at, acl_changed_at, dm) \
             VALUES ($1, 1, $2, $3, $3, 1) ON CONFLICT DO NOTHING",
        )
        .bind(&name)
        .bind(a)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            sqlx::query(
                "INSERT INTO room_members (room, user_id, role, joined_at) \
                 VALUES ($1, $2, 'member', $4), ($1, $3, 'member', $4) ON CONFLICT DO NOTHING",
            )
            .bind(&name)
            .bind(a)
            .bind(b)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok((name, created))
    }

    /// The two users of a direct-message room, if `room` is one.
    pub async fn dm_pair(&self, room: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT dm FROM rooms WHERE name = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        if row.is_none_or(|r| r.get::<i64, _>(0) == 0) {
            return Ok(None);
        }
        let ids: Vec<String> =
            sqlx::query("SELECT user_id FROM room_members WHERE room = $1 ORDER BY user_id")
                .bind(room)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.get(0))
                .collect();
        match ids.as_slice() {
            [a, b] => Ok(Some((a.clone(), b.clone()))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_has_one_room_name_whatever_the_order() {
        let a = "0194a1b2-0000-7000-8000-000000000001";
        let b = "0194a1b2-0000-7000-8000-000000000002";
        assert_eq!(dm_room(a, b), dm_room(b, a));
        assert_ne!(dm_room(a, b), dm_room(a, a));
        let name = dm_room(a, b);
        assert!(switchboard_protocol::channel::is_valid_name(
            &name,
            1,
            switchboard_protocol::channel::MAX_ROOM_NAME
        ));
    }
}
