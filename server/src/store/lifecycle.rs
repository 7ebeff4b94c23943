//! Message lifecycle in storage: what an edit, a delete, a reaction or a reply does to the
//! earlier message it is about. Each is a message of its own, with its own offset; its effect
//! on the earlier one is applied in the transaction that stores it ([`apply`]), after the
//! channel's counter row is locked, so effects on one channel apply in offset order on every
//! node and a delete can never be overtaken by an edit of the same message.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use sqlx::{AnyConnection, Row};

use super::messages::{Appended, NewMessage, StoredMessage};
use super::{Result, Store};

/// What storing a message does to an earlier message of its channel.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A reply: the parent's reply count goes up.
    Reply { parent: u64 },
    /// An edit: the target's payload becomes `content`. If the target was deleted meanwhile, the
    /// edit keeps no content either.
    Edit { target: u64, content: Box<RawValue> },
    /// A delete: the target's content is gone, with the content of every edit of it, its
    /// reactions, and what mention notifications of it and its edits quote. `moderator` when the actor deleted someone else's message (audited).
    Delete {
        target: u64,
        moderator: Option<Moderation>,
    },
    /// A reaction added or removed, within `limits`; the message's payload is rewritten with
    /// the emoji's count after the change, so every reader sees the same number.
    React {
        target: u64,
        emoji: String,
        add: bool,
        limits: ReactionLimits,
    },
}

/// Who deleted another user's message, for the room's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderation {
    pub room: String,
    pub actor: String,
    pub author: String,
}

/// Bounds on a message's reactions (PROTOCOL.md, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionLimits {
    /// Distinct emoji one user may put on one message.
    pub per_user: u32,
    /// Distinct emoji on one message, all users together.
    pub per_message: u32,
}

/// The payload of an edit: `{"kind":"edit","target":N,"data":<content>}`.
pub fn edit_data(target: u64, content: &RawValue) -> String {
    format!(
        r#"{{"kind":"edit","target":{target},"data":{}}}"#,
        content.get()
    )
}

/// An edit whose content is gone (its target was deleted).
fn scrubbed_edit(target: u64) -> String {
    format!(r#"{{"kind":"edit","target":{target}}}"#)
}

/// The payload of a delete.
pub fn delete_data(target: u64) -> String {
    format!(r#"{{"kind":"delete","target":{target}}}"#)
}

/// The payload of a reaction change, as stored and delivered.
fn reaction_data(target: u64, emoji: &str, add: bool, count: u64) -> Result<Box<RawValue>> {
    let value = serde_json::json!({
        "kind": "reaction",
        "target": target,
        "emoji": emoji,
        "op": if add { "add" } else { "remove" },
        "count": count,
    });
    serde_json::value::to_raw_value(&value).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
}

/// What a reader who blocked a message's sender gets in place of its payload: `None` when they
/// get it whole (a delete or a reaction: made by the server, nothing of the sender's words in
/// it, and needed to keep the reader's view of the target right); an edit without its new
/// version; `null` for anything else.
pub fn hidden_view(data: &RawValue) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        target: Option<u64>,
    }
    let text = data.get();
    if text.starts_with('{') && text.contains("\"kind\"") {
        if let Ok(head) = serde_json::from_str::<Head<'_>>(text) {
            match (head.kind.as_deref(), head.target) {
                (Some("delete" | "reaction"), Some(_)) => return None,
                (Some("edit"), Some(target)) => {
                    return RawValue::from_string(scrubbed_edit(target)).ok();
                }
                _ => {}
            }
        }
    }
    Some(Box::<RawValue>::default())
}

