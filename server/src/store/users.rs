//! Accounts.

use sqlx::Row;

use switchboard_protocol::UserInfo;

use super::{now_ms, Result, Store};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
}

/// Names looked up per query (far below both backends' bind-parameter limits).
const LOOKUP_CHUNK: usize = 500;

impl Store {
    /// Creates a user; `StoreError::Conflict` when the username is taken.
    pub async fn create_user(&self, id: &str, username: &str, password_hash: &str) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user named `username`, ignoring case (names are unique so); the stored name keeps
    /// its display case.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.user_where("lower(username) = lower($1)", username)
            .await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.user_where("id = $1", id).await
    }

    /// The users of the given usernames that exist (unknown names are left out).
    pub async fn users_by_usernames(&self, usernames: &[String]) -> Result<Vec<UserInfo>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        // One query for all of them (a room's member list, a message's mentions), matched
        // ignoring case through the lower(username) index.
        let mut found = Vec::with_capacity(usernames.len());
        for chunk in usernames.chunks(LOOKUP_CHUNK) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("lower(${i})")).collect();
            let sql = format!(
                "SELECT id, username FROM users WHERE lower(username) IN ({})",
                list.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for name in chunk {
                query = query.bind(name);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(UserInfo {
                    id: row.get(0),
                    username: row.get(1),
                });
            }
        }
        Ok(found)
    }

    async fn user_where(&self, condition: &'static str, value: &str) -> Result<Option<User>> {
        let sql = format!("SELECT id, username, password_hash FROM users WHERE {condition}");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| User {
            id: r.get(0),
            username: r.get(1),
            password_hash: r.get(2),
        }))
    }
}
