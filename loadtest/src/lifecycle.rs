//! The `chat` scenario's mix (`--lifecycle-every N`, `--typing`): message lifecycle actions and
//! typing signals among the publishes.
//!
//! **Lifecycle.** After every Nth acknowledged publish, a member starts a *chain* on that message
//! of its own, over HTTP with its own token, one request after the other: edit
//! (`PATCH .../messages/{offset}`, 201), react (`POST .../reactions`, 201), unreact
//! (`DELETE .../reactions/{emoji}`, 200) and delete (`DELETE .../messages/{offset}`, 200). Each
//! change is a message of its own in the room with its own offset, which every subscriber must
//! receive exactly once and in order like any other: the offsets answered count towards the
//! channel's final offset, so the usual trackers check them. A chain stops at its first refusal
//! (the next step would depend on it). Chains run concurrently with the member's publishes and
//! with each other; none starts once publishing has stopped, and the member's publisher is not
//! done (final offsets are not collected) until its chains have ended.
//!
//! A lifecycle message carries no load-test stamp; a subscriber checks that it has a lifecycle
//! `data.kind` and a `target` below its own offset ([`classify`]), and, where this engine made
//! the change, that kind and target are the ones the answer was for ([`Expected`]).
//!
//! A refused action (any status but the expected one) fails the run, except 429: the server's
//! HTTP write throttle (`SWITCHBOARD_HTTP_WRITE_RATE`, default 20/s per user) or the user's
//! publish budget refusing more than the planned rate allows is the server working as
//! configured, so throttled actions are counted and noted but are not a failure.
//!
//! **Typing.** Each member sends `{"type":"typing","channel":...,"id":n}` every
//! [`TYPING_EVERY`] while publishing (the server allows one per channel per 2 s per connection),
//! with an id so the `ack` (or refusal) can be counted; every subscriber of the room, the typer
//! included, should receive a `typing` frame, which has no offset and is never stored.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_protocol::MessageFrame;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use crate::payload::unix_nanos;

/// How often a member sends a typing signal: above the server's one per 2 s per channel, so
/// none is refused even with timer jitter.
pub const TYPING_EVERY: Duration = Duration::from_millis(2500);
/// The reaction added and removed (sent percent-encoded in the unreact path).
pub const EMOJI: &str = "👍";
/// HTTP requests per chain.
pub const CHAIN_LEN: u64 = Action::CHAIN.len() as u64;
/// The server's default HTTP write rate per user (`SWITCHBOARD_HTTP_WRITE_RATE`).
pub const SERVER_HTTP_WRITE_RATE: f64 = 20.0;

/// What a run mixes into a chat member's publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mix {
    /// A lifecycle chain after every Nth acknowledged publish (0: none).
    pub lifecycle_every: u64,
    /// Send typing signals.
    pub typing: bool,
}

impl Mix {
    pub fn is_off(&self) -> bool {
        self.lifecycle_every == 0 && !self.typing
    }

    /// Lifecycle requests per second per member at `rate` publishes per second.
    pub fn lifecycle_rate(&self, rate: f64) -> f64 {
        match self.lifecycle_every {
            0 => 0.0,
            n => rate / n as f64 * CHAIN_LEN as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Edit,
    React,
    Unreact,
    Delete,
}

impl Action {
    /// One chain, in order.
    pub const CHAIN: [Action; 4] = [Action::Edit, Action::React, Action::Unreact, Action::Delete];

    pub fn name(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::React => "react",
            Action::Unreact => "unreact",
            Action::Delete => "delete",
        }
    }

    /// The `data.kind` of the message the change makes.
    pub fn kind(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::React | Action::Unreact => "reaction",
            Action::Delete => "delete",
        }
    }

    /// The status of a change that was stored.
    fn stored_status(self) -> StatusCode {
        match self {
            Action::Edit | Action::React => StatusCode::CREATED,
            Action::Unreact | Action::Delete => StatusCode::OK,
        }
    }

    fn request(
        self,
        http: &reqwest::Client,
        room_url: &str,
        target: u64,
    ) -> reqwest::RequestBuilder {
        let message = format!("{room_url}/messages/{target}");
        match self {
            Action::Edit => http
                .request(Method::PATCH, message)
                .json(&json!({"data": {"text": "edited by the load tester"}})),
            Action::React => http
                .post(format!("{message}/reactions"))
                .json(&json!({ "emoji": EMOJI })),
            Action::Unreact => {
                http.delete(format!("{message}/reactions/{}", percent_encode(EMOJI)))
            }
            Action::Delete => http.delete(message),
        }
    }
}

