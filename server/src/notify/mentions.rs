//! `@username` mentions in chat messages.
//!
//! Every committed batch passes the [`Scanner`] on the node that stored it, which only looks for
//! an `@` in room messages and queues the few that have one. [`Worker::run`] then resolves the
//! names and notifies each mentioned user who may read the room, off the publish path.
//!
//! What must survive a crash is in storage: the same transaction that stored such a message
//! recorded it in the mention outbox ([`crate::store::mention_outbox`]). The queue here is the
//! fast path; the worker deletes a message's row once its notifications are stored, and every
//! node's worker sweeps for rows whose storing node died (or dropped them: a full queue) and
//! handles those. A message handled twice notifies nobody twice: each mention notification has an
//! idempotency key of its own (the message and the recipient).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::Value;
use switchboard_protocol::{ChannelKind, Event, Mentioned};
use tokio::sync::{Notify, Semaphore};

use super::{Actor, Notifier};
use crate::authz::Authz;
use crate::metrics;
use crate::rate::{per_minute, KeyedBudget};
use crate::store::mention_outbox::{self, LEASE};
use crate::store::{now_ms, Store, StoredMessage};

/// Distinct users one message can mention; more are ignored (anti-spam, bounded work).
pub(crate) const MAX_MENTIONS: usize = 20;
/// Payload bytes of messages waiting for mention processing, in all and per sender, before new
/// ones are dropped (counted in `switchboard_mentions_dropped_total`): the queue's memory bound.
/// A sender past its share loses only its own mentions.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;
const SENDER_BYTES: usize = 2 * 1024 * 1024;
/// Messages processed at once.
const CONCURRENCY: usize = 64;
/// How often a worker looks for outbox rows whose lease ran out, and how many it takes at once.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const SWEEP_BATCH: u32 = 100;
/// A mention notification carries the message's `data` only up to this size; past it, the
/// `excerpt` and the offset (to read it from history) stand for it.
pub(crate) const INLINE_DATA: usize = 1024;
/// Characters of the mentioning text an `excerpt` keeps.
pub(crate) const EXCERPT_CHARS: usize = 280;

/// The commit-side half: cheap, never blocks the writer. The last clone dropped closes the queue.
#[derive(Clone)]
pub(crate) struct Scanner(Arc<ScannerInner>);

struct ScannerInner {
    shared: Arc<Shared>,
}

