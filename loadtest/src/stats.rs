//! Statistics shared by every connection of one engine (one process): live counters read by the
//! progress display, error counts by code, correctness totals and latency histograms. At the end
//! they are frozen into a [`Tally`], the serialisable partial result a worker sends to the
//! coordinator.
//!
//! Publish and delivery numbers are kept per [`Lane`]: a scenario's own traffic, and side
//! traffic measured alongside it but reported apart (the feed scenario's chat probe), so neither
//! blurs the other's latency or its expected counts.
//!
//! Histograms are shared (a few mutex-guarded shards) rather than per connection: one histogram
//! is ~190 KB, far too much to keep per socket at 100k sockets. No lock is held across `.await`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::latency::{Encoded, Latency, Window};
use crate::lifecycle::{Action, Answer, Check, Expected, Reply};
use crate::tracker::Counts;

/// Histogram shards: enough that two cores rarely contend for the same lock.
const SHARDS: usize = 8;
/// The probe lane carries a few messages per second: one shard is plenty.
const PROBE_SHARDS: usize = 1;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not hide the numbers gathered so far.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Shards(Vec<Mutex<Latency>>);

impl Shards {
    fn new() -> Shards {
        Shards::with_count(SHARDS)
    }

    fn with_count(n: usize) -> Shards {
        Shards((0..n).map(|_| Mutex::new(Latency::new())).collect())
    }

    fn with<R>(&self, key: u64, f: impl FnOnce(&mut Latency) -> R) -> R {
        f(&mut lock(&self.0[key as usize % self.0.len()]))
    }

    fn merged(&self) -> Latency {
        let mut all = Latency::new();
        for shard in &self.0 {
            all.merge(&lock(shard));
        }
        all
    }
}

/// Whose numbers a connection's publishes and deliveries count towards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lane {
    /// The scenario's own traffic: the report's top-level numbers.
    #[default]
    Main,
    /// Side traffic measured alongside and reported apart (the feed scenario's chat probe).
    Probe,
}

/// Publish and delivery numbers of one lane.
pub struct LaneStats {
    /// Publishes sent (in the window: `sent_in_window`).
    pub sent: AtomicU64,
    pub sent_in_window: AtomicU64,
    /// Publishes acknowledged (stored).
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    pub delivered_in_window: AtomicU64,
    counts: Mutex<Counts>,
    latency: Shards,
    ack_latency: Shards,
}

impl LaneStats {
    fn new(shards: usize) -> LaneStats {
        LaneStats {
            sent: AtomicU64::new(0),
            sent_in_window: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_in_window: AtomicU64::new(0),
            counts: Mutex::new(Counts::default()),
            latency: Shards::with_count(shards),
            ack_latency: Shards::with_count(shards),
        }
    }

    pub fn ack_latency(&self, key: u64, micros: u64) {
        self.ack_latency.with(key, |l| l.record_us(micros));
    }

    pub fn add_counts(&self, counts: &Counts) {
        lock(&self.counts).add(counts);
    }

    fn tally(&self) -> LaneTally {
        LaneTally {
            sent: self.sent.load(Relaxed),
            sent_in_window: self.sent_in_window.load(Relaxed),
            acked: self.acked.load(Relaxed),
            delivered_in_window: self.delivered_in_window.load(Relaxed),
            counts: *lock(&self.counts),
            latency: (&self.latency.merged()).into(),
            ack_latency: (&self.ack_latency.merged()).into(),
        }
    }
}

#[derive(Default)]
struct Inner {
    errors: BTreeMap<String, u64>,
    local_limit_detail: Option<String>,
    /// Highest acked publish offset per channel.
    max_acked: BTreeMap<String, u64>,
    recovery_target: Option<u64>,
}

