//! One channel subscription of one connection, kept across reconnects: its correctness tracker,
//! whether its current subscribe has been acknowledged, and which offsets were replayed history
//! (excluded from latency: their delay measures the outage, not the delivery pipeline).
//!
//! A `feed:` channel differs in two ways: each message's `data` is a feed item wrapping the post,
//! so the stamp is read from `data.post.data`; and its final offset is not a publish ack's offset
//! (posts are not published on it) but its offset at subscribe plus every post acknowledged in
//! the run ([`feed::POSTS`]), since the one author's every post reaches every follower's feed.
//!
//! A chat room with lifecycle actions on ([`Subscription::with_lifecycle`]) also carries
//! unstamped messages: each must be an edit, delete or reaction with a `target` below its own
//! offset ([`lifecycle::classify`]), and the kind and target the member's answer named where this
//! engine made the change (checked when received, or at the end if the answer came later).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use switchboard_protocol::{ClientFrame, MessageFrame};

use crate::lifecycle::{self, Check};
use crate::payload;
use crate::scenarios::feed;
use crate::stats::{Lane, Stats};
use crate::tracker::{Counts, Seen, Tracker};

pub struct Subscription {
    pub channel: String,
    /// Where its deliveries are counted.
    lane: Lane,
    /// A `feed:<user id>` channel, carrying posts.
    feed: bool,
    /// Created at the first subscribe ack, from its offset; `None` until then.
    tracker: Option<Tracker>,
    /// Request id of the subscribe whose ack is still awaited.
    awaiting: Option<i64>,
    /// Offsets up to here were in the channel before the current subscribe (replay).
    replay_until: u64,
    /// Unstamped messages must be lifecycle changes.
    lifecycle: bool,
    /// Changes received before this engine had the answer naming them: (offset, kind, target).
    unchecked: Vec<(u64, &'static str, u64)>,
}

impl Subscription {
    pub fn new(channel: String, lane: Lane) -> Subscription {
        Subscription {
            feed: channel.starts_with("feed:"),
            channel,
            lane,
            tracker: None,
            awaiting: None,
            replay_until: 0,
            lifecycle: false,
            unchecked: Vec::new(),
        }
    }

    /// Checks every unstamped message as a lifecycle change.
    pub fn with_lifecycle(mut self, on: bool) -> Subscription {
        self.lifecycle = on;
        self
    }

    /// The subscribe request to send on a fresh connection: resuming with `since` = the last
    /// offset received when this subscription already ran.
    pub fn request(&mut self, id: i64) -> ClientFrame {
        self.awaiting = Some(id);
        ClientFrame::Subscribe {
            id,
            channel: self.channel.clone(),
            since: self.tracker.as_ref().map(Tracker::resume_point),
        }
    }

    pub fn awaits(&self, id: i64) -> bool {
        self.awaiting == Some(id)
    }

    pub fn is_acked(&self) -> bool {
        self.awaiting.is_none() && self.tracker.is_some()
    }

    /// The subscribe ack: `offset` is the channel's last offset right now.
    pub fn on_ack(&mut self, offset: u64) {
        self.awaiting = None;
        self.replay_until = offset;
        self.tracker.get_or_insert_with(|| Tracker::new(offset));
    }

    pub fn on_message(&mut self, m: &MessageFrame, run_id: &str, stats: &Stats, key: u64) {
        let now_ns = payload::unix_nanos();
        if self.awaiting.is_some() {
            // The protocol sends nothing of a channel before its subscribe ack.
            stats.error("message_before_ack");
        }
        let Some(tracker) = self.tracker.as_mut() else {
            stats.delivery(self.lane, key, None, now_ns, false);
            return;
        };
        let data = if self.feed {
            let post = payload::post_data(&m.data);
            if post.is_none() {
                stats.error("feed_item_malformed");
            }
            post
        } else {
            Some(&m.data)
        };
        let stamp = data.and_then(|d| payload::read(run_id, d));
        let seen = tracker.observe(m.offset, stamp.map(|s| (s.publisher, s.seq)));
        let live = m.offset > self.replay_until && seen != Seen::Duplicate;
        stats.delivery(self.lane, key, stamp.map(|s| s.sent_ns), now_ns, live);
        if stamp.is_none() && self.lifecycle && seen != Seen::Duplicate {
            self.on_change(m, stats);
        }
    }