impl Drop for ScannerInner {
    fn drop(&mut self) {
        self.shared.fair.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The receiving half, for [`Worker::run`].
pub(crate) struct Queue(Arc<Shared>);

struct Shared {
    fair: Mutex<Fair>,
    wake: Notify,
}

/// Messages waiting for mention processing, one queue per sender, served in turn: a sender who
/// floods waits behind their own messages, never in front of anyone else's.
#[derive(Default)]
struct Fair {
    senders: HashMap<String, (VecDeque<StoredMessage>, usize)>,
    turns: VecDeque<String>,
    bytes: usize,
    closed: bool,
}

impl Fair {
    fn push(&mut self, m: StoredMessage) -> bool {
        let size = m.data.get().len();
        if self.bytes + size > QUEUE_BYTES {
            return false;
        }
        let (queue, bytes) = self.senders.entry(m.from.clone()).or_default();
        if *bytes + size > SENDER_BYTES {
            return false;
        }
        if queue.is_empty() {
            self.turns.push_back(m.from.clone());
        }
        *bytes += size;
        self.bytes += size;
        queue.push_back(m);
        true
    }

    fn pop(&mut self) -> Option<StoredMessage> {
        let sender = self.turns.pop_front()?;
        let (queue, bytes) = self.senders.get_mut(&sender)?;
        let m = queue.pop_front()?;
        let size = m.data.get().len();
        *bytes -= size;
        self.bytes -= size;
        if queue.is_empty() {
            self.senders.remove(&sender);
        } else {
            self.turns.push_back(sender);
        }
        Some(m)
    }
}

pub(crate) fn channel() -> (Scanner, Queue) {
    let shared = Arc::new(Shared {
        fair: Mutex::new(Fair::default()),
        wake: Notify::new(),
    });
    (
        Scanner(Arc::new(ScannerInner {
            shared: shared.clone(),
        })),
        Queue(shared),
    )
}

impl crate::pipeline::Hook for Scanner {
    /// Queues the batch's room messages that may mention someone. One that does not fit the
    /// queue's bounds is left to the outbox sweep (its row stays): later, not lost.
    fn committed(&self, batch: &[StoredMessage]) {
        let inner = &self.0;
        for m in batch {
            if !mention_outbox::may_mention(&m.channel, m.data.get()) {
                continue;
            }
            if !inner.shared.fair.lock().push(m.clone()) {
                metrics::refused("mention_queue");
                continue;
            }
            inner.shared.wake.notify_one();
        }
    }
}

impl Queue {
    /// The next message to process; `None` once the queue is closed and empty.
    async fn next(&self) -> Option<StoredMessage> {
        loop {
            {
                let mut fair = self.0.fair.lock();
                if let Some(m) = fair.pop() {
                    return Some(m);
                }
                if fair.closed {
                    return None;
                }
            }
            // One worker: a wake-up sent while it was not waiting is kept as a permit.
            self.0.wake.notified().await;
        }
    }
}

/// How much of the lease a queued message must still have for this node to handle it: enough
/// to finish before another node's sweep may claim the row.
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a message stored at `ts_ms` is still this node's to handle at `now`. Its row's lease
/// runs [`LEASE`] from the commit, which comes after `ts_ms`, so this errs on the safe side.
fn still_leased(ts_ms: i64, now: i64) -> bool {
    now < ts_ms + (LEASE - LEASE_MARGIN).as_millis() as i64
}

/// The mention worker: resolves and notifies the mentions of queued messages, and of outbox
/// rows whose storing node did not get to them.
pub(crate) struct Worker {
    pub queue: Queue,
    pub store: Store,
    pub authz: Arc<Authz>,
    pub notifier: Arc<Notifier>,
    /// Messages with mentions per sender per minute (`SWITCHBOARD_MENTIONS_PER_MIN`).
    pub budget: KeyedBudget<String>,
}

impl Worker {
    pub(crate) fn new(
        queue: Queue,
        store: Store,
        authz: Arc<Authz>,
        notifier: Arc<Notifier>,
        per_sender_per_min: std::num::NonZeroU32,
    ) -> Worker {
        Worker {
            queue,
            store,
            authz,
            notifier,
            budget: KeyedBudget::new(per_minute(per_sender_per_min)),
        }
    }

    /// Processes queued messages, and every few seconds outbox rows whose lease ran out, until
    /// every [`Scanner`] is gone (the storage writers have exited); returns once the messages in
    /// hand are done. What is still queued then stays in the outbox for the next sweep, here
    /// after a restart or on another node. Each message is handled in a task of its own: one
    /// that fails (or panics) is logged and counted, and the others go on.
    pub(crate) async fn run(&mut self) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `next` pops before it waits, so a wake-up lost to the other branch loses nothing.
            // The sweep goes first when both are ready: it is due only every few seconds, and a
            // queue that never empties must not starve it of the rows other nodes left behind.
            let (messages, from_queue) = tokio::select! {
                biased;
                _ = sweep.tick() => {
                    let now = now_ms();
                    match self.store.claim_mentions(now, now + LEASE.as_millis() as i64, SWEEP_BATCH).await {
                        Ok(claimed) => (claimed, false),
                        Err(e) => {
                            tracing::warn!(error = ?e, "sweeping the mention outbox failed");
                            (Vec::new(), false)
                        }
                    }
                }
                next = self.queue.next() => match next {
                    Some(message) => (vec![message], true),
                    None => break,
                },
            };
            for message in messages {
                if from_queue && !still_leased(message.ts_ms, now_ms()) {
                    // Queued past its lease: a sweep (here or on another node) may claim the row
                    // now, so leave it to that one claim instead of handling it twice (and
                    // charging the sender's budget twice).
                    metrics::refused("mention_lease_lapsed");
                    continue;
                }
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                self.handle(message, permit);
            }
        }
        // Wait for the in-flight ones.
        let _ = permits.acquire_many(CONCURRENCY as u32).await;
    }

    /// Notifies one message's mentions (within its sender's budget) and then forgets its outbox
    /// row; a failure leaves the row for a later sweep.
    fn handle(&self, message: StoredMessage, permit: tokio::sync::OwnedSemaphorePermit) {
        let within_budget = self.budget.allow(&message.from);
        let (store, authz, notifier) = (
            self.store.clone(),
            self.authz.clone(),
            self.notifier.clone(),
        );
        tokio::spawn(async move {
            let notified = if within_budget {
                notify_mentioned(&message, &store, &authz, &notifier).await
            } else {
                // Stored and delivered, but it notifies nobody (docs/PROTOCOL.md, limits).
                metrics::refused("mentions_per_sender");
                metrics::MENTIONS_DROPPED.increment(1);
                Ok(())
            };
            match notified {
                Ok(()) => {
                    if let Err(e) = store.mention_done(&message.channel, message.offset).await {
                        tracing::warn!(error = ?e, channel = %message.channel, offset = message.offset, "forgetting a handled mention failed; a sweep will see it again");
                    }
                }
                Err(e) => {
                    metrics::worker_skipped("mentions");
                    tracing::warn!(error = ?e, channel = %message.channel, offset = message.offset, "mention notifications failed; a sweep retries them");
                }
            }
            drop(permit);
        });
    }
}

