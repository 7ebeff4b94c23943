//! `@username` mentions in chat messages.
//!
//! Every committed batch passes [`Scanner::scan`] on the node that stored it (so exactly one node
//! handles each message), which only looks for an `@` in room messages and queues the few that
//! have one. [`run`] then resolves the names and notifies each mentioned user who may read the
//! room, off the publish path.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Actor, Kind, Notifier};
use crate::authz::Authz;
use crate::metrics;
use crate::store::{Store, StoredMessage};

/// Distinct users one message can mention; more are ignored (anti-spam, bounded work).
pub const MAX_MENTIONS: usize = 20;
/// Messages with mentions waiting to be processed before new ones are dropped (counted in
/// `switchboard_mentions_dropped_total`).
const QUEUE: usize = 16_384;
/// Messages processed at once.
const CONCURRENCY: usize = 64;

/// The commit-side half: cheap, never blocks the writer.
#[derive(Clone)]
pub struct Scanner(mpsc::Sender<StoredMessage>);

pub fn channel() -> (Scanner, mpsc::Receiver<StoredMessage>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Scanner(tx), rx)
}

impl Scanner {
    pub fn scan(&self, batch: &[StoredMessage]) {
        for m in batch {
            let candidate = m.channel.starts_with("room:") && m.data.get().contains('@');
            if candidate && self.0.try_send(m.clone()).is_err() {
                metrics::MENTIONS_DROPPED.increment(1);
            }
        }
    }
}

/// Processes queued messages until `done` is cancelled, then what is still queued, and returns
/// once those are notified. (It holds a publisher handle, so it must end before the storage
/// writers can.)
pub async fn run(
    mut queue: mpsc::Receiver<StoredMessage>,
    store: Store,
    authz: Arc<Authz>,
    notifier: Arc<Notifier>,
    done: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let message = tokio::select! {
            m = queue.recv() => m,
            _ = done.cancelled() => queue.try_recv().ok(),
        };
        let Some(message) = message else { break };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (store, authz, notifier) = (store.clone(), authz.clone(), notifier.clone());
        tokio::spawn(async move {
            if let Err(e) = notify_mentioned(&message, &store, &authz, &notifier).await {
                tracing::warn!(error = %e, channel = %message.channel, offset = message.offset, "mention notifications failed");
            }
            drop(permit);
        });
    }
    // Wait for the in-flight ones.
    let _ = permits.acquire_many(CONCURRENCY as u32).await;
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
    for name in names {
        let Some(user) = store.user_by_username(&name).await? else {
            continue;
        };
        if !authz.may_read_room(&user.id, room).await? {
            continue;
        }
        let mut fields = Map::new();
        fields.insert("room".into(), room.into());
        fields.insert("channel".into(), (*message.channel).into());
        fields.insert(
            "message".into(),
            json!({ "offset": message.offset, "id": message.id, "data": message.data }),
        );
        notifier
            .notify(&user.id, &from, Some(room), Kind::Mention, fields)
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