    /// An unstamped message of a room with lifecycle actions on.
    fn on_change(&mut self, m: &MessageFrame, stats: &Stats) {
        let mix = &stats.mix;
        let (kind, target) = match lifecycle::classify(m) {
            lifecycle::Seen::Change { kind, target } => (kind, target),
            lifecycle::Seen::Changed => {
                mix.delivered_changed.fetch_add(1, Relaxed);
                return;
            }
            lifecycle::Seen::Malformed => {
                mix.malformed.fetch_add(1, Relaxed);
                stats.error("lifecycle_malformed");
                return;
            }
            lifecycle::Seen::Unrecognised => {
                mix.unrecognised.fetch_add(1, Relaxed);
                stats.error("message_unrecognised");
                return;
            }
        };
        let counter = match kind {
            "edit" => &mix.delivered_edit,
            "delete" => &mix.delivered_delete,
            _ => &mix.delivered_reaction,
        };
        counter.fetch_add(1, Relaxed);
        match mix.check(&self.channel, m.offset, kind, target) {
            Check::Unknown => self.unchecked.push((m.offset, kind, target)),
            check => self.checked(check, stats),
        }
    }

    fn checked(&self, check: Check, stats: &Stats) {
        if check == Check::Mismatch {
            stats.error("lifecycle_mismatch");
        }
        stats.mix.checked(check);
    }

    /// Checks the changes received before their answers, now that every answer is in.
    pub fn check_late_changes(&mut self, stats: &Stats) {
        for (offset, kind, target) in std::mem::take(&mut self.unchecked) {
            let check = stats.mix.check(&self.channel, offset, kind, target);
            self.checked(check, stats);
        }
    }

    /// The offset this subscription must reach, given the run's final offsets: the channel's
    /// own entry, or for a feed, its offset at subscribe plus the posts acknowledged.
    pub fn final_offset(&self, finals: &BTreeMap<String, u64>) -> u64 {
        if self.feed {
            let posts = finals.get(feed::POSTS).copied().unwrap_or(0);
            self.tracker.as_ref().map_or(0, |t| t.start() + posts)
        } else {
            finals.get(&self.channel).copied().unwrap_or(0)
        }
    }

    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Every offset up to here has arrived (0 before the first ack).
    pub fn contiguous(&self) -> u64 {
        self.tracker.as_ref().map_or(0, Tracker::contiguous)
    }

    pub fn has_started(&self) -> bool {
        self.tracker.is_some()
    }