async fn notify_mentioned(
    message: &StoredMessage,
    store: &Store,
    authz: &Authz,
    notifier: &Notifier,
) -> anyhow::Result<()> {
    let (names, excerpt) = mentions_with_excerpt(&message.data);
    if names.is_empty() {
        return Ok(());
    }
    let inline = (message.data.get().len() <= INLINE_DATA).then_some(&*message.data);
    let Some(room) = ChannelKind::Room.key(&message.channel) else {
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
    for user in store.users_by_usernames(&names).await? {
        let user_id = user.id;
        if !authz.may_read_room(&user_id, room).await? {
            continue;
        }
        let event: Event<&RawValue, ()> = Event::Mention {
            room: room.to_owned(),
            channel: message.channel.to_string(),
            message: Mentioned {
                offset: message.offset,
                id: message.id.clone(),
                excerpt: excerpt.clone(),
                data: inline,
                deleted: false,
            },
        };
        // One key per message and recipient: a message handled twice (a sweep after a crash)
        // notifies nobody twice.
        let key = format!("mention:{}:{}", message.channel, message.offset);
        notifier
            .notify_once(&user_id, &from, Some(room), event, key)
            .await?;
    }
    Ok(())
}

/// The distinct usernames `@mentioned` in the string values of `data` (object fields in key order),
/// at most [`MAX_MENTIONS`], and an excerpt: the first string that mentions someone, cut to
/// [`EXCERPT_CHARS`] characters (with `…` when cut). A mention starts at an `@` that does not
/// follow a name character (so `bob@example.com` is not one) and takes the name characters after
/// it, less trailing dots.
fn mentions_with_excerpt(data: &RawValue) -> (Vec<String>, String) {
    if !data.get().contains('@') {
        return (Vec::new(), String::new());
    }
    let Ok(value) = serde_json::from_str::<Value>(data.get()) else {
        return (Vec::new(), String::new());
    };
    let mut found = Vec::new();
    let mut excerpt = None;
    collect(&value, &mut found, &mut excerpt);
    let excerpt = excerpt.map_or_else(String::new, |text: &str| {
        match text.char_indices().nth(EXCERPT_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    });
    (found, excerpt)
}

fn collect<'a>(value: &'a Value, found: &mut Vec<String>, excerpt: &mut Option<&'a str>) {
    match value {
        Value::String(s) => {
            let before = found.len();
            scan_text(s, found);
            if excerpt.is_none() && found.len() > before {
                *excerpt = Some(s);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, found, excerpt)),
        Value::Object(fields) => fields.values().for_each(|v| collect(v, found, excerpt)),
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

    #[test]
    fn a_message_queued_past_its_lease_is_left_to_the_sweep() {
        let stored = 1_000_000;
        assert!(still_leased(stored, stored));
        assert!(still_leased(stored, stored + 24_999));
        assert!(!still_leased(stored, stored + 25_000));
        assert!(!still_leased(stored, stored + LEASE.as_millis() as i64));
    }

    fn names(json: &str) -> Vec<String> {
        mentions_with_excerpt(&RawValue::from_string(json.into()).unwrap()).0
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
    fn the_excerpt_is_the_first_mentioning_text_cut_to_size() {
        let long = format!("@alice {}", "é".repeat(400));
        let json = serde_json::to_string(&json!({ "a": "no one", "b": long })).unwrap();
        let (names, excerpt) = mentions_with_excerpt(&RawValue::from_string(json).unwrap());
        assert_eq!(names, ["alice"]);
        assert_eq!(excerpt.chars().count(), EXCERPT_CHARS + 1);
        assert!(excerpt.starts_with("@alice ") && excerpt.ends_with('…'));
    }

    #[test]
    fn the_queue_serves_senders_in_turn_and_bounds_each_one() {
        let message = |from: &str, n: u64| StoredMessage {
            channel: "room:x".into(),
            offset: n,
            id: n.to_string(),
            from: from.into(),
            ts_ms: 0,
            data: RawValue::from_string(format!("\"@bob {}\"", "x".repeat(100_000))).unwrap(),
            published_at: None,
            state: None,
        };
        let mut fair = Fair::default();
        let mut accepted = 0;
        for n in 0..100 {
            accepted += fair.push(message("flooder", n)) as usize;
        }
        assert!(accepted < 30, "a sender's share is bounded ({accepted})");
        assert!(fair.push(message("alice", 1000)));
        let first_two: Vec<String> = (0..2).map(|_| fair.pop().unwrap().from).collect();
        assert!(
            first_two.contains(&"alice".to_owned()),
            "alice waits one turn, not behind the flood"
        );
    }

    #[test]
    fn caps_the_number_of_mentions() {
        let text: Vec<String> = (0..50).map(|i| format!("@user{i}")).collect();
        let json = serde_json::to_string(&json!({ "text": text.join(" ") })).unwrap();
        assert_eq!(names(&json).len(), MAX_MENTIONS);
    }
}
