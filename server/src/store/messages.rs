//! Channel history: appending batches with gapless per-channel offsets, and reading ranges back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use switchboard_protocol::codec::Stored;
use switchboard_protocol::ChannelKind;

use super::idempotency::Prior;
use super::{Result, Store};

/// A message as stored: its channel, its offset there, and the payload as JSON text.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub channel: Arc<str>,
    pub offset: u64,
    pub id: String,
    pub from: String,
    pub ts_ms: i64,
    pub data: Box<RawValue>,
    /// When this node accepted the publish; `None` for messages read back from storage or
    /// received from another node. Only for latency metrics.
    pub published_at: Option<Instant>,
    /// What became of it since (edited, deleted, replied to, reacted to, hidden from the
    /// reader): only on messages read back from storage, and `None` when nothing did.
    pub state: Option<Box<MessageState>>,
}

/// A stored message's state beyond its payload (PROTOCOL.md, "Message lifecycle").
#[derive(Debug, Clone, Default)]
pub struct MessageState {
    /// RFC 3339, formatted when read.
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub replies: u64,
    /// JSON text of the reader's view of its reactions (history pages only).
    pub reactions: Option<Box<RawValue>>,
    /// The reader blocked its sender; the payload was replaced (see
    /// [`super::lifecycle::hidden_view`]).
    pub hidden: bool,
}

/// A message waiting for its offset.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub channel: Arc<str>,
    pub id: String,
    pub from: String,
    pub ts_ms: i64,
    pub data: Box<RawValue>,
    pub published_at: Option<Instant>,
    /// Set on notifications (messages on `user:<id>`): the kind, stored with the message's
    /// offset in `notifications` in the same transaction, so read state and history agree.
    pub notification: Option<switchboard_protocol::NotificationKind>,
    /// The publisher's idempotency key: a later publish by the same sender on the same channel
    /// with the same key is the same publish (see [`Appended`]).
    pub idempotency_key: Option<String>,
    /// What storing it does to an earlier message of its channel (an edit, a delete, a
    /// reaction, a reply), in the same transaction.
    pub effect: Option<super::lifecycle::Effect>,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored by this batch, at this offset.
    Stored(u64),
    /// A retry of a publish stored before (same sender, channel, idempotency key and data): not
    /// stored again; the first one's offset.
    Repeat(u64),
    /// The sender used this key on this channel before for different data: refused.
    KeyReused,
}

impl Appended {
    /// The offset the publisher is told (none for a refused key reuse).
    pub fn offset(self) -> Option<u64> {
        match self {
            Appended::Stored(o) | Appended::Repeat(o) => Some(o),
            Appended::KeyReused => None,
        }
    }
}

impl NewMessage {
    pub fn stored(self, offset: u64) -> StoredMessage {
        StoredMessage {
            channel: self.channel,
            offset,
            id: self.id,
            from: self.from,
            ts_ms: self.ts_ms,
            data: self.data,
            published_at: self.published_at,
            state: None,
        }
    }
}

/// Rows per multi-row INSERT: 7 parameters each keeps a statement far below both backends'
/// bind-parameter limits (SQLite 32766, PostgreSQL 65535).
pub(super) const INSERT_CHUNK: usize = 1000;

const COLUMNS: &str = "seq, id, sender, ts, data, edited_at, deleted_at, replies";

/// The longest idempotency key accepted (PROTOCOL.md: 1–64 characters).
pub const MAX_IDEMPOTENCY_KEY: usize = 64;

