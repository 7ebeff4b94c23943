//! The publishing side of one connection: paces publishes at its rate, stamps each payload, and
//! matches acks (or errors) to requests to time publish→ack and record the channel's offsets.
//!
//! How a due publish travels is the connection's business ([`Via`]): a `publish` frame, or an
//! HTTP post. Posts go one at a time, and since a 201 carries no offset, the number of posts
//! acknowledged so far is reported instead.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::payload::{self, Stamp};
use crate::scenarios::{PublishPlan, Via};
use crate::stats::{Lane, Stats};

/// How far behind schedule a publisher may fall and still catch up by publishing the missed
/// messages at once; beyond it, it skips ahead. A second's worth of messages stays within the
/// server's default burst allowance (400) at any rate the default limit (200/s) accepts, so
/// catching up keeps the total rate without tripping `rate_limited`.
const MAX_LAG: Duration = Duration::from_secs(1);

/// A publish that is due now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    /// This publisher's sequence number for it, from 1 (also the request id of a post).
    pub seq: u64,
    /// The stamped payload.
    pub data: Value,
    /// The stamp's send time, Unix nanoseconds.
    pub sent_ns: u64,
}

pub struct Publisher {
    plan: PublishPlan,
    lane: Lane,
    period: Duration,
    next_due: Option<Instant>,
    stopped: bool,
    seq: u64,
    /// Requests awaiting their ack: send time and whether it was sent inside the window.
    pending: HashMap<i64, (Instant, bool)>,
    /// When the pending acks stop being waited for (set when publishing stops).
    drain_deadline: Option<Instant>,
    /// Counted in `Stats::publishers_done` already.
    done: bool,
    /// Posts acknowledged so far ([`Via::Post`]).
    posts_acked: u64,
    /// Work started from this publisher's acks and not yet finished (the chat mix's lifecycle
    /// chains, whose offsets count towards the channel's final offset): it is not done before.
    held: usize,
}

impl Publisher {
    pub fn new(plan: PublishPlan, lane: Lane) -> Publisher {
        let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
        Publisher {
            plan,
            lane,
            period,
            next_due: None,
            stopped: false,
            seq: 0,
            pending: HashMap::new(),
            drain_deadline: None,
            done: false,
            posts_acked: 0,
            held: 0,
        }
    }

    pub fn via(&self) -> Via {
        self.plan.via
    }

    pub fn channel(&self) -> &str {
        &self.plan.channel
    }

    /// A post is in flight: the next waits for its answer, so that posts are stored in the order
    /// they were sent (concurrent requests may be stored in either order).
    fn waiting(&self) -> bool {
        self.plan.via == Via::Post && !self.pending.is_empty()
    }

    /// Starts publishing at `from`, offset by a fraction of the period so publishers of one
    /// channel do not all fire in the same instant.
    pub fn start(&mut self, from: Instant) {
        if self.next_due.is_none() && !self.stopped {
            let spread = (self.plan.publisher as f64 * 0.618_034).fract();
            self.next_due = Some(from + self.period.mul_f64(spread));
        }
    }

    /// Publishing has stopped (the window ended).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// How much work started from its acks is still running; see [`Publisher::settle`].
    pub fn hold(&mut self, held: usize) {
        self.held = held;
    }

    pub fn stop(&mut self, drain: Duration) {
        if !self.stopped {
            self.stopped = true;
            self.next_due = None;
            self.drain_deadline = Some(Instant::now() + drain);
        }
    }

    /// When this publisher next needs attention (a publish due, or the ack drain deadline).
    /// While a post is in flight, its answer is what it waits for.
    pub fn wake_at(&self) -> Option<Instant> {
        match self.next_due {
            Some(_) if self.waiting() => None,
            Some(due) => Some(due),
            None if self.stopped && !self.done => self.drain_deadline,
            None => None,
        }
    }