/// The chat mix's numbers ([`crate::lifecycle`]): lifecycle actions by their answers, the
/// lifecycle messages subscribers received, typing signals.
pub struct MixStats {
    actions: Mutex<BTreeMap<String, ActionTally>>,
    /// The changes this engine's members made, to check the messages received against.
    expected: Mutex<Expected>,
    latency: Shards,
    /// Lifecycle messages received, by `data.kind`: edit, delete, reaction.
    pub delivered_edit: AtomicU64,
    pub delivered_delete: AtomicU64,
    pub delivered_reaction: AtomicU64,
    /// Replayed messages shown edited or deleted.
    pub delivered_changed: AtomicU64,
    pub verified: AtomicU64,
    pub mismatched: AtomicU64,
    pub unverified: AtomicU64,
    pub malformed: AtomicU64,
    pub unrecognised: AtomicU64,
    /// Chains still running when their member's drain deadline passed.
    pub unanswered: AtomicU64,
    pub typing_sent: AtomicU64,
    pub typing_acked: AtomicU64,
    pub typing_refused: AtomicU64,
    pub typing_received: AtomicU64,
}

impl MixStats {
    fn new() -> MixStats {
        MixStats {
            actions: Mutex::new(BTreeMap::new()),
            expected: Mutex::new(Expected::default()),
            latency: Shards::with_count(2),
            delivered_edit: AtomicU64::new(0),
            delivered_delete: AtomicU64::new(0),
            delivered_reaction: AtomicU64::new(0),
            delivered_changed: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
            unverified: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            unrecognised: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            typing_sent: AtomicU64::new(0),
            typing_acked: AtomicU64::new(0),
            typing_refused: AtomicU64::new(0),
            typing_received: AtomicU64::new(0),
        }
    }

    /// Records one action's answer on `channel` (when stored, what its message must be).
    pub fn answered(&self, channel: &str, reply: &Reply, window: Window, key: u64) {
        {
            let mut actions = lock(&self.actions);
            let a = actions.entry(reply.action.name().to_owned()).or_default();
            a.sent += 1;
            match reply.answer {
                Answer::Stored(_) => a.stored += 1,
                Answer::Unchanged => a.unchanged += 1,
                Answer::Refused(status) => *a.refused.entry(status.to_string()).or_default() += 1,
                Answer::Failed(_) => a.failed += 1,
            }
        }
        if let Answer::Stored(offset) = reply.answer {
            lock(&self.expected).insert(channel, offset, reply.action.kind(), reply.target);
        }
        if reply.answer.is_ok() && window.contains(reply.sent_ns) {
            self.latency
                .with(key, |l| l.record_us(reply.took.as_micros() as u64));
        }
    }

    /// Checks a change received at `offset` of `channel` against the answers of this engine.
    pub fn check(&self, channel: &str, offset: u64, kind: &str, target: u64) -> Check {
        lock(&self.expected).check(channel, offset, kind, target)
    }

