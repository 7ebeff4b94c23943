//! Idempotent publish: which messages of a batch are retries of publishes already stored.
//!
//! A key belongs to one sender on one channel (PROTOCOL.md, `idempotency_key`) and lives as long
//! as the message it was stored with. Same key and same data is the same publish: it answers the
//! first one's offset. Same key and different data is a client bug (or two publishes that chose
//! one key): refused, so a retry can never silently change what was stored.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::messages::{Appended, NewMessage};
use super::Result;

/// What is known about one message of a batch before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prior {
    /// Nothing: store it.
    Fresh,
    /// Decided already: a repeat of a stored message, or a refused key reuse.
    Known(Appended),
    /// A repeat of the earlier message of the same batch at this index (stored by this batch).
    SameAs(usize),
}

/// Keys per look-up statement (three parameters each): far below both backends' limits.
const KEYS_PER_QUERY: usize = 300;

/// Looks up the batch's keys among stored messages (inside the transaction that holds the
/// batch's channel rows locked) and among the batch itself.
pub(super) async fn priors(conn: &mut AnyConnection, batch: &[NewMessage]) -> Result<Vec<Prior>> {
    let mut priors = vec![Prior::Fresh; batch.len()];
    let keyed: Vec<usize> = (0..batch.len())
        .filter(|&i| batch[i].idempotency_key.is_some())
        .collect();
    if keyed.is_empty() {
        return Ok(priors);
    }
    // Exact (channel, sender, key) triples, so the unique index answers each one directly;
    // matching channel and key separately would read every keyed row of the channel.
    // (offset, data as first stored, whether it was edited or deleted since).
    let mut stored: HashMap<(String, String, String), (u64, String, bool)> = HashMap::new();
    for chunk in keyed.chunks(KEYS_PER_QUERY) {
        let wanted: Vec<String> = (0..chunk.len())
            .map(|k| {
                format!(
                    "(channel = ${} AND sender = ${} AND idem_key = ${})",
                    3 * k + 1,
                    3 * k + 2,
                    3 * k + 3
                )
            })
            .collect();
        let sql = format!(
            "SELECT channel, sender, idem_key, seq, data, \
             CASE WHEN edited_at IS NULL AND deleted_at IS NULL THEN 0 ELSE 1 END \
             FROM messages WHERE idem_key IS NOT NULL AND ({})",
            wanted.join(" OR ")
        );
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            let m = &batch[i];
            q = q
                .bind(&*m.channel)
                .bind(&m.from)
                .bind(m.idempotency_key.as_deref());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let seq: i64 = row.get(3);
            let changed: i64 = row.get(5);
            stored.insert(
                (row.get(0), row.get(1), row.get(2)),
                (seq as u64, row.get(4), changed != 0),
            );
        }
    }
    let mut first_in_batch: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for &i in &keyed {
        let m = &batch[i];
        let Some(key) = m.idempotency_key.as_deref() else {
            continue;
        };
        let data = m.data.get();
        let triple = (m.channel.to_string(), m.from.clone(), key.to_owned());
        priors[i] = if let Some((offset, first, changed)) = stored.get(&triple) {
            // An edited or deleted message no longer holds the data first stored: a late retry
            // of its publish is still that publish, not a new message.
            Prior::Known(if first == data || *changed {
                Appended::Repeat(*offset)
            } else {
                Appended::KeyReused
            })
        } else if let Some(&j) = first_in_batch.get(&(&*m.channel, &*m.from, key)) {
            if batch[j].data.get() == data {
                Prior::SameAs(j)
            } else {
                Prior::Known(Appended::KeyReused)
            }
        } else {
            first_in_batch.insert((&m.channel, &m.from, key), i);
            Prior::Fresh
        };
    }
    Ok(priors)
}