/// Applies the effects of the messages of a batch that were stored now, in batch order (which
/// is offset order within a channel).
pub(super) async fn apply(
    conn: &mut AnyConnection,
    batch: &mut [NewMessage],
    outcomes: &[Appended],
) -> Result<()> {
    for (m, outcome) in batch.iter_mut().zip(outcomes) {
        let (Some(effect), Appended::Stored(own)) = (&m.effect, outcome) else {
            continue;
        };
        let own = *own as i64;
        let rewritten = match effect {
            Effect::Reply { parent } => {
                sqlx::query("UPDATE messages SET reply_to = $1 WHERE channel = $2 AND seq = $3")
                    .bind(*parent as i64)
                    .bind(&*m.channel)
                    .bind(own)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(
                    "UPDATE messages SET replies = replies + 1 WHERE channel = $1 AND seq = $2",
                )
                .bind(&*m.channel)
                .bind(*parent as i64)
                .execute(&mut *conn)
                .await?;
                None
            }
            Effect::Edit { target, content } => {
                let done = sqlx::query(
                    "UPDATE messages SET data = $1, edited_at = $2 \
                     WHERE channel = $3 AND seq = $4 AND deleted_at IS NULL",
                )
                .bind(content.get())
                .bind(m.ts_ms)
                .bind(&*m.channel)
                .bind(*target as i64)
                .execute(&mut *conn)
                .await?;
                mark(conn, &m.channel, own, "edit", *target).await?;
                if done.rows_affected() == 0 {
                    Some(scrubbed_edit(*target))
                } else {
                    None
                }
            }
            Effect::Delete { target, moderator } => {
                let t = *target as i64;
                sqlx::query(
                    "UPDATE messages SET data = 'null', deleted_at = $1 \
                     WHERE channel = $2 AND seq = $3 AND deleted_at IS NULL",
                )
                .bind(m.ts_ms)
                .bind(&*m.channel)
                .bind(t)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE messages SET data = $1 WHERE channel = $2 AND target = $3 \
                     AND kind = 'edit'",
                )
                .bind(scrubbed_edit(*target))
                .bind(&*m.channel)
                .bind(t)
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM message_reactions WHERE channel = $1 AND seq = $2")
                    .bind(&*m.channel)
                    .bind(t)
                    .execute(&mut *conn)
                    .await?;
                scrub_mentions(conn, &m.channel, t).await?;
                mark(conn, &m.channel, own, "delete", *target).await?;
                if let Some(md) = moderator {
                    sqlx::query(
                        "INSERT INTO room_audit (room, actor, action, target, detail, at) \
                         VALUES ($1, $2, 'message_deleted', $3, $4, $5)",
                    )
                    .bind(&md.room)
                    .bind(&md.actor)
                    .bind(&md.author)
                    .bind(target.to_string())
                    .bind(m.ts_ms)
                    .execute(&mut *conn)
                    .await?;
                }
                None
            }
            Effect::React {
                target,
                emoji,
                add,
                limits,
            } => {
                let t = *target as i64;
                if *add {
                    react(conn, &m.channel, t, &m.from, emoji, m.ts_ms, *limits).await?;
                } else {
                    sqlx::query(
                        "DELETE FROM message_reactions WHERE channel = $1 AND seq = $2 \
                         AND user_id = $3 AND emoji = $4",
                    )
                    .bind(&*m.channel)
                    .bind(t)
                    .bind(&m.from)
                    .bind(emoji)
                    .execute(&mut *conn)
                    .await?;
                }
                let count: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM message_reactions WHERE channel = $1 AND seq = $2 \
                     AND emoji = $3",
                )
                .bind(&*m.channel)
                .bind(t)
                .bind(emoji)
                .fetch_one(&mut *conn)
                .await?
                .get(0);
                mark(conn, &m.channel, own, "reaction", *target).await?;
                let data = reaction_data(*target, emoji, *add, count.max(0) as u64)?;
                Some(data.get().to_owned())
            }
        };
        if let Some(data) = rewritten {
            sqlx::query("UPDATE messages SET data = $1 WHERE channel = $2 AND seq = $3")
                .bind(&data)
                .bind(&*m.channel)
                .bind(own)
                .execute(&mut *conn)
                .await?;
            m.data = RawValue::from_string(data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        }
    }
    Ok(())
}