    /// Counts against the channel's final offset; `None` if the subscription never started.
    pub fn finish(&self, final_offset: u64) -> Option<Counts> {
        self.tracker.as_ref().map(|t| t.finish(final_offset))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::latency::{Latency, Window};
    use crate::payload::{make, unix_nanos, Stamp};

    const RUN: &str = "r1";
    const FEED: &str = "feed:lt-1-r1";

    /// A feed message at `offset` carrying the author's post number `seq`.
    fn feed_message(offset: u64, seq: u64) -> MessageFrame {
        let stamp = Stamp {
            publisher: 0,
            seq,
            sent_ns: unix_nanos(),
        };
        let id = format!("post-{seq}");
        item_message(
            offset,
            json!({
                "kind": "post",
                "post": {
                    "id": id,
                    "author": {"id": "author", "username": "lt-author-r1"},
                    "data": make(RUN, stamp, 100),
                    "ts": 1_764_300_000_000u64,
                    "reply_to": null,
                },
            }),
        )
    }

    fn item_message(offset: u64, data: Value) -> MessageFrame {
        MessageFrame {
            channel: FEED.into(),
            offset,
            id: format!("m{offset}"),
            from: "author".into(),
            ts: "2026-11-28T10:21:09.123Z".into(),
            data,
            ..Default::default()
        }
    }

    fn stats() -> Stats {
        let stats = Stats::new();
        stats.set_window(Window {
            start_ns: 1,
            end_ns: u64::MAX,
        });
        stats
    }

    /// A feed that held `start` items at subscribe receives `(offset, post seq)` deliveries
    /// while the run acknowledges `posts` posts.
    fn feed(start: u64, deliveries: &[(u64, u64)], posts: u64) -> (Counts, Stats) {
        let stats = stats();
        let mut sub = Subscription::new(FEED.into(), Lane::Main);
        let _ = sub.request(1);
        sub.on_ack(start);
        for &(offset, seq) in deliveries {
            sub.on_message(&feed_message(offset, seq), RUN, &stats, 1);
        }
        let finals = BTreeMap::from([(feed::POSTS.to_owned(), posts)]);
        let counts = sub.finish(sub.final_offset(&finals)).expect("started");
        (counts, stats)
    }

    #[test]
    fn a_clean_feed_expects_every_post_and_times_it_through_the_item() {
        let (c, stats) = feed(0, &[(1, 1), (2, 2), (3, 3)], 3);
        assert_eq!((c.delivered, c.expected), (3, 3));
        assert!(!c.is_faulty(), "{c:?}");
        // Latency comes from the stamp inside `data.post.data`.
        let tally = stats.tally(0.0, None);
        assert_eq!(Latency::try_from(&tally.main.latency).unwrap().count(), 3);
        assert_eq!(tally.main.delivered_in_window, 3);
        assert!(tally.errors.is_empty(), "{:?}", tally.errors);
        // A feed that already had items (a reused run id) expects only the run's posts.
        let (c, _) = feed(5, &[(6, 1), (7, 2)], 2);
        assert_eq!((c.delivered, c.expected, c.lost), (2, 2, 0));
    }

    #[test]
    fn lost_duplicated_and_reordered_posts_are_caught() {
        // Post 2 never reached this feed.
        let (c, _) = feed(0, &[(1, 1), (2, 3)], 3);
        assert_eq!((c.expected, c.lost), (3, 1));
        // The last posts never arrived before the run ended.
        let (c, _) = feed(0, &[(1, 1)], 3);
        assert_eq!(c.lost, 2);
        // Fanned out twice.
        let (c, _) = feed(0, &[(1, 1), (2, 2), (2, 2), (3, 3)], 3);
        assert_eq!((c.duplicates, c.lost), (1, 0));
        // Delivered out of offset order.
        let (c, _) = feed(0, &[(1, 1), (3, 3), (2, 2)], 3);
        assert_eq!((c.out_of_order, c.seq_regressions, c.lost), (1, 1, 0));
        // Offsets in order, but the fan-out wrote the posts out of post order.
        let (c, _) = feed(0, &[(1, 2), (2, 1)], 2);
        assert_eq!((c.out_of_order, c.seq_regressions), (0, 1));
        assert!(c.is_faulty());
    }

    #[test]
    fn a_feed_message_that_is_not_a_post_is_an_error() {
        let stats = stats();
        let mut sub = Subscription::new(FEED.into(), Lane::Main);
        let _ = sub.request(1);
        sub.on_ack(0);
        sub.on_message(&item_message(1, json!({"text": "hi"})), RUN, &stats, 1);
        let tally = stats.tally(0.0, None);
        assert_eq!(tally.errors.get("feed_item_malformed"), Some(&1));
        // Still tracked by offset.
        assert_eq!(sub.contiguous(), 1);
    }

    #[test]
    fn other_channels_use_their_own_final_and_lane() {
        let stats = stats();
        let mut sub = Subscription::new("room:x".into(), Lane::Probe);
        let _ = sub.request(1);
        sub.on_ack(2);
        let mut m = feed_message(3, 1);
        m.channel = "room:x".into();
        m.data = make(
            RUN,
            Stamp {
                publisher: 1,
                seq: 1,
                sent_ns: unix_nanos(),
            },
            50,
        );
        sub.on_message(&m, RUN, &stats, 1);
        let finals = BTreeMap::from([("room:x".to_owned(), 4), (feed::POSTS.to_owned(), 9)]);
        assert_eq!(sub.final_offset(&finals), 4);
        let c = sub.finish(4).unwrap();
        assert_eq!((c.expected, c.lost), (2, 1));
        let tally = stats.tally(0.0, None);
        assert_eq!(Latency::try_from(&tally.probe.latency).unwrap().count(), 1);
        assert_eq!(Latency::try_from(&tally.main.latency).unwrap().count(), 0);
    }
}
