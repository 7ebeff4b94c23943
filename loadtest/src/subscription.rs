//! One channel subscription of one connection, kept across reconnects: its correctness tracker,
//! whether its current subscribe has been acknowledged, and which offsets were replayed history
//! (excluded from latency: their delay measures the outage, not the delivery pipeline).

use switchboard_protocol::{ClientFrame, MessageFrame};

use crate::payload;
use crate::stats::Stats;
use crate::tracker::{Counts, Seen, Tracker};

pub struct Subscription {
    pub channel: String,
    /// Created at the first subscribe ack, from its offset; `None` until then.
    tracker: Option<Tracker>,
    /// Request id of the subscribe whose ack is still awaited.
    awaiting: Option<i64>,
    /// Offsets up to here were in the channel before the current subscribe (replay).
    replay_until: u64,
}

impl Subscription {
    pub fn new(channel: String) -> Subscription {
        Subscription {
            channel,
            tracker: None,
            awaiting: None,
            replay_until: 0,
        }
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
            stats.delivery(key, None, now_ns, false);
            return;
        };
        let stamp = payload::read(run_id, &m.data);
        let seen = tracker.observe(m.offset, stamp.map(|s| (s.publisher, s.seq)));
        let live = m.offset > self.replay_until && seen != Seen::Duplicate;
        stats.delivery(key, stamp.map(|s| s.sent_ns), now_ns, live);
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