/// How the server answered one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Stored as a message of its own at this offset.
    Stored(u64),
    /// A 2xx without an offset: nothing changed (the reaction was there already).
    Unchanged,
    /// Any other status.
    Refused(u16),
    /// No answer (connection failure or timeout); the value is the error count key.
    Failed(&'static str),
}

impl Answer {
    fn from_response(action: Action, status: StatusCode, body: &[u8]) -> Answer {
        if !status.is_success() {
            return Answer::Refused(status.as_u16());
        }
        let offset = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("offset").and_then(Value::as_u64));
        match offset {
            Some(offset) if status == action.stored_status() => Answer::Stored(offset),
            // A success with another status than documented is not what clients rely on.
            Some(_) => Answer::Refused(status.as_u16()),
            None => Answer::Unchanged,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Answer::Stored(_) | Answer::Unchanged)
    }
}

/// One action's answer, as the connection task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub action: Action,
    /// The offset of the member's message it acted on.
    pub target: u64,
    pub answer: Answer,
    /// Request → response.
    pub took: Duration,
    /// When the request was sent, Unix nanoseconds (whether it falls in the window).
    pub sent_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Answered(Reply),
    /// A chain ended (all its actions answered, or stopped at a refusal).
    ChainDone,
}

/// One member's lifecycle chains: when to start one, the requests, their answers.
pub struct Lifecycle {
    http: reqwest::Client,
    /// `<base>/api/v1/rooms/<room name>`.
    room_url: String,
    every: u64,
    /// Acknowledged publishes so far.
    acked: u64,
    in_flight: usize,
    tx: UnboundedSender<Event>,
    rx: UnboundedReceiver<Event>,
}

impl Lifecycle {
    /// Chains on messages of `channel` (a `room:`), every `every`th ack, over `base`
    /// (`http://host:port`).
    pub fn new(http: reqwest::Client, base: &str, channel: &str, every: u64) -> Lifecycle {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = channel.strip_prefix("room:").unwrap_or(channel);
        Lifecycle {
            http,
            room_url: format!("{base}/api/v1/rooms/{room}"),
            every: every.max(1),
            acked: 0,
            in_flight: 0,
            tx,
            rx,
        }
    }

    /// Counts one acknowledged publish; true when it is an Nth, whose chain is due.
    pub fn is_due(&mut self) -> bool {
        self.acked += 1;
        self.acked.is_multiple_of(self.every)
    }

    /// Chains started and not yet ended.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Starts a chain on the member's message at `target`, with the bearer `token`.
    pub fn start(&mut self, target: u64, token: String) {
        self.in_flight += 1;
        let (http, room_url, tx) = (self.http.clone(), self.room_url.clone(), self.tx.clone());
        tokio::spawn(async move {
            for action in Action::CHAIN {
                let sent_ns = unix_nanos();
                let started = Instant::now();
                let answer = match action
                    .request(&http, &room_url, target)
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(body) => Answer::from_response(action, status, &body),
                            Err(_) => Answer::Failed("lifecycle_failed"),
                        }
                    }
                    Err(e) if e.is_timeout() => Answer::Failed("lifecycle_timeout"),
                    Err(_) => Answer::Failed("lifecycle_failed"),
                };
                let reply = Reply {
                    action,
                    target,
                    answer,
                    took: started.elapsed(),
                    sent_ns,
                };
                // The connection task may be gone (the run ended): nobody is waiting then.
                if tx.send(Event::Answered(reply)).is_err() || !answer.is_ok() {
                    break;
                }
            }
            let _ = tx.send(Event::ChainDone);
        });
    }

    /// The next answer or chain end. Cancel-safe (used inside `select!`).
    pub async fn next(&mut self) -> Event {
        match self.rx.recv().await {
            Some(event) => {
                if event == Event::ChainDone {
                    self.in_flight -= 1;
                }
                event
            }
            // Never: this holds a sender itself.
            None => std::future::pending().await,
        }
    }
}

/// One member's typing signals: when the next is due, which are awaiting their `ack`.
pub struct Typist {
    pub channel: String,
    every: Duration,
    next: Option<Instant>,
    stopped: bool,
    /// Request ids of signals sent on the current connection and not yet answered.
    pending: HashSet<i64>,
}

