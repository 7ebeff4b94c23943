//! The storage side of feed fan-out: claiming a post's pending fan-out, and one step of it —
//! a chunk of followers' feed messages committed together with the cursor that says how far the
//! fan-out got. Because both land in one transaction, a fan-out resumed by any node after a crash
//! neither skips nor repeats a follower.

use sqlx::Row;

use super::follows::followers_after;
use super::messages::{append_in, NewMessage};
use super::posts::{decode_post, Post};
use super::{Result, Store, StoredMessage};

/// A post whose fan-out this node holds the lease for.
#[derive(Debug, Clone)]
pub struct Fanout {
    pub post: Post,
    /// The last follow id whose feed already has the post (0: nobody yet, not even the author).
    pub after: i64,
}

/// What one step did.
pub enum Step {
    /// Another node took the fan-out over (our lease ran out); drop it.
    Lost,
    /// Stored these feed messages; `done` when every follower has the post.
    Stored {
        messages: Vec<StoredMessage>,
        done: bool,
    },
}

impl Store {
    /// Writes the post into the feeds of the next `chunk` followers (and, on the first step, the
    /// author's own), advances the cursor and renews the lease to `lease_until`, all in one
    /// transaction. `feed_message` builds the message for one recipient's feed.
    pub async fn fanout_step(
        &self,
        fanout: &mut Fanout,
        owner: &str,
        lease_until: i64,
        chunk: u32,
        feed_message: impl Fn(&str) -> NewMessage,
    ) -> Result<Step> {
        let _write = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        // Compare-and-set on the cursor: only the lease holder that saw this cursor may continue.
        // On PostgreSQL the row lock also keeps a node that just took over waiting until we
        // commit, after which its own compare fails.
        let mine = sqlx::query(
            "UPDATE posts SET fanout_lease = $1 WHERE id = $2 AND fanout_owner = $3 \
             AND fanout_after = $4 AND fanout_done = 0",
        )
        .bind(lease_until)
        .bind(&fanout.post.id)
        .bind(owner)
        .bind(fanout.after)
        .execute(&mut *tx)
        .await?;
        if mine.rows_affected() != 1 {
            return Ok(Step::Lost);
        }
        let followers = followers_after(&mut tx, &fanout.post.author, fanout.after, chunk).await?;
        let mut batch = Vec::with_capacity(followers.len() + 1);
        if fanout.after == 0 {
            batch.push(feed_message(&fanout.post.author));
        }
        batch.extend(followers.iter().map(|f| feed_message(&f.user_id)));
        let offsets = append_in(&mut tx, &mut batch).await?;
        let after = followers.last().map_or(fanout.after, |f| f.follow_id);
        let done = followers.len() < chunk as usize;
        sqlx::query("UPDATE posts SET fanout_after = $1, fanout_done = $2 WHERE id = $3")
            .bind(after)
            .bind(done as i64)
            .bind(&fanout.post.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        fanout.after = after;
        let messages = batch
            .into_iter()
            .zip(offsets)
            // Feed messages carry no idempotency key, so each one is stored.
            .filter_map(|(m, o)| o.offset().map(|o| m.stored(o)))
            .collect();
        Ok(Step::Stored { messages, done })
    }

    /// Takes over up to `limit` pending fan-outs whose lease ran out (their node died or shut
    /// down mid-way).
    pub async fn claim_fanouts(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Fanout>> {
        let _write = self.write_turn().await;
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM posts WHERE fanout_done = 0 AND fanout_lease < $1 ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut claimed = Vec::new();
        for id in ids {
            let row = sqlx::query(
                "UPDATE posts SET fanout_owner = $1, fanout_lease = $2 \
                 WHERE id = $3 AND fanout_done = 0 AND fanout_lease < $4 \
                 RETURNING id, author, author_name, reply_to, data, ts, fanout_after",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(&id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { continue };
            match decode_post(&row) {
                Ok(post) => claimed.push(Fanout {
                    post,
                    after: row.get(6),
                }),
                // One unreadable row must not stop every later scan from resuming the others.
                Err(e) => {
                    tracing::error!(error = ?e, post = %id, "unreadable post; its fan-out is given up");
                    crate::metrics::worker_skipped("feed_fanout");
                    self.fail_fanout_locked(&id).await?;
                }
            }
        }
        Ok(claimed)
    }

    /// Gives a post's fan-out up for good (`fanout_done = 2`): its feed item cannot be built.
    /// Feeds that already have it keep it; no node picks it up again.
    pub async fn fail_fanout(&self, post_id: &str) -> Result<()> {
        let _write = self.write_turn().await;
        self.fail_fanout_locked(post_id).await
    }

    async fn fail_fanout_locked(&self, post_id: &str) -> Result<()> {
        sqlx::query("UPDATE posts SET fanout_done = 2 WHERE id = $1 AND fanout_done = 0")
            .bind(post_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives up this node's leases (at shutdown) so another node resumes them at once.
    pub async fn release_fanouts(&self, owner: &str) -> Result<()> {
        let _write = self.write_turn().await;
        sqlx::query(
            "UPDATE posts SET fanout_lease = 0 WHERE fanout_owner = $1 AND fanout_done = 0",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