impl Store {
    /// Stores `batch` in one transaction and returns each message's offset, in input order.
    ///
    /// Offsets come from the channel's counter row, bumped by the batch's count for that channel
    /// inside the same transaction: the row lock serialises writers of one channel across every
    /// node sharing the database, and a rolled-back transaction consumes no offsets, so offsets
    /// stay gapless. Channels are locked in name order so two nodes' batches cannot deadlock.
    /// Messages with an idempotency key that was stored before are not stored again
    /// ([`Appended::Repeat`], [`Appended::KeyReused`]).
    pub async fn append(&self, batch: &mut [NewMessage]) -> Result<Vec<Appended>> {
        let _write = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let offsets = append_in(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(offsets)
    }

    /// The channel's last offset (0 when nothing was ever published).
    pub async fn last_offset(&self, channel: &str) -> Result<u64> {
        let row = sqlx::query("SELECT last_offset FROM channels WHERE name = $1")
            .bind(channel)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64).unwrap_or(0))
    }

    /// Up to `limit` messages with offset > `after`, ascending, and at most about `max_bytes` of
    /// payload (always at least one message); `more` when newer ones may remain.
    pub async fn messages_after(
        &self,
        channel: &Arc<str>,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Page> {
        let sizes = "SELECT seq, CAST(OCTET_LENGTH(data) AS BIGINT) FROM messages \
                     WHERE channel = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        let (range, more) = self
            .sized(sizes, channel, clamp(after), limit, max_bytes)
            .await?;
        let messages = match range {
            Some((first, last)) => self.range(channel, first, last).await?,
            None => Vec::new(),
        };
        Ok(Page { messages, more })
    }

    /// The page of up to `limit` messages just before `before` (the newest page when `None`),
    /// in ascending offset order, cut short at about `max_bytes` of payload (always at least one
    /// message). `more` when older messages may remain: the page is full or was cut.
    pub async fn messages_before(
        &self,
        channel: &Arc<str>,
        before: Option<u64>,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Page> {
        let sizes = "SELECT seq, CAST(OCTET_LENGTH(data) AS BIGINT) FROM messages \
                     WHERE channel = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3";
        let before = before.map_or(i64::MAX, clamp);
        let (range, more) = self.sized(sizes, channel, before, limit, max_bytes).await?;
        let messages = match range {
            // Read newest first: the range runs from the newest (first) to the oldest kept.
            Some((newest, oldest)) => self.range(channel, oldest, newest).await?,
            None => Vec::new(),
        };
        Ok(Page { messages, more })
    }

    /// Reads only the sizes of up to `limit` rows (in the order `sql` gives), and returns the
    /// offsets of the first and last row of the longest prefix within `max_bytes` (at least
    /// one row), and whether rows were left out (the prefix was cut, or `limit` rows came).
    /// Pages are then read by offset range, so no request holds more than about `max_bytes` of
    /// payloads, however large each stored message is: 200 messages of 64 KiB would otherwise be
    /// 12.8 MiB per page, per request.
    async fn sized(
        &self,
        sql: &str,
        channel: &Arc<str>,
        from: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<(Option<(i64, i64)>, bool)> {
        let rows = sqlx::query(sql)
            .bind(&**channel)
            .bind(from)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let sizes: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let kept = fitting(&sizes, max_bytes);
        let range = (kept > 0).then(|| (sizes[0].0, sizes[kept - 1].0));
        Ok((range, kept < sizes.len() || sizes.len() == limit as usize))
    }

    /// Messages with offsets `first..=last`, ascending (also the mention outbox's read).
    pub(super) async fn range(
        &self,
        channel: &Arc<str>,
        first: i64,
        last: i64,
    ) -> Result<Vec<StoredMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE channel = $1 AND seq >= $2 AND seq <= $3 \
             ORDER BY seq"
        );
        let rows = sqlx::query(&sql)
            .bind(&**channel)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| decode(channel, r)).collect()
    }
}

/// A page of history, ascending.
#[derive(Debug)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// More messages may remain in the direction read (the page is full or was cut short).
    pub more: bool,
}

/// How many of `sizes` (offset, payload length), in reading order, fit in `max_bytes`: at least
/// one, so a single message larger than the budget is still readable.
pub(super) fn fitting(sizes: &[(i64, i64)], max_bytes: usize) -> usize {
    let mut total = 0usize;
    for (i, &(_, len)) in sizes.iter().enumerate() {
        total = total.saturating_add(len.max(0) as usize);
        if total > max_bytes {
            return i.max(1).min(sizes.len());
        }
    }
    sizes.len()
}