    /// Counts the outcome of a check (made when received, or at the end for those not yet
    /// answered then).
    pub fn checked(&self, check: Check) {
        let counter = match check {
            Check::Matches => &self.verified,
            Check::Mismatch => &self.mismatched,
            Check::Unknown => &self.unverified,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn tally(&self) -> MixTally {
        let delivered = [
            ("edit", &self.delivered_edit),
            ("delete", &self.delivered_delete),
            ("reaction", &self.delivered_reaction),
            ("changed", &self.delivered_changed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.load(Relaxed)))
        .filter(|(_, v)| *v > 0)
        .collect();
        MixTally {
            actions: lock(&self.actions).clone(),
            latency: (&self.latency.merged()).into(),
            delivered,
            verified: self.verified.load(Relaxed),
            mismatched: self.mismatched.load(Relaxed),
            unverified: self.unverified.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            unrecognised: self.unrecognised.load(Relaxed),
            unanswered: self.unanswered.load(Relaxed),
            typing_sent: self.typing_sent.load(Relaxed),
            typing_acked: self.typing_acked.load(Relaxed),
            typing_refused: self.typing_refused.load(Relaxed),
            typing_received: self.typing_received.load(Relaxed),
        }
    }
}

/// One lifecycle action's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTally {
    pub sent: u64,
    /// Stored as a message with its own offset.
    pub stored: u64,
    /// Answered 2xx without an offset (nothing changed).
    pub unchanged: u64,
    /// Refused, by HTTP status.
    pub refused: BTreeMap<String, u64>,
    /// Not answered (connection failure, timeout).
    pub failed: u64,
}

impl ActionTally {
    fn merge(&mut self, o: &ActionTally) {
        self.sent += o.sent;
        self.stored += o.stored;
        self.unchanged += o.unchanged;
        for (status, n) in &o.refused {
            *self.refused.entry(status.clone()).or_default() += n;
        }
        self.failed += o.failed;
    }
}

/// The chat mix's numbers in a [`Tally`] (all zero without the mix).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MixTally {
    /// By action name (edit, react, unreact, delete).
    pub actions: BTreeMap<String, ActionTally>,
    /// Request → response of the actions sent inside the window and answered 2xx.
    pub latency: Encoded,
    /// Lifecycle messages received by subscribers, by `data.kind` (and `changed`: replayed
    /// messages shown edited or deleted).
    pub delivered: BTreeMap<String, u64>,
    pub verified: u64,
    pub mismatched: u64,
    pub unverified: u64,
    pub malformed: u64,
    pub unrecognised: u64,
    pub unanswered: u64,
    pub typing_sent: u64,
    pub typing_acked: u64,
    pub typing_refused: u64,
    pub typing_received: u64,
}

impl MixTally {
    fn merge(&mut self, o: MixTally) -> anyhow::Result<()> {
        for (name, a) in &o.actions {
            self.actions.entry(name.clone()).or_default().merge(a);
        }
        merge_encoded(&mut self.latency, &o.latency)?;
        for (kind, n) in o.delivered {
            *self.delivered.entry(kind).or_default() += n;
        }
        self.verified += o.verified;
        self.mismatched += o.mismatched;
        self.unverified += o.unverified;
        self.malformed += o.malformed;
        self.unrecognised += o.unrecognised;
        self.unanswered += o.unanswered;
        self.typing_sent += o.typing_sent;
        self.typing_acked += o.typing_acked;
        self.typing_refused += o.typing_refused;
        self.typing_received += o.typing_received;
        Ok(())
    }

    /// Totals over every action.
    pub fn total(&self) -> ActionTally {
        let mut all = ActionTally::default();
        for a in self.actions.values() {
            all.merge(a);
        }
        all
    }
}

/// The action names in chain order, for display.
pub fn action_names() -> impl Iterator<Item = &'static str> {
    Action::CHAIN.into_iter().map(Action::name)
}

