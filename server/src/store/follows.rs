//! The follow graph: who follows whom, paginated newest first by the follow's serial id.

use sqlx::Row;

use super::{now_ms, Result, Store};

/// One side of a follow edge, as listed.
#[derive(Debug, Clone)]
pub struct FollowEdge {
    /// The follow's serial id: the pagination cursor.
    pub id: i64,
    pub user_id: String,
    pub username: String,
    pub created_at: i64,
}

/// A follower as the fan-out sees it.
#[derive(Debug, Clone)]
pub struct Follower {
    pub follow_id: i64,
    pub user_id: String,
}

/// Which list to read.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Users who follow the given user.
    Followers,
    /// Users the given user follows.
    Following,
}

/// One end of a follow edge: a user id, and the username the edge keeps beside it (so that
/// follower lists need no join).
#[derive(Clone, Copy)]
pub struct Party<'a> {
    pub id: &'a str,
    pub username: &'a str,
}

impl Store {
    /// Records that `follower` follows `followee`; false when it already did.
    pub async fn follow(&self, follower: Party<'_>, followee: Party<'_>) -> Result<bool> {
        let _write = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO follows (follower, follower_name, followee, followee_name, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (follower, followee) DO NOTHING",
        )
        .bind(follower.id)
        .bind(follower.username)
        .bind(followee.id)
        .bind(followee.username)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes the edge; false when there was none.
    pub async fn unfollow(&self, follower: &str, followee: &str) -> Result<bool> {
        let _write = self.write_turn().await;
        let done = sqlx::query("DELETE FROM follows WHERE follower = $1 AND followee = $2")
            .bind(follower)
            .bind(followee)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A page of `user`'s followers or followees, newest follow first, before cursor `before`.
    pub async fn follow_page(
        &self,
        user: &str,
        direction: Direction,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<FollowEdge>> {
        let sql = match direction {
            Direction::Followers => {
                "SELECT id, follower, follower_name, created_at FROM follows \
                 WHERE followee = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            }
            Direction::Following => {
                "SELECT id, followee, followee_name, created_at FROM follows \
                 WHERE follower = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            }
        };
        let rows = sqlx::query(sql)
            .bind(user)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| FollowEdge {
                id: r.get(0),
                user_id: r.get(1),
                username: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }

    /// How many follow `user`, and how many `user` follows.
    pub async fn follow_counts(&self, user: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM follows WHERE followee = $1), \
                    (SELECT COUNT(*) FROM follows WHERE follower = $1)",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1)))
    }
}

/// The next `limit` followers of `author` after follow id `after`, ascending (the fan-out walk).
pub(super) async fn followers_after(
    conn: &mut sqlx::AnyConnection,
    author: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<Follower>> {
    let rows = sqlx::query(
        "SELECT id, follower FROM follows WHERE followee = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(author)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Follower {
            follow_id: r.get(0),
            user_id: r.get(1),
        })
        .collect())
}