/// [`Store::append`] inside a transaction the caller owns (the feed fan-out commits its progress
/// in the same transaction as the feed messages).
///
/// The counter rows are bumped for the whole batch first: that takes the channels' row locks, so
/// the look-up of idempotency keys that follows cannot race another node storing the same key
/// (it would wait on the lock, then see the row). Repeats are rare (a retry after a lost ack), so
/// the counters are then lowered by their number rather than locked in a statement of their own.
pub(super) async fn append_in(
    conn: &mut AnyConnection,
    batch: &mut [NewMessage],
) -> Result<Vec<Appended>> {
    let mut per_channel: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in batch.iter().enumerate() {
        per_channel.entry(&m.channel).or_default().push(i);
    }
    let channels: Vec<(&str, Vec<usize>)> = per_channel.into_iter().collect();
    let mut lasts: BTreeMap<&str, u64> = BTreeMap::new();
    for chunk in channels.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO channels (name, last_offset) VALUES {} \
             ON CONFLICT (name) DO UPDATE SET last_offset = channels.last_offset + excluded.last_offset \
             RETURNING name, last_offset",
            values(conn, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (name, idx) in chunk {
            q = q.bind(*name).bind(idx.len() as i64);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let returned: BTreeMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (name, _) in chunk {
            let last = returned.get(*name).copied().ok_or_else(|| {
                sqlx::Error::Protocol(format!("channel counter for {name} was not returned"))
            })?;
            lasts.insert(name, last as u64);
        }
    }

    let priors = super::idempotency::priors(conn, batch).await?;
    let mut outcomes = vec![Appended::KeyReused; batch.len()];
    for (name, idx) in &channels {
        let fresh: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| priors[i] == Prior::Fresh)
            .collect();
        let unused = (idx.len() - fresh.len()) as u64;
        let mut last = lasts[name];
        if unused > 0 {
            // Give back the offsets the repeats took: the row is still locked by this
            // transaction, so nobody has seen them.
            sqlx::query("UPDATE channels SET last_offset = last_offset - $1 WHERE name = $2")
                .bind(unused as i64)
                .bind(*name)
                .execute(&mut *conn)
                .await?;
            last -= unused;
        }
        let first = last + 1 - fresh.len() as u64;
        for (k, &i) in fresh.iter().enumerate() {
            outcomes[i] = Appended::Stored(first + k as u64);
        }
    }
    for (i, prior) in priors.iter().enumerate() {
        match *prior {
            Prior::Fresh => {}
            Prior::Known(outcome) => outcomes[i] = outcome,
            Prior::SameAs(j) => outcomes[i] = Appended::Repeat(outcomes[j].offset().unwrap_or(0)),
        }
    }

    let fresh: Vec<(&NewMessage, u64)> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(m, o)| match o {
            Appended::Stored(offset) => Some((m, *offset)),
            _ => None,
        })
        .collect();
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO messages (channel, seq, id, sender, ts, data, idem_key) VALUES {}",
            values(conn, chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for (m, offset) in chunk {
            q = q
                .bind(&*m.channel)
                .bind(*offset as i64)
                .bind(&m.id)
                .bind(&m.from)
                .bind(m.ts_ms)
                .bind(m.data.get())
                .bind(m.idempotency_key.as_deref());
        }
        q.execute(&mut *conn).await?;
    }
    append_notifications(conn, &fresh).await?;
    super::mention_outbox::record(conn, &fresh).await?;
    super::lifecycle::apply(conn, batch, &outcomes).await?;
    Ok(outcomes)
}

/// Records the notifications among the messages just stored (see [`NewMessage::notification`]).
async fn append_notifications(
    conn: &mut AnyConnection,
    stored: &[(&NewMessage, u64)],
) -> Result<()> {
    let rows: Vec<&(&NewMessage, u64)> = stored
        .iter()
        .filter(|(m, _)| m.notification.is_some())
        .collect();
    let mut mentioned_now = Vec::new();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO notifications (id, user_id, seq, kind, created_at, about_channel, \
             about_seq) VALUES {}",
            values(conn, chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for (m, offset) in chunk {
            let user = ChannelKind::User.key(&m.channel).unwrap_or(&m.channel);
            let about = match m.notification {
                Some(switchboard_protocol::NotificationKind::Mention) => mentioned(&m.data),
                _ => None,
            };
            mentioned_now.extend(about.clone());
            let (about_channel, about_seq) = about.unzip();
            q = q
                .bind(&m.id)
                .bind(user)
                .bind(*offset as i64)
                .bind(m.notification.map_or("", |kind| kind.as_str()))
                .bind(m.ts_ms)
                .bind(about_channel)
                .bind(about_seq);
        }
        q.execute(&mut *conn).await?;
    }
    // A message deleted while its mentions were being sent: the delete scrubbed only the
    // notifications stored before it, so these are scrubbed here.
    for (channel, seq) in mentioned_now {
        let deleted = sqlx::query(
            "SELECT 1 FROM messages WHERE channel = $1 AND seq = $2 AND deleted_at IS NOT NULL",
        )
        .bind(&channel)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?;
        if deleted.is_some() {
            super::lifecycle::scrub_mentions(conn, &channel, seq).await?;
        }
    }
    Ok(())
}