    /// When waiting for outstanding acks ends (only once stopped and not yet done).
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.filter(|_| self.stopped && !self.done)
    }

    /// The publish due now, if any (advancing the schedule).
    pub fn due(&mut self, run_id: &str, size: usize) -> Option<Due> {
        if self.waiting() {
            return None;
        }
        let now = Instant::now();
        let due = self.next_due.filter(|&d| d <= now)?;
        let next = due + self.period;
        self.next_due = Some(if now.duration_since(next) > MAX_LAG {
            now
        } else {
            next
        });
        self.seq += 1;
        let stamp = Stamp {
            publisher: self.plan.publisher,
            seq: self.seq,
            sent_ns: payload::unix_nanos(),
        };
        Some(Due {
            seq: self.seq,
            data: payload::make(run_id, stamp, size),
            sent_ns: stamp.sent_ns,
        })
    }

    /// Records a publish that was just written to the socket (or whose post just started).
    pub fn sent(&mut self, id: i64, sent_ns: u64, stats: &Stats) {
        let in_window = stats.window().contains(sent_ns);
        self.pending.insert(id, (Instant::now(), in_window));
        let lane = stats.lane(self.lane);
        lane.sent.fetch_add(1, Relaxed);
        if in_window {
            lane.sent_in_window.fetch_add(1, Relaxed);
        }
    }

    /// An ack for request `id` (a post's 201: no offset); false when it was not one of this
    /// publisher's.
    pub fn on_ack(&mut self, id: i64, offset: Option<u64>, stats: &Stats, key: u64) -> bool {
        let Some((sent, in_window)) = self.pending.remove(&id) else {
            return false;
        };
        let lane = stats.lane(self.lane);
        lane.acked.fetch_add(1, Relaxed);
        match (self.plan.via, offset) {
            (Via::Socket, Some(offset)) => stats.note_acked(&self.plan.channel, offset),
            (Via::Socket, None) => stats.error("publish_ack_without_offset"),
            (Via::Post, _) => {
                self.posts_acked += 1;
                stats.note_acked(&self.plan.channel, self.posts_acked);
            }
        }
        if in_window {
            lane.ack_latency(key, sent.elapsed().as_micros() as u64);
        }
        true
    }

    /// An error reply for request `id`; false when it was not one of this publisher's.
    pub fn on_error(&mut self, id: i64) -> bool {
        self.pending.remove(&id).is_some()
    }

    /// The connection broke: outstanding publishes will never be acked on it. Posts do not
    /// travel on it and are still answered.
    pub fn connection_lost(&mut self, stats: &Stats) {
        if self.plan.via == Via::Socket {
            self.give_up(stats);
        }
    }

    /// Outstanding publishes will not be waited for any longer.
    fn give_up(&mut self, stats: &Stats) {
        stats.errors("publish_unacked", self.pending.len() as u64);
        self.pending.clear();
    }

    /// Once stopped, and every ack is in and no held work is left (or the drain deadline
    /// passed), counts this publisher as done so the engine can collect final offsets.
    pub fn settle(&mut self, stats: &Stats) {
        if !self.stopped || self.done {
            return;
        }
        let expired = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
        if (self.pending.is_empty() && self.held == 0) || expired {
            self.give_up(stats);
            stats.mix.unanswered.fetch_add(self.held as u64, Relaxed);
            self.done = true;
            stats.publishers_done.fetch_add(1, Relaxed);
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Counts this publisher done no matter what (its connection task is ending).
    pub fn abandon(&mut self, stats: &Stats) {
        self.stopped = true;
        self.drain_deadline = Some(Instant::now());
        self.settle(stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::feed::POSTS;

    fn plan(via: Via) -> PublishPlan {
        PublishPlan {
            channel: POSTS.to_owned(),
            publisher: 0,
            // A period of 1 ms: a few milliseconds make several publishes due.
            rate: 1000.0,
            via,
        }
    }

    fn wait_a_few_periods() {
        std::thread::sleep(Duration::from_millis(5));
    }

    #[test]
    fn posts_go_one_at_a_time_and_report_how_many_were_acked() {
        let stats = Stats::new();
        let mut p = Publisher::new(plan(Via::Post), Lane::Main);
        p.start(Instant::now());
        let first = p.due("r", 50).expect("due at once");
        assert_eq!(first.seq, 1);
        assert_eq!(payload::read("r", &first.data).map(|s| s.seq), Some(1));
        p.sent(1, first.sent_ns, &stats);
        wait_a_few_periods();
        assert_eq!(p.due("r", 50), None, "one post in flight at a time");
        assert_eq!(p.wake_at(), None, "waiting for the answer, not a timer");
        // The socket breaking does not touch posts, which are still answered.
        p.connection_lost(&stats);
        assert!(p.on_ack(1, None, &stats, 0));
        assert_eq!(stats.max_acked().get(POSTS), Some(&1));
        assert!(p.wake_at().is_some_and(|t| t <= Instant::now()));

        let second = p
            .due("r", 50)
            .expect("the next once the previous is answered");
        assert_eq!(second.seq, 2);
        p.sent(2, second.sent_ns, &stats);
        assert!(p.on_error(2), "refused: not stored");
        let third = p.due("r", 50).expect("due");
        p.sent(3, third.sent_ns, &stats);
        assert!(p.on_ack(3, None, &stats, 0));
        assert!(!p.on_ack(3, None, &stats, 0), "answered already");
        // The count of posts acknowledged, not the last sequence number.
        assert_eq!(stats.max_acked().get(POSTS), Some(&2));
        let lane = &stats.main;
        assert_eq!((lane.sent.load(Relaxed), lane.acked.load(Relaxed)), (3, 2));
        let errors = stats.tally(0.0, None).errors;
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn socket_publishes_are_pipelined_and_acked_with_offsets() {
        let stats = Stats::new();
        let mut p = Publisher::new(
            PublishPlan {
                channel: "room:x".into(),
                ..plan(Via::Socket)
            },
            Lane::Probe,
        );
        p.start(Instant::now());
        let first = p.due("r", 50).expect("due at once");
        p.sent(7, first.sent_ns, &stats);
        wait_a_few_periods();
        let second = p.due("r", 50).expect("no waiting for the ack");
        p.sent(8, second.sent_ns, &stats);
        assert!(p.on_ack(8, Some(12), &stats, 0));
        assert!(p.on_ack(7, Some(11), &stats, 0));
        assert_eq!(stats.max_acked().get("room:x"), Some(&12));
        // Counted in its lane only.
        assert_eq!(stats.probe.acked.load(Relaxed), 2);
        assert_eq!(stats.main.acked.load(Relaxed), 0);
        // A broken socket loses what was in flight on it.
        wait_a_few_periods();
        let third = p.due("r", 50).expect("due");
        p.sent(9, third.sent_ns, &stats);
        p.connection_lost(&stats);
        assert_eq!(
            stats.tally(0.0, None).errors.get("publish_unacked"),
            Some(&1)
        );
    }

    #[test]
    fn held_work_keeps_a_stopped_publisher_from_being_done() {
        let stats = Stats::new();
        let mut p = Publisher::new(
            PublishPlan {
                channel: "room:x".into(),
                ..plan(Via::Socket)
            },
            Lane::Main,
        );
        p.start(Instant::now());
        let first = p.due("r", 50).expect("due at once");
        p.sent(1, first.sent_ns, &stats);
        assert!(p.on_ack(1, Some(1), &stats, 0));
        // A lifecycle chain started from that ack is still running when publishing stops.
        p.hold(1);
        p.stop(Duration::from_secs(60));
        p.settle(&stats);
        assert!(!p.is_done(), "waits for the chain");
        p.hold(0);
        p.settle(&stats);
        assert!(p.is_done());
        assert_eq!(stats.publishers_done.load(Relaxed), 1);
        // Abandoned while held: the chain counts as unanswered.
        let mut q = Publisher::new(plan(Via::Socket), Lane::Main);
        q.hold(2);
        q.abandon(&stats);
        assert!(q.is_done());
        assert_eq!(stats.tally(0.0, None).mix.unanswered, 2);
    }
}