/// Records on the message at `own` what it is (`kind`) and which message it is about.
async fn mark(
    conn: &mut AnyConnection,
    channel: &str,
    own: i64,
    kind: &str,
    target: u64,
) -> Result<()> {
    sqlx::query("UPDATE messages SET kind = $1, target = $2 WHERE channel = $3 AND seq = $4")
        .bind(kind)
        .bind(target as i64)
        .bind(channel)
        .bind(own)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds `user`'s `emoji` to the message unless that would pass a limit or the message is gone:
/// checked in the statement itself, under the channel's row lock, so concurrent reactions
/// cannot pass a limit together.
async fn react(
    conn: &mut AnyConnection,
    channel: &str,
    target: i64,
    user: &str,
    emoji: &str,
    at: i64,
    limits: ReactionLimits,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO message_reactions (channel, seq, user_id, emoji, created_at) \
         SELECT $1, $2, $3, $4, $5 \
         WHERE EXISTS (SELECT 1 FROM messages WHERE channel = $1 AND seq = $2 \
                       AND deleted_at IS NULL) \
         AND (SELECT COUNT(*) FROM message_reactions WHERE channel = $1 AND seq = $2 \
              AND user_id = $3) < $6 \
         AND (EXISTS (SELECT 1 FROM message_reactions WHERE channel = $1 AND seq = $2 \
                      AND emoji = $4) \
              OR (SELECT COUNT(DISTINCT emoji) FROM message_reactions WHERE channel = $1 \
                  AND seq = $2) < $7) \
         ON CONFLICT DO NOTHING",
    )
    .bind(channel)
    .bind(target)
    .bind(user)
    .bind(emoji)
    .bind(at)
    .bind(limits.per_user as i64)
    .bind(limits.per_message as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the lifecycle checks need to know of a message before acting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub sender: String,
    /// `edit`, `delete` or `reaction` for those messages; `None` for an ordinary one.
    pub kind: Option<String>,
    pub deleted: bool,
    /// The message it replies to.
    pub reply_to: Option<u64>,
}

/// One user's reactions on one message, and the message's, before a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionsNow {
    /// Distinct emoji the user has on it.
    pub mine: u32,
    /// Distinct emoji on it, all users together.
    pub distinct: u32,
    /// The user has this emoji on it.
    pub has_mine: bool,
    /// Someone has this emoji on it.
    pub has_any: bool,
}