/// The room message a mention notification's payload quotes: its channel and offset.
fn mentioned(data: &RawValue) -> Option<(String, i64)> {
    #[derive(serde::Deserialize)]
    struct Notification {
        channel: String,
        message: Message,
    }
    #[derive(serde::Deserialize)]
    struct Message {
        offset: u64,
    }
    let n: Notification = serde_json::from_str(data.get()).ok()?;
    Some((n.channel, i64::try_from(n.message.offset).ok()?))
}

/// The `VALUES` list of a generated multi-row statement: `rows` rows of `cols` parameters.
///
/// PostgreSQL gets numbered `$1, $2, ...` (the one syntax both backends accept; sqlx's
/// `QueryBuilder` emits `?` under the Any driver, which PostgreSQL rejects). SQLite gets anonymous
/// `?`: sqlx binds a named parameter by asking SQLite for each parameter's name, a linear scan per
/// call, so a statement with thousands of `$N` costs quadratic time (it was a fifth of the server's
/// CPU during feed fan-out). Only for statements whose parameters are all generated here.
pub(super) fn values(conn: &AnyConnection, rows: usize, cols: usize) -> String {
    if conn.backend_name() == "SQLite" {
        let row = format!("({})", vec!["?"; cols].join(", "));
        vec![row; rows].join(", ")
    } else {
        placeholders_from(1, rows, cols)
    }
}

/// `($first, ...), (...)`: `rows` rows of `cols` numbered placeholders, from `$first` (after a
/// statement's fixed parameters).
pub(super) fn placeholders_from(first: usize, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + r * cols + c).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Offsets are u64 on the wire and BIGINT in storage; a client-supplied offset beyond i64::MAX
/// simply means "after everything".
fn clamp(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn decode(channel: &Arc<str>, r: &AnyRow) -> Result<StoredMessage> {
    let data: String = r.get(4);
    let data = RawValue::from_string(data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let edited_at: Option<i64> = r.get(5);
    let deleted_at: Option<i64> = r.get(6);
    let replies: i64 = r.get(7);
    let state = (edited_at.is_some() || deleted_at.is_some() || replies > 0).then(|| {
        Box::new(MessageState {
            edited_at: edited_at.map(rfc3339),
            deleted: deleted_at.is_some(),
            replies: replies.max(0) as u64,
            ..MessageState::default()
        })
    });
    Ok(StoredMessage {
        channel: channel.clone(),
        offset: r.get::<i64, _>(0) as u64,
        id: r.get(1),
        from: r.get(2),
        ts_ms: r.get(3),
        data,
        published_at: None,
        state,
    })
}

/// A stored message as the protocol crate encodes it; `ts` is its formatted time.
pub(crate) fn stored<'a>(msg: &'a StoredMessage, ts: &'a str) -> Stored<'a> {
    let mut out = Stored::new(&msg.channel, msg.offset, &msg.id, &msg.from, ts, &msg.data);
    if let Some(state) = &msg.state {
        out.edited_at = state.edited_at.as_deref();
        out.deleted = state.deleted;
        out.replies = state.replies;
        out.reactions = state.reactions.as_deref();
        out.hidden = state.hidden;
    }
    out
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-28T10:21:09.123Z`).
pub(crate) fn rfc3339(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_keeps_what_fits_and_always_one() {
        let sizes = [(1, 400), (2, 400), (3, 400)];
        assert_eq!(super::fitting(&sizes, 1000), 2);
        assert_eq!(super::fitting(&sizes, 1200), 3);
        assert_eq!(
            super::fitting(&sizes, 10),
            1,
            "one message too big is still readable"
        );
        assert_eq!(super::fitting(&[], 10), 0);
    }
}
