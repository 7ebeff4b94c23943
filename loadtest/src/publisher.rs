//! The publishing side of one connection: paces publishes at its rate, stamps each payload, and
//! matches acks (or errors) to requests to time publish→ack and record the channel's offsets.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use switchboard_protocol::ClientFrame;
use tokio::time::Instant;

use crate::payload::{self, Stamp};
use crate::scenarios::PublishPlan;
use crate::stats::Stats;

/// How far behind schedule a publisher may fall and still catch up by publishing the missed
/// messages at once; beyond it, it skips ahead. A second's worth of messages stays within the
/// server's default burst allowance (400) at any rate the default limit (200/s) accepts, so
/// catching up keeps the total rate without tripping `rate_limited`.
const MAX_LAG: Duration = Duration::from_secs(1);

pub struct Publisher {
    plan: PublishPlan,
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
}

impl Publisher {
    pub fn new(plan: PublishPlan) -> Publisher {
        let period = Duration::from_secs_f64(1.0 / plan.rate.max(1e-3));
        Publisher {
            plan,
            period,
            next_due: None,
            stopped: false,
            seq: 0,
            pending: HashMap::new(),
            drain_deadline: None,
            done: false,
        }
    }

    /// Starts publishing at `from`, offset by a fraction of the period so publishers of one
    /// channel do not all fire in the same instant.
    pub fn start(&mut self, from: Instant) {
        if self.next_due.is_none() && !self.stopped {
            let spread = (self.plan.publisher as f64 * 0.618_034).fract();
            self.next_due = Some(from + self.period.mul_f64(spread));
        }
    }

    pub fn stop(&mut self, drain: Duration) {
        if !self.stopped {
            self.stopped = true;
            self.next_due = None;
            self.drain_deadline = Some(Instant::now() + drain);
        }
    }

    /// When this publisher next needs attention (a publish due, or the ack drain deadline).
    pub fn wake_at(&self) -> Option<Instant> {
        match self.next_due {
            Some(due) => Some(due),
            None if self.stopped && !self.done => self.drain_deadline,
            None => None,
        }
    }

    /// When waiting for outstanding acks ends (only once stopped and not yet done).
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.filter(|_| self.stopped && !self.done)
    }

    /// The publish frame and its send timestamp if one is due now (advancing the schedule).
    pub fn due(
        &mut self,
        id: impl FnOnce() -> i64,
        run_id: &str,
        size: usize,
    ) -> Option<(ClientFrame, u64)> {
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
        let frame = ClientFrame::Publish {
            id: id(),
            channel: self.plan.channel.clone(),
            data: payload::make(run_id, stamp, size),
        };
        Some((frame, stamp.sent_ns))
    }

    /// Records a publish that was just written to the socket.
    pub fn sent(&mut self, id: i64, sent_ns: u64, stats: &Stats) {
        let in_window = stats.window().contains(sent_ns);
        self.pending.insert(id, (Instant::now(), in_window));
        stats.sent.fetch_add(1, Relaxed);
        if in_window {
            stats.sent_in_window.fetch_add(1, Relaxed);
        }
    }

    /// An ack for request `id`; false when it was not one of this publisher's.
    pub fn on_ack(&mut self, id: i64, offset: Option<u64>, stats: &Stats, key: u64) -> bool {
        let Some((sent, in_window)) = self.pending.remove(&id) else {
            return false;
        };
        stats.acked.fetch_add(1, Relaxed);
        match offset {
            Some(offset) => stats.note_acked(&self.plan.channel, offset),
            None => stats.error("publish_ack_without_offset"),
        }
        if in_window {
            stats.ack_latency(key, sent.elapsed().as_micros() as u64);
        }
        true
    }

    /// An error reply for request `id`; false when it was not one of this publisher's.
    pub fn on_error(&mut self, id: i64) -> bool {
        self.pending.remove(&id).is_some()
    }

    /// The connection broke: outstanding publishes will never be acked on it.
    pub fn connection_lost(&mut self, stats: &Stats) {
        stats.errors("publish_unacked", self.pending.len() as u64);
        self.pending.clear();
    }

    /// Once stopped, and every ack is in (or the drain deadline passed), counts this publisher
    /// as done so the engine can collect final offsets.
    pub fn settle(&mut self, stats: &Stats) {
        if !self.stopped || self.done {
            return;
        }
        let expired = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
        if self.pending.is_empty() || expired {
            self.connection_lost(stats);
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