impl Store {
    /// The message at `offset` of `channel`, as the lifecycle checks see it.
    pub async fn message_target(&self, channel: &str, offset: u64) -> Result<Option<Target>> {
        let Ok(seq) = i64::try_from(offset) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT sender, kind, deleted_at, reply_to FROM messages \
             WHERE channel = $1 AND seq = $2",
        )
        .bind(channel)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Target {
            sender: r.get(0),
            kind: r.get(1),
            deleted: r.get::<Option<i64>, _>(2).is_some(),
            reply_to: r.get::<Option<i64>, _>(3).map(|p| p.max(0) as u64),
        }))
    }

    /// `user`'s and everyone's reactions on the message at `offset`, with respect to `emoji`.
    pub async fn reactions_now(
        &self,
        channel: &str,
        offset: u64,
        user: &str,
        emoji: &str,
    ) -> Result<ReactionsNow> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN user_id = $3 THEN 1 ELSE 0 END), 0), \
             COUNT(DISTINCT emoji), \
             COALESCE(SUM(CASE WHEN user_id = $3 AND emoji = $4 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN emoji = $4 THEN 1 ELSE 0 END), 0) \
             FROM message_reactions WHERE channel = $1 AND seq = $2",
        )
        .bind(channel)
        .bind(offset.min(i64::MAX as u64) as i64)
        .bind(user)
        .bind(emoji)
        .fetch_one(&self.pool)
        .await?;
        let n = |i: usize| r_u32(row.get::<i64, _>(i));
        Ok(ReactionsNow {
            mine: n(0),
            distinct: n(1),
            has_mine: n(2) > 0,
            has_any: n(3) > 0,
        })
    }

    /// Adds to a page of `channel`'s history what `reader` sees of it: reaction summaries (most
    /// frequent first, `me` for the reader's own), and messages of users the reader blocked
    /// marked hidden.
    pub async fn reader_view(
        &self,
        channel: &str,
        reader: &str,
        page: &mut [StoredMessage],
    ) -> Result<()> {
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT seq, emoji, COUNT(*), SUM(CASE WHEN user_id = $4 THEN 1 ELSE 0 END) \
             FROM message_reactions WHERE channel = $1 AND seq >= $2 AND seq <= $3 \
             GROUP BY seq, emoji",
        )
        .bind(channel)
        .bind(first.offset as i64)
        .bind(last.offset as i64)
        .bind(reader)
        .fetch_all(&self.pool)
        .await?;
        let mut per_message: BTreeMap<u64, Vec<(String, i64, bool)>> = BTreeMap::new();
        for r in rows {
            per_message
                .entry(r.get::<i64, _>(0) as u64)
                .or_default()
                .push((r.get(1), r.get(2), r.get::<i64, _>(3) > 0));
        }
        let blocked = self.blocked_ids(reader).await?;
        for m in page.iter_mut() {
            let reactions = per_message.remove(&m.offset);
            let shown = if blocked.contains(&m.from) {
                hidden_view(&m.data)
            } else {
                None
            };
            if reactions.is_none() && shown.is_none() {
                continue;
            }
            let state = m.state.get_or_insert_with(Default::default);
            if let Some(shown) = shown {
                m.data = shown;
                state.hidden = true;
                state.edited_at = None;
                continue;
            }
            if let Some(mut counts) = reactions {
                counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let json: Vec<_> = counts
                    .into_iter()
                    .map(|(emoji, count, me)| {
                        serde_json::json!({"emoji": emoji, "count": count, "me": me})
                    })
                    .collect();
                state.reactions = Some(
                    serde_json::value::to_raw_value(&json)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                );
            }
        }
        Ok(())
    }

    /// The ids of the users `user` blocked (at most `SWITCHBOARD_MAX_BLOCKS` exist).
    pub async fn blocked_ids(&self, user: &str) -> Result<HashSet<String>> {
        let rows = sqlx::query("SELECT blocked FROM blocks WHERE user_id = $1")
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}

fn r_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Removes the content of every mention notification about the message at `target` of
/// `channel` or about an edit of it: the excerpt and inline data go, `deleted` is set.
pub(super) async fn scrub_mentions(
    conn: &mut AnyConnection,
    channel: &str,
    target: i64,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT n.user_id, m.seq, m.data FROM notifications n \
         JOIN messages m ON m.channel = 'user:' || n.user_id AND m.seq = n.seq \
         WHERE n.about_channel = $1 AND (n.about_seq = $2 OR n.about_seq IN \
             (SELECT seq FROM messages WHERE channel = $1 AND target = $2 AND kind = 'edit'))",
    )
    .bind(channel)
    .bind(target)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let user: String = r.get(0);
        let seq: i64 = r.get(1);
        let text: String = r.get(2);
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(message) = value.get_mut("message").and_then(|m| m.as_object_mut()) else {
            continue;
        };
        message.insert("excerpt".into(), "".into());
        message.remove("data");
        message.insert("deleted".into(), true.into());
        sqlx::query("UPDATE messages SET data = $1 WHERE channel = $2 AND seq = $3")
            .bind(value.to_string())
            .bind(switchboard_protocol::ChannelKind::User.name(&user))
            .bind(seq)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