pub struct Stats {
    pub connect_ok: AtomicU64,
    pub connect_failed: AtomicU64,
    /// Connections refused by this machine's limits (also counted in `connect_failed`).
    pub local_limit: AtomicU64,
    /// Sockets open right now.
    pub open: AtomicU64,
    /// The scenario's own publishes and deliveries.
    pub main: LaneStats,
    /// Side traffic reported apart ([`Lane::Probe`]).
    pub probe: LaneStats,
    /// The chat mix (lifecycle actions, typing).
    pub mix: MixStats,
    /// Publishing connections that have stopped and have no ack outstanding.
    pub publishers_done: AtomicU64,
    /// Connections that dropped and reconnected on purpose.
    pub dropped: AtomicU64,
    /// Of those, the ones that never caught up with the drop target.
    pub unrecovered: AtomicU64,
    /// Subscriptions short of their channel's final offset when the drain deadline passed.
    pub behind_at_end: AtomicU64,
    /// Connections that were disconnected (reconnecting) when the run ended.
    pub disconnected_at_end: AtomicU64,
    window_start_ns: AtomicU64,
    window_end_ns: AtomicU64,
    inner: Mutex<Inner>,
    connect_latency: Shards,
    recovery: Shards,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            connect_ok: AtomicU64::new(0),
            connect_failed: AtomicU64::new(0),
            local_limit: AtomicU64::new(0),
            open: AtomicU64::new(0),
            main: LaneStats::new(SHARDS),
            probe: LaneStats::new(PROBE_SHARDS),
            mix: MixStats::new(),
            publishers_done: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unrecovered: AtomicU64::new(0),
            behind_at_end: AtomicU64::new(0),
            disconnected_at_end: AtomicU64::new(0),
            window_start_ns: AtomicU64::new(0),
            window_end_ns: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            connect_latency: Shards::new(),
            recovery: Shards::new(),
        }
    }

    pub fn lane(&self, lane: Lane) -> &LaneStats {
        match lane {
            Lane::Main => &self.main,
            Lane::Probe => &self.probe,
        }
    }

    pub fn set_window(&self, window: Window) {
        self.window_start_ns.store(window.start_ns, Relaxed);
        self.window_end_ns.store(window.end_ns, Relaxed);
    }

    pub fn window(&self) -> Window {
        Window {
            start_ns: self.window_start_ns.load(Relaxed),
            end_ns: self.window_end_ns.load(Relaxed),
        }
    }

    pub fn error(&self, code: &str) {
        self.errors(code, 1);
    }

    pub fn errors(&self, code: &str, n: u64) {
        if n > 0 {
            *lock(&self.inner).errors.entry(code.to_owned()).or_default() += n;
        }
    }

    pub fn local_limit_hit(&self, detail: &str) {
        self.local_limit.fetch_add(1, Relaxed);
        lock(&self.inner)
            .local_limit_detail
            .get_or_insert_with(|| detail.to_owned());
    }

    pub fn note_acked(&self, channel: &str, offset: u64) {
        let mut inner = lock(&self.inner);
        match inner.max_acked.get_mut(channel) {
            Some(max) => *max = (*max).max(offset),
            None => {
                inner.max_acked.insert(channel.to_owned(), offset);
            }
        }
    }

    pub fn max_acked(&self) -> BTreeMap<String, u64> {
        lock(&self.inner).max_acked.clone()
    }

    pub fn set_recovery_target(&self, target: u64) {
        lock(&self.inner).recovery_target = Some(target);
    }

    /// Records a publish→deliver latency (when sent inside the window) and counts the delivery.
    pub fn delivery(&self, lane: Lane, key: u64, sent_ns: Option<u64>, now_ns: u64, timed: bool) {
        let lane = self.lane(lane);
        lane.delivered.fetch_add(1, Relaxed);
        let window = self.window();
        if window.contains(now_ns) {
            lane.delivered_in_window.fetch_add(1, Relaxed);
        }
        if let (Some(sent), true) = (sent_ns, timed) {
            lane.latency
                .with(key, |l| l.record_delivery(sent, now_ns, window));
        }
    }

    pub fn connect_latency(&self, key: u64, micros: u64) {
        self.connect_latency.with(key, |l| l.record_us(micros));
    }

    pub fn recovered(&self, key: u64, micros: u64) {
        self.recovery.with(key, |l| l.record_us(micros));
    }

    pub fn live(&self) -> Live {
        Live {
            open: self.open.load(Relaxed),
            connect_ok: self.connect_ok.load(Relaxed),
            connect_failed: self.connect_failed.load(Relaxed),
            sent: self.main.sent.load(Relaxed) + self.probe.sent.load(Relaxed),
            delivered: self.main.delivered.load(Relaxed) + self.probe.delivered.load(Relaxed),
        }
    }

    /// Freezes everything into the serialisable partial result.
    pub fn tally(&self, ramp_secs: f64, client_cpu_secs: Option<f64>) -> Tally {
        let inner = lock(&self.inner);
        Tally {
            connect_ok: self.connect_ok.load(Relaxed),
            connect_failed: self.connect_failed.load(Relaxed),
            local_limit: self.local_limit.load(Relaxed),
            local_limit_detail: inner.local_limit_detail.clone(),
            main: self.main.tally(),
            probe: self.probe.tally(),
            mix: self.mix.tally(),
            errors: inner.errors.clone(),
            dropped: self.dropped.load(Relaxed),
            unrecovered: self.unrecovered.load(Relaxed),
            behind_at_end: self.behind_at_end.load(Relaxed),
            disconnected_at_end: self.disconnected_at_end.load(Relaxed),
            client_cpu_secs,
            recovery_target: inner.recovery_target,
            ramp_secs,
            connect_latency: (&self.connect_latency.merged()).into(),
            recovery: (&self.recovery.merged()).into(),
        }
    }
}

