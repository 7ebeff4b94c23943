//! Login sessions: one row per login, holding the hash of its current refresh token.

use sqlx::Row;

use super::{now_ms, Result, Store};

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub refresh_hash: String,
    pub expires_at_ms: i64,
    pub revoked: bool,
    /// Hashes of this session's earlier refresh tokens, newest first (at most
    /// [`REMEMBERED_TOKENS`]): presenting one of them is reuse.
    pub previous_hashes: Vec<String>,
    /// When the current refresh token replaced the previous one (0: never rotated).
    pub rotated_at_ms: i64,
}

/// Earlier refresh tokens remembered per session for reuse detection.
pub(super) const REMEMBERED_TOKENS: usize = 8;

impl Store {
    pub async fn create_session(
        &self,
        id: &str,
        user_id: &str,
        refresh_hash: &str,
        expires_at_ms: i64,
    ) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user_id)
        .bind(refresh_hash)
        .bind(now_ms())
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT id, user_id, refresh_hash, expires_at, revoked_at, previous_hashes, rotated_at \
             FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Session {
            id: r.get(0),
            user_id: r.get(1),
            refresh_hash: r.get(2),
            expires_at_ms: r.get(3),
            revoked: r.get::<Option<i64>, _>(4).is_some(),
            previous_hashes: r
                .get::<String, _>(5)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            rotated_at_ms: r.get(6),
        }))
    }

    /// Replaces the refresh hash only if it still is the session's current one and the session
    /// is live, remembering it among the earlier ones: two concurrent refreshes with the same
    /// token cannot both win. Returns whether it rotated.
    pub async fn rotate_refresh(
        &self,
        session: &Session,
        new_hash: &str,
        expires_at_ms: i64,
    ) -> Result<bool> {
        let previous: Vec<&str> = std::iter::once(session.refresh_hash.as_str())
            .chain(session.previous_hashes.iter().map(String::as_str))
            .take(REMEMBERED_TOKENS)
            .collect();
        let _write = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE sessions SET refresh_hash = $1, expires_at = $2, previous_hashes = $3, \
             rotated_at = $4 WHERE id = $5 AND refresh_hash = $6 AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(expires_at_ms)
        .bind(previous.join(" "))
        .bind(now_ms())
        .bind(&session.id)
        .bind(&session.refresh_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn revoke_session(&self, id: &str) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sessions revoked since `since_ms`: loaded at start-up so access tokens of sessions revoked
    /// before a restart stay refused until they expire.
    pub async fn revoked_since(&self, since_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM sessions WHERE revoked_at >= $1")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}
