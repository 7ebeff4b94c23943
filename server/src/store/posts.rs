//! Posts, replies and reactions. Post ids are UUIDv7, so text order is time order and an id is
//! also the pagination cursor.

use serde_json::value::RawValue;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Result, Store};

#[derive(Debug, Clone)]
pub struct Post {
    pub id: String,
    pub author: String,
    pub author_name: String,
    pub reply_to: Option<String>,
    pub data: Box<RawValue>,
    pub ts: i64,
}

const POST_COLUMNS: &str = "id, author, author_name, reply_to, data, ts";

/// Who starts a new post's fan-out, and until when (see `feed::fanout`).
pub struct FanoutLease<'a> {
    pub owner: &'a str,
    pub until: i64,
}

impl Store {
    /// Stores a post. A top-level post is stored with its fan-out pending and leased to the
    /// creating node (`lease`); a reply (`reply_to`) is not fanned out.
    pub async fn create_post(&self, post: &Post, lease: Option<FanoutLease<'_>>) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query(
            "INSERT INTO posts (id, author, author_name, reply_to, data, ts, fanout_done, \
             fanout_owner, fanout_lease) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&post.id)
        .bind(&post.author)
        .bind(&post.author_name)
        .bind(post.reply_to.as_deref())
        .bind(post.data.get())
        .bind(post.ts)
        .bind(lease.is_none() as i64)
        .bind(lease.as_ref().map(|l| l.owner))
        .bind(lease.as_ref().map_or(0, |l| l.until))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn post(&self, id: &str) -> Result<Option<Post>> {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_post).transpose()
    }

    /// `author`'s top-level posts, newest first, before post id `before`.
    pub async fn posts_by(
        &self,
        author: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Post>> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE author = $1 AND reply_to IS NULL \
             AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        self.post_page(&sql, author, before, limit).await
    }

    /// Replies to `post`, oldest first, after reply id `after` (a conversation reads forwards).
    pub async fn replies(&self, post: &str, after: Option<&str>, limit: u32) -> Result<Vec<Post>> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM posts WHERE reply_to = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(post)
            .bind(after.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_post).collect()
    }

    async fn post_page(
        &self,
        sql: &str,
        key: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Post>> {
        // No cursor ('') means "from the newest". (Not a sentinel like "~": whether it sorts
        // above every id depends on the database's collation.)
        let rows = sqlx::query(sql)
            .bind(key)
            .bind(before.unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_post).collect()
    }

    pub async fn reply_count(&self, post: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM posts WHERE reply_to = $1")
            .bind(post)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Adds `user`'s `emoji` reaction to `post` unless they already hold `max` distinct ones
    /// there (checked in the same statement, so concurrent requests cannot pass it together).
    pub async fn react(&self, post: &str, user: &str, emoji: &str, max: usize) -> Result<Reacted> {
        let _write = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        if self.backend() == super::Backend::Postgres {
            // The count below cannot see other transactions' uncommitted rows: concurrent
            // reactions of one user to one post take turns on a lock of their own (SQLite's
            // writes already take turns).
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
                .bind(post)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO reactions (post_id, user_id, emoji, created_at) \
             SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM reactions \
             WHERE post_id = $1 AND user_id = $2) < $5 \
             ON CONFLICT DO NOTHING",
        )
        .bind(post)
        .bind(user)
        .bind(emoji)
        .bind(now_ms())
        .bind(max as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 1 {
            return Ok(Reacted::New);
        }
        let exists = sqlx::query(
            "SELECT 1 FROM reactions WHERE post_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .bind(post)
        .bind(user)
        .bind(emoji)
        .fetch_optional(&self.pool)
        .await?;
        Ok(if exists.is_some() {
            Reacted::Already
        } else {
            Reacted::Capped
        })
    }

    /// Removes the reaction; false when there was none.
    pub async fn unreact(&self, post: &str, user: &str, emoji: &str) -> Result<bool> {
        let _write = self.write_turn().await;
        let done =
            sqlx::query("DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND emoji = $3")
                .bind(post)
                .bind(user)
                .bind(emoji)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The `top` most used emoji of a post with their counts, most used first.
    pub async fn reaction_counts(&self, post: &str, top: u32) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT emoji, COUNT(*) AS n FROM reactions WHERE post_id = $1 \
             GROUP BY emoji ORDER BY n DESC, emoji LIMIT $2",
        )
        .bind(post)
        .bind(top as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// What adding a reaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    New,
    Already,
    /// The user already holds the most distinct reactions allowed on the post.
    Capped,
}

pub(super) fn decode_post(r: &AnyRow) -> Result<Post> {
    let data: String = r.get(4);
    Ok(Post {
        id: r.get(0),
        author: r.get(1),
        author_name: r.get(2),
        reply_to: r.get(3),
        data: RawValue::from_string(data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        ts: r.get(5),
    })
}