/// Live counters for the progress display.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Live {
    pub open: u64,
    pub connect_ok: u64,
    pub connect_failed: u64,
    pub sent: u64,
    pub delivered: u64,
}

impl Live {
    pub fn add(&mut self, o: &Live) {
        self.open += o.open;
        self.connect_ok += o.connect_ok;
        self.connect_failed += o.connect_failed;
        self.sent += o.sent;
        self.delivered += o.delivered;
    }
}

/// One lane's publish and delivery numbers in a [`Tally`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaneTally {
    pub sent: u64,
    pub sent_in_window: u64,
    pub acked: u64,
    pub delivered_in_window: u64,
    /// Correctness totals over the lane's subscriptions (delivered, expected, lost, ...).
    pub counts: Counts,
    pub latency: Encoded,
    pub ack_latency: Encoded,
}

impl LaneTally {
    fn merge(&mut self, o: LaneTally) -> anyhow::Result<()> {
        self.sent += o.sent;
        self.sent_in_window += o.sent_in_window;
        self.acked += o.acked;
        self.delivered_in_window += o.delivered_in_window;
        self.counts.add(&o.counts);
        merge_encoded(&mut self.latency, &o.latency)?;
        merge_encoded(&mut self.ack_latency, &o.ack_latency)
    }
}

fn merge_encoded(mine: &mut Encoded, theirs: &Encoded) -> anyhow::Result<()> {
    let mut merged = Latency::try_from(&*mine)?;
    merged.merge(&Latency::try_from(theirs)?);
    *mine = (&merged).into();
    Ok(())
}

/// One engine's result: what a worker process prints on stdout and the coordinator merges.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub connect_ok: u64,
    pub connect_failed: u64,
    pub local_limit: u64,
    pub local_limit_detail: Option<String>,
    pub main: LaneTally,
    pub probe: LaneTally,
    #[serde(default)]
    pub mix: MixTally,
    pub errors: BTreeMap<String, u64>,
    pub dropped: u64,
    pub unrecovered: u64,
    pub behind_at_end: u64,
    pub disconnected_at_end: u64,
    /// CPU time this engine's process used during the window (user + system).
    pub client_cpu_secs: Option<f64>,
    pub recovery_target: Option<u64>,
    /// Time this engine took to open its connections.
    pub ramp_secs: f64,
    pub connect_latency: Encoded,
    pub recovery: Encoded,
}

impl Tally {
    pub fn merge(&mut self, o: Tally) -> anyhow::Result<()> {
        self.connect_ok += o.connect_ok;
        self.connect_failed += o.connect_failed;
        self.local_limit += o.local_limit;
        self.local_limit_detail = self.local_limit_detail.take().or(o.local_limit_detail);
        self.main.merge(o.main)?;
        self.probe.merge(o.probe)?;
        self.mix.merge(o.mix)?;
        for (code, n) in o.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.dropped += o.dropped;
        self.unrecovered += o.unrecovered;
        self.behind_at_end += o.behind_at_end;
        self.disconnected_at_end += o.disconnected_at_end;
        self.client_cpu_secs = match (self.client_cpu_secs, o.client_cpu_secs) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.recovery_target = self.recovery_target.max(o.recovery_target);
        self.ramp_secs = self.ramp_secs.max(o.ramp_secs);
        merge_encoded(&mut self.connect_latency, &o.connect_latency)?;
        merge_encoded(&mut self.recovery, &o.recovery)
    }
}
