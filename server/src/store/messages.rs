//! Channel history: appending batches with gapless per-channel offsets, and reading ranges back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

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
    pub notification: Option<&'static str>,
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
        }
    }
}

/// Rows per multi-row INSERT: 6 parameters each keeps a statement far below both backends'
/// bind-parameter limits (SQLite 32766, PostgreSQL 65535).
const INSERT_CHUNK: usize = 1000;

const COLUMNS: &str = "seq, id, sender, ts, data";

impl Store {
    /// Stores `batch` in one transaction and returns each message's offset, in input order.
    ///
    /// Offsets come from the channel's counter row, bumped by the batch's count for that channel
    /// inside the same transaction: the row lock serialises writers of one channel across every
    /// node sharing the database, and a rolled-back transaction consumes no offsets, so offsets
    /// stay gapless. Channels are locked in name order so two nodes' batches cannot deadlock.
    pub async fn append(&self, batch: &[NewMessage]) -> Result<Vec<u64>> {
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

    /// Up to `limit` messages with offset > `after`, ascending.
    pub async fn messages_after(
        &self,
        channel: &Arc<str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE channel = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(&**channel)
            .bind(clamp(after))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| decode(channel, r)).collect()
    }

    /// The page of up to `limit` messages just before `before` (the newest page when `None`),
    /// returned in ascending offset order.
    pub async fn messages_before(
        &self,
        channel: &Arc<str>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE channel = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
        let rows = sqlx::query(&sql)
            .bind(&**channel)
            .bind(before.map_or(i64::MAX, clamp))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut page = rows
            .iter()
            .map(|r| decode(channel, r))
            .collect::<Result<Vec<_>>>()?;
        page.reverse();
        Ok(page)
    }
}

/// [`Store::append`] inside a transaction the caller owns (the feed fan-out commits its progress
/// in the same transaction as the feed messages).
pub(super) async fn append_in(conn: &mut AnyConnection, batch: &[NewMessage]) -> Result<Vec<u64>> {
    let mut per_channel: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in batch.iter().enumerate() {
        per_channel.entry(&m.channel).or_default().push(i);
    }
    let mut offsets = vec![0u64; batch.len()];
    let channels: Vec<(&str, Vec<usize>)> = per_channel.into_iter().collect();
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
        let lasts: BTreeMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (name, idx) in chunk {
            let last = lasts.get(*name).copied().ok_or_else(|| {
                sqlx::Error::Protocol(format!("channel counter for {name} was not returned"))
            })? as u64;
            let first = last + 1 - idx.len() as u64;
            for (k, &i) in idx.iter().enumerate() {
                offsets[i] = first + k as u64;
            }
        }
    }

    for (chunk_no, chunk) in batch.chunks(INSERT_CHUNK).enumerate() {
        let base = chunk_no * INSERT_CHUNK;
        let sql = format!(
            "INSERT INTO messages (channel, seq, id, sender, ts, data) VALUES {}",
            values(conn, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (k, m) in chunk.iter().enumerate() {
            q = q
                .bind(&*m.channel)
                .bind(offsets[base + k] as i64)
                .bind(&m.id)
                .bind(&m.from)
                .bind(m.ts_ms)
                .bind(m.data.get());
        }
        q.execute(&mut *conn).await?;
    }
    append_notifications(conn, batch, &offsets).await?;
    Ok(offsets)
}

/// Records the notifications among `batch` (see [`NewMessage::notification`]).
async fn append_notifications(
    conn: &mut AnyConnection,
    batch: &[NewMessage],
    offsets: &[u64],
) -> Result<()> {
    let rows: Vec<(&NewMessage, u64)> = batch
        .iter()
        .zip(offsets.iter().copied())
        .filter(|(m, _)| m.notification.is_some())
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO notifications (id, user_id, seq, kind, created_at) VALUES {}",
            values(conn, chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for (m, offset) in chunk {
            let user = m.channel.strip_prefix("user:").unwrap_or(&m.channel);
            q = q
                .bind(&m.id)
                .bind(user)
                .bind(*offset as i64)
                .bind(m.notification.unwrap_or_default())
                .bind(m.ts_ms);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `VALUES` list of a generated multi-row statement: `rows` rows of `cols` parameters.
///
/// PostgreSQL gets numbered `$1, $2, ...` (the one syntax both backends accept; sqlx's
/// `QueryBuilder` emits `?` under the Any driver, which PostgreSQL rejects). SQLite gets anonymous
/// `?`: sqlx binds a named parameter by asking SQLite for each parameter's name, a linear scan per
/// call, so a statement with thousands of `$N` costs quadratic time (it was a fifth of the server's
/// CPU during feed fan-out). Only for statements whose parameters are all generated here.
fn values(conn: &AnyConnection, rows: usize, cols: usize) -> String {
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
    Ok(StoredMessage {
        channel: channel.clone(),
        offset: r.get::<i64, _>(0) as u64,
        id: r.get(1),
        from: r.get(2),
        ts_ms: r.get(3),
        data,
        published_at: None,
    })
}