impl Typist {
    pub fn new(channel: String, every: Duration) -> Typist {
        Typist {
            channel,
            every,
            next: None,
            stopped: false,
            pending: HashSet::new(),
        }
    }

    /// Starts at `from`, offset by `spread` (0..1) of the period so members do not all type in
    /// the same instant.
    pub fn start(&mut self, from: Instant, spread: f64) {
        if self.next.is_none() && !self.stopped {
            self.next = Some(from + self.every.mul_f64(spread.fract()));
        }
    }

    pub fn stop(&mut self) {
        self.stopped = true;
        self.next = None;
    }

    pub fn wake_at(&self) -> Option<Instant> {
        self.next
    }

    /// True when a signal is due at `now` (and schedules the next a full period later, so two
    /// signals are never closer than the period, even after falling behind).
    pub fn due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(next) if next <= now => {
                self.next = Some(now.max(next) + self.every);
                true
            }
            _ => false,
        }
    }

    pub fn sent(&mut self, id: i64) {
        self.pending.insert(id);
    }

    /// An `ack` or error for request `id`: true when it was one of these signals.
    pub fn answered(&mut self, id: i64) -> bool {
        self.pending.remove(&id)
    }

    /// The connection broke: what was sent on it is answered never.
    pub fn connection_lost(&mut self) {
        self.pending.clear();
    }
}

/// A lifecycle message as a subscriber sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An edit, delete or reaction on `target`, below its own offset.
    Change { kind: &'static str, target: u64 },
    /// A message shown as it is now in a `since` replay: edited (`edited_at`, `data` the latest
    /// version) or deleted (`data: null`).
    Changed,
    /// A lifecycle `data.kind` with no valid `target` (missing, or not below its own offset).
    Malformed,
    /// Neither stamped by this run nor a lifecycle message (a typing signal stored as a
    /// message would be one).
    Unrecognised,
}

/// What an unstamped message of a chat room with the mix on is.
pub fn classify(m: &MessageFrame) -> Seen {
    if m.deleted || m.edited_at.is_some() {
        return Seen::Changed;
    }
    let kind = match m.data.get("kind").and_then(Value::as_str) {
        Some("edit") => "edit",
        Some("delete") => "delete",
        Some("reaction") => "reaction",
        _ => return Seen::Unrecognised,
    };
    match m.data.get("target").and_then(Value::as_u64) {
        Some(target) if target < m.offset => Seen::Change { kind, target },
        _ => Seen::Malformed,
    }
}

