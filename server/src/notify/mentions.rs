//! `@username` mentions in chat messages.
//!
//! Every committed batch passes [`Scanner::scan`] on the node that stored it (so exactly one node
//! handles each message), which only looks for an `@` in room messages and queues the few that
//! have one. [`run`] then resolves the names and notifies each mentioned user who may read the
//! room, off the publish path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use super::{Actor, Kind, Notifier};
use crate::authz::Authz;
use crate::metrics;
use crate::store::{Store, StoredMessage};

/// Distinct users one message can mention; more are ignored (anti-spam, bounded work).
pub const MAX_MENTIONS: usize = 20;
/// Payload bytes of messages waiting for mention processing before new ones are dropped
/// (counted in `switchboard_mentions_dropped_total`): the queue's memory bound.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;
/// Messages processed at once.
const CONCURRENCY: usize = 64;

/// The commit-side half: cheap, never blocks the writer.
#[derive(Clone)]
pub struct Scanner {
    queue: mpsc::UnboundedSender<StoredMessage>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The receiving half, for [`run`].
pub struct Queue {
    queue: mpsc::UnboundedReceiver<StoredMessage>,
    queued_bytes: Arc<AtomicUsize>,
}

pub fn channel() -> (Scanner, Queue) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        Scanner {
            queue: tx,
            queued_bytes: queued_bytes.clone(),
        },
        Queue {
            queue: rx,
            queued_bytes,
        },
    )
}

impl Scanner {
    pub fn scan(&self, batch: &[StoredMessage]) {
        for m in batch {
            if !(m.channel.starts_with("room:") && m.data.get().contains('@')) {
                continue;
            }
            let size = m.data.get().len();
            let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
            if queued + size > QUEUE_BYTES || self.queue.send(m.clone()).is_err() {
                self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
                metrics::MENTIONS_DROPPED.increment(1);
            }
        }
    }
}

/// The mention worker: resolves and notifies the mentions of queued messages.
pub struct Worker {
    pub queue: Queue,
    pub store: Store,
    pub authz: Arc<Authz>,
    pub notifier: Arc<Notifier>,
}

impl Worker {
    /// Processes queued messages until every [`Scanner`] is gone (the storage writers have
    /// exited, so no stored message can still need its mentions), and returns once all are
    /// notified. Each message is handled in a task of its own: one that fails (or panics) is
    /// logged and counted, and the others go on.
    pub async fn run(&mut self) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        while let Some(message) = self.queue.queue.recv().await {
            self.queue
                .queued_bytes
                .fetch_sub(message.data.get().len(), Ordering::Relaxed);
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (store, authz, notifier) = (
                self.store.clone(),
                self.authz.clone(),
                self.notifier.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = notify_mentioned(&message, &store, &authz, &notifier).await {
                    metrics::worker_skipped("mentions");
                    tracing::warn!(error = %e, channel = %message.channel, offset = message.offset, "mention notifications failed");
                }
                drop(permit);
            });
        }
        // Wait for the in-flight ones.
        let _ = permits.acquire_many(CONCURRENCY as u32).await;
    }
}

/// A `mention` notification's own fields (docs/PROTOCOL.md).
#[derive(serde::Serialize)]
struct MentionFields<'a> {
    room: &'a str,
    channel: &'a str,
    message: MentionedMessage<'a>,
}

#[derive(serde::Serialize)]
struct MentionedMessage<'a> {
    offset: u64,
    id: &'a str,
    data: &'a RawValue,
}

async fn notify_mentioned(
    message: &StoredMessage,
    store: &Store,
    authz: &Authz,
    notifier: &Notifier,
) -> anyhow::Result<()> {
    let names = mentions(&message.data);
    if names.is_empty() {
        return Ok(());
    }
    let Some(room) = message.channel.strip_prefix("room:") else {
        return Ok(());
    };
    // A load-test token's user has no row; its id stands in for the name.
    let from = Actor {
        id: message.from.as_str().into(),
        username: match store.user_by_id(&message.from).await? {
            Some(user) => user.username.into(),
            None => message.from.as_str().into(),
        },
    };
    // Unknown names are left out.
    for (user_id, _) in store.user_ids_by_usernames(&names).await? {
        if !authz.may_read_room(&user_id, room).await? {
            continue;
        }
        let fields = MentionFields {
            room,
            channel: &message.channel,
            message: MentionedMessage {
                offset: message.offset,
                id: &message.id,
                data: &message.data,
            },
        };
        notifier
            .notify(&user_id, &from, Some(room), Kind::Mention, fields)
            .await?;
    }
    Ok(())
}

/// The distinct usernames `@mentioned` in the string values of `data` (object fields in key order),
/// at most [`MAX_MENTIONS`]. A mention starts at an `@` that does not follow a name character (so
/// `bob@example.com` is not one) and takes the name characters after it, less trailing dots.
pub fn mentions(data: &RawValue) -> Vec<String> {
    if !data.get().contains('@') {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_str::<Value>(data.get()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    collect(&value, &mut found);
    found
}

fn collect(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) => scan_text(s, found),
        Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
        Value::Object(fields) => fields.values().for_each(|v| collect(v, found)),
        _ => {}
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn scan_text(text: &str, found: &mut Vec<String>) {
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '@' && !prev.is_some_and(is_name_char);
        prev = Some(c);
        if !starts || found.len() >= MAX_MENTIONS {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = rest[..end].trim_end_matches('.');
        if (3..=32).contains(&name.len()) && !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(json: &str) -> Vec<String> {
        mentions(&RawValue::from_string(json.into()).unwrap())
    }

    #[test]
    fn finds_mentions_in_any_string_value() {
        assert_eq!(
            names(r#"{"text":"hi @alice and @bob_2.","meta":["cc @carol-x"]}"#),
            ["carol-x", "alice", "bob_2"]
        );
    }

    #[test]
    fn ignores_emails_keys_short_names_and_repeats() {
        assert_eq!(
            names(r#"{"@dave":"mail bob@example.com, @al @erin @erin"}"#),
            ["erin"]
        );
        assert!(names(r#"{"n":1}"#).is_empty());
    }

    #[test]
    fn caps_the_number_of_mentions() {
        let text: Vec<String> = (0..50).map(|i| format!("@user{i}")).collect();
        let json = serde_json::to_string(&json!({ "text": text.join(" ") })).unwrap();
        assert_eq!(names(&json).len(), MAX_MENTIONS);
    }
}