/// The changes this engine's members made, by channel and offset, from the answers: what the
/// message at that offset must be.
#[derive(Debug, Default)]
pub struct Expected(HashMap<String, HashMap<u64, (&'static str, u64)>>);

/// How a change seen compares with the answer for its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Matches,
    Mismatch,
    /// Not (yet) answered in this engine: another engine's member made it, or the answer is
    /// still on its way.
    Unknown,
}

impl Expected {
    pub fn insert(&mut self, channel: &str, offset: u64, kind: &'static str, target: u64) {
        match self.0.get_mut(channel) {
            Some(m) => {
                m.insert(offset, (kind, target));
            }
            None => {
                self.0.insert(
                    channel.to_owned(),
                    HashMap::from([(offset, (kind, target))]),
                );
            }
        }
    }

    pub fn check(&self, channel: &str, offset: u64, kind: &str, target: u64) -> Check {
        match self.0.get(channel).and_then(|m| m.get(&offset)) {
            Some(&(k, t)) if k == kind && t == target => Check::Matches,
            Some(_) => Check::Mismatch,
            None => Check::Unknown,
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for a path segment).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: u64, data: Value) -> MessageFrame {
        MessageFrame {
            channel: "room:x".into(),
            offset,
            id: format!("m{offset}"),
            from: "lt-1-r".into(),
            ts: "2026-11-28T10:21:09.123Z".into(),
            data,
            ..Default::default()
        }
    }

    #[test]
    fn every_nth_ack_starts_a_chain() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut l = Lifecycle {
            http: reqwest::Client::new(),
            room_url: String::new(),
            every: 3,
            acked: 0,
            in_flight: 0,
            tx,
            rx,
        };
        let due: Vec<bool> = (0..7).map(|_| l.is_due()).collect();
        assert_eq!(due, [false, false, true, false, false, true, false]);
        let room = Lifecycle::new(reqwest::Client::new(), "http://h:1", "room:lt-chat-r-3", 1);
        assert_eq!(room.room_url, "http://h:1/api/v1/rooms/lt-chat-r-3");
        assert_eq!(percent_encode(EMOJI), "%F0%9F%91%8D");
        assert_eq!(percent_encode("a+b"), "a%2Bb");
        let mix = Mix {
            lifecycle_every: 4,
            typing: false,
        };
        assert_eq!(mix.lifecycle_rate(4.0), 4.0);
        assert!(Mix::default().is_off());
    }

    #[test]
    fn typing_signals_keep_their_distance() {
        let t0 = Instant::now();
        let every = Duration::from_millis(2500);
        let mut t = Typist::new("room:x".into(), every);
        assert!(!t.due(t0), "not started");
        t.start(t0, 0.5);
        assert_eq!(t.wake_at(), Some(t0 + every / 2));
        assert!(!t.due(t0));
        // Due late (the connection was busy): the next is a full period after now.
        let late = t0 + Duration::from_secs(4);
        assert!(t.due(late));
        assert_eq!(t.wake_at(), Some(late + every));
        assert!(!t.due(late + Duration::from_secs(1)));
        t.sent(7);
        assert!(t.answered(7));
        assert!(!t.answered(7), "answered once");
        t.sent(8);
        t.connection_lost();
        assert!(!t.answered(8));
        t.stop();
        assert_eq!(t.wake_at(), None);
        assert!(!t.due(late + every * 4));
    }

    #[test]
    fn answers_are_read_from_status_and_offset() {
        let ok = |a, s: u16, body: &str| {
            Answer::from_response(a, StatusCode::from_u16(s).unwrap(), body.as_bytes())
        };
        assert_eq!(ok(Action::Edit, 201, r#"{"offset":9}"#), Answer::Stored(9));
        assert_eq!(
            ok(Action::React, 201, r#"{"offset":10}"#),
            Answer::Stored(10)
        );
        assert_eq!(ok(Action::React, 200, "{}"), Answer::Unchanged);
        assert_eq!(
            ok(Action::Unreact, 200, r#"{"offset":11}"#),
            Answer::Stored(11)
        );
        assert_eq!(
            ok(Action::Delete, 200, r#"{"offset":12}"#),
            Answer::Stored(12)
        );
        assert_eq!(
            ok(Action::Delete, 201, r#"{"offset":12}"#),
            Answer::Refused(201)
        );
        assert_eq!(ok(Action::Edit, 429, "{}"), Answer::Refused(429));
        assert_eq!(ok(Action::Edit, 403, "not json"), Answer::Refused(403));
        assert!(!Answer::Failed("lifecycle_timeout").is_ok());
    }

    #[test]
    fn lifecycle_messages_are_told_from_others() {
        let edit = message(10, json!({"kind":"edit","target":7,"data":{"text":"x"}}));
        assert_eq!(
            classify(&edit),
            Seen::Change {
                kind: "edit",
                target: 7
            }
        );
        let reaction = json!({"kind":"reaction","target":7,"emoji":EMOJI,"op":"add","count":1});
        assert!(matches!(
            classify(&message(11, reaction)),
            Seen::Change {
                kind: "reaction",
                ..
            }
        ));
        // A target at or above its own offset.
        let bad = message(12, json!({"kind":"delete","target":12}));
        assert_eq!(classify(&bad), Seen::Malformed);
        assert_eq!(
            classify(&message(13, json!({"kind":"delete"}))),
            Seen::Malformed
        );
        // Anything else unstamped.
        assert_eq!(
            classify(&message(14, json!({"text":"hi"}))),
            Seen::Unrecognised
        );
        assert_eq!(
            classify(&message(15, json!({"kind":"typing"}))),
            Seen::Unrecognised
        );
        // A replayed message as it is now.
        let mut gone = message(3, Value::Null);
        gone.deleted = true;
        assert_eq!(classify(&gone), Seen::Changed);

        let mut expected = Expected::default();
        expected.insert("room:x", 10, "edit", 7);
        assert_eq!(expected.check("room:x", 10, "edit", 7), Check::Matches);
        assert_eq!(expected.check("room:x", 10, "delete", 7), Check::Mismatch);
        assert_eq!(expected.check("room:x", 10, "edit", 6), Check::Mismatch);
        assert_eq!(expected.check("room:x", 11, "edit", 7), Check::Unknown);
        assert_eq!(expected.check("room:y", 10, "edit", 7), Check::Unknown);
    }
}
