//! The checker: what a chaos run recorded (attempts, acks, what each subscriber was delivered),
//! held against the channel's history as storage holds it at the end. Pure and synchronous, so
//! its own tests can inject every fault it claims to catch.
//!
//! Safety findings (loss, duplication, reordering, gaps, wrong data) fail [`Verdict::ok`]; a
//! subscriber that merely ended behind, and the availability figures, are reported for the
//! caller to judge, because a fault injected near the end can leave both legitimately short.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display, Write};
use std::ops::RangeInclusive;

use serde::Serialize;

/// Examples kept per kind of finding: enough to see a pattern, few enough that a run that lost
/// millions still yields a verdict of bounded size (the totals still count everything).
pub const EXAMPLES: usize = 100;

/// Examples per kind of finding that [`Verdict::render`] prints; the rest are in the JSON.
const RENDERED: usize = 5;

/// One publish the workload attempted, under its unique payload number (every retry of it
/// carries the same number and idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub payload: u64,
}

/// A publish the server acked, with the offset it named, and when (ms since the run started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub payload: u64,
    pub offset: u64,
    pub at_ms: u64,
}

/// A message of the channel's history as read at the end: its offset and payload number
/// (`None` when its data is not a workload payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub offset: u64,
    pub payload: Option<u64>,
}

/// What one subscriber was delivered, in the order delivered, across all its reconnects; it
/// started after `start` (its first `since`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub start: u64,
    pub delivered: Vec<(u64, Option<u64>)>,
}

/// One kind of finding: how many there were, and the first [`EXAMPLES`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings<T> {
    pub total: u64,
    pub examples: Vec<T>,
}

// By hand: a derive would demand `T: Default`, which no finding needs.
impl<T> Default for Findings<T> {
    fn default() -> Self {
        Self {
            total: 0,
            examples: Vec::new(),
        }
    }
}

impl<T> Findings<T> {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn push(&mut self, finding: T) {
        self.total += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(finding);
        }
    }

    /// Counts a run of findings (missing offsets) arithmetically, so that a hole of a billion
    /// offsets costs no more than its first [`EXAMPLES`].
    fn push_range(&mut self, range: RangeInclusive<u64>, finding: impl Fn(u64) -> T) {
        let (first, last) = (*range.start(), *range.end());
        if first > last {
            return;
        }
        let room = EXAMPLES.saturating_sub(self.examples.len()) as u64;
        let shown = (last - first).saturating_add(1).min(room);
        self.examples.extend((0..shown).map(|i| finding(first + i)));
        self.total = self.total.saturating_add(last - first).saturating_add(1);
    }
}

/// An acked payload that history does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lost {
    pub payload: u64,
    /// The offset its (first) ack named.
    pub acked: u64,
}

/// An acked payload that history holds, but not at the offset its ack named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrongOffset {
    pub payload: u64,
    pub acked: u64,
    /// Where history holds it (the first place, if duplicated).
    pub stored: u64,
}

/// A payload acked more than once with different offsets (each ack of one idempotency key
/// must name the one offset it was stored at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictingAcks {
    pub payload: u64,
    /// The distinct offsets named, in the order acked.
    pub offsets: Vec<u64>,
}

/// A payload stored at more than one offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicated {
    pub payload: u64,
    pub copies: u64,
    /// The first [`EXAMPLES`] offsets holding it, ascending.
    pub offsets: Vec<u64>,
}

/// A stored message that the workload never attempted (`payload` `None`: not a workload
/// payload at all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phantom {
    pub offset: u64,
    pub payload: Option<u64>,
}

/// One offset of one subscriber (index into `observed`): never delivered though later ones
/// were, delivered again, or delivered though history does not hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub subscriber: usize,
    pub offset: u64,
}

/// An offset delivered after a higher one (or at or before the subscriber's start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reorder {
    pub subscriber: usize,
    pub offset: u64,
    /// The highest offset delivered before it (or its start, if none was).
    pub after: u64,
}

/// A delivery whose payload differs from what history holds at its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub subscriber: usize,
    pub offset: u64,
    pub delivered: Option<u64>,
    pub stored: Option<u64>,
}

/// A subscriber whose last delivery fell short of history's last offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Behind {
    pub subscriber: usize,
    /// The highest offset it was delivered (its start, if none).
    pub last: u64,
    /// How many offsets short of history's end it stopped.
    pub behind: u64,
}

/// A stretch of the run (ms since its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
}

impl Window {
    pub fn ms(&self) -> u64 {
        self.to_ms.saturating_sub(self.from_ms)
    }
}

/// Everything that is wrong, each list empty in a correct run, plus the counts and
/// availability figures a human needs to read it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Verdict {
    /// Distinct publishes attempted.
    pub attempted: u64,
    /// Distinct payloads acked.
    pub acked: u64,
    /// Messages in history.
    pub stored: u64,
    /// Attempted, stored, never acked: the ack was lost, which is allowed.
    pub stored_unacked: u64,
    /// Attempted, neither acked nor stored: the publish was lost before storage, allowed.
    pub never_stored: u64,
    pub subscribers: u64,

    /// Offsets in 1..=(history's last) that history does not hold.
    pub missing_offsets: Findings<u64>,
    /// Offsets read at or before one already read (repeated, out of order, or 0).
    pub repeated_offsets: Findings<u64>,
    pub lost: Findings<Lost>,
    pub wrong_offset: Findings<WrongOffset>,
    pub conflicting_acks: Findings<ConflictingAcks>,
    pub duplicated: Findings<Duplicated>,
    pub phantom: Findings<Phantom>,

    /// Offsets after a subscriber's start, below its highest delivery, never delivered to it.
    pub delivery_gaps: Findings<Delivery>,
    /// Offsets delivered to one subscriber more than once (each extra delivery counts).
    pub delivery_duplicates: Findings<Delivery>,
    pub delivery_reorders: Findings<Reorder>,
    pub delivery_mismatches: Findings<Mismatch>,
    /// Delivered offsets that history does not hold (delivered, then lost from storage).
    pub delivery_unstored: Findings<Delivery>,
    /// Subscribers that ended short of history's end: not part of [`Verdict::ok`]; see
    /// [`Verdict::caught_up`].
    pub subscribers_behind: Findings<Behind>,

    /// The longest stretch between the first ack and the end of publishing with no ack.
    pub longest_ack_gap: Option<Window>,
    /// When the last injected fault was healed (`None`: no faults).
    pub last_healed_ms: Option<u64>,
    /// From the last heal to the first ack at or after it (`None`: no faults, or no ack after).
    pub recovery_ms: Option<u64>,
}

impl Verdict {
    /// True when no safety property was broken: nothing acked lost or misplaced, nothing
    /// stored twice or from nowhere, history gapless, and every subscriber was delivered a
    /// gapless, duplicate-free, ordered prefix of history.
    pub fn ok(&self) -> bool {
        self.missing_offsets.is_empty()
            && self.repeated_offsets.is_empty()
            && self.lost.is_empty()
            && self.wrong_offset.is_empty()
            && self.conflicting_acks.is_empty()
            && self.duplicated.is_empty()
            && self.phantom.is_empty()
            && self.delivery_gaps.is_empty()
            && self.delivery_duplicates.is_empty()
            && self.delivery_reorders.is_empty()
            && self.delivery_mismatches.is_empty()
            && self.delivery_unstored.is_empty()
    }

    /// True when every subscriber got as far as history's end.
    pub fn caught_up(&self) -> bool {
        self.subscribers_behind.is_empty()
    }
}

/// Checks a run: see [`Verdict`] for what each finding means.
pub fn check(
    attempts: &[Attempt],
    acks: &[Acked],
    history: &[Stored],
    observed: &[Observed],
    faults: &[(u64, u64)],
    end_ms: u64,
) -> Verdict {
    let attempted: BTreeSet<u64> = attempts.iter().map(|a| a.payload).collect();
    let index = Index::new(history);
    let mut v = Verdict {
        attempted: attempted.len() as u64,
        stored: history.len() as u64,
        subscribers: observed.len() as u64,
        ..Verdict::default()
    };
    check_offsets(history, &mut v);
    check_stored(history, &index, &attempted, &mut v);
    let acked = check_acks(acks, &index, &mut v);
    v.acked = acked.len() as u64;
    for payload in attempted.iter().filter(|p| !acked.contains_key(p)) {
        if index.offsets_of.contains_key(payload) {
            v.stored_unacked += 1;
        } else {
            v.never_stored += 1;
        }
    }
    for (subscriber, seen) in observed.iter().enumerate() {
        check_subscriber(subscriber, seen, &index, &mut v);
    }
    check_availability(acks, faults, end_ms, &mut v);
    v
}

/// History looked up both ways. Ordered maps keep the examples in a reproducible order.
struct Index {
    /// Offset → payload; the first entry wins if history repeats an offset.
    at: BTreeMap<u64, Option<u64>>,
    /// Payload → the distinct offsets holding it, ascending.
    offsets_of: BTreeMap<u64, Vec<u64>>,
    /// History's highest offset (0 when empty).
    last: u64,
}

impl Index {
    fn new(history: &[Stored]) -> Self {
        let mut at = BTreeMap::new();
        let mut offsets_of: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for s in history {
            at.entry(s.offset).or_insert(s.payload);
            if let Some(payload) = s.payload {
                offsets_of.entry(payload).or_default().push(s.offset);
            }
        }
        // Deduplicated once at the end, not on each push: a server that stored one payload
        // a million times must not make the check quadratic.
        for offsets in offsets_of.values_mut() {
            offsets.sort_unstable();
            offsets.dedup();
        }
        let last = at.keys().next_back().copied().unwrap_or(0);
        Self {
            at,
            offsets_of,
            last,
        }
    }
}

/// History's offsets must be exactly 1, 2, …, N in order.
fn check_offsets(history: &[Stored], v: &mut Verdict) {
    let mut next = 1u64;
    for s in history {
        if s.offset < next {
            v.repeated_offsets.push(s.offset);
            continue;
        }
        v.missing_offsets.push_range(next..=s.offset - 1, |o| o);
        next = s.offset.saturating_add(1);
    }
}

fn check_stored(history: &[Stored], index: &Index, attempted: &BTreeSet<u64>, v: &mut Verdict) {
    for s in history {
        if s.payload.is_none_or(|p| !attempted.contains(&p)) {
            v.phantom.push(Phantom {
                offset: s.offset,
                payload: s.payload,
            });
        }
    }
    for (&payload, offsets) in index.offsets_of.iter().filter(|(_, o)| o.len() > 1) {
        v.duplicated.push(Duplicated {
            payload,
            copies: offsets.len() as u64,
            offsets: offsets.iter().take(EXAMPLES).copied().collect(),
        });
    }
}

/// Holds every ack against history; returns each acked payload's distinct offsets, in the
/// order acked.
fn check_acks(acks: &[Acked], index: &Index, v: &mut Verdict) -> BTreeMap<u64, Vec<u64>> {
    let mut named: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for a in acks {
        let offsets = named.entry(a.payload).or_default();
        if !offsets.contains(&a.offset) {
            offsets.push(a.offset);
        }
    }
    // Neither list below is ever empty (each entry is made with one offset), so the
    // `unwrap_or_default`s never fire.
    for (&payload, offsets) in &named {
        if offsets.len() > 1 {
            v.conflicting_acks.push(ConflictingAcks {
                payload,
                offsets: offsets.iter().take(EXAMPLES).copied().collect(),
            });
        }
        let Some(stored) = index.offsets_of.get(&payload) else {
            let acked = offsets.first().copied().unwrap_or_default();
            v.lost.push(Lost { payload, acked });
            continue;
        };
        for &acked in offsets.iter().filter(|o| !stored.contains(o)) {
            let stored = stored.first().copied().unwrap_or_default();
            v.wrong_offset.push(WrongOffset {
                payload,
                acked,
                stored,
            });
        }
    }
    named
}

/// A subscriber must be delivered start+1, start+2, … each once, in order, each as stored.
fn check_subscriber(subscriber: usize, seen: &Observed, index: &Index, v: &mut Verdict) {
    let mut delivered = BTreeSet::new();
    let mut highest = seen.start;
    for &(offset, payload) in &seen.delivered {
        if !delivered.insert(offset) {
            v.delivery_duplicates.push(Delivery { subscriber, offset });
        } else if offset <= highest {
            v.delivery_reorders.push(Reorder {
                subscriber,
                offset,
                after: highest,
            });
        }
        highest = highest.max(offset);
        match index.at.get(&offset) {
            None => v.delivery_unstored.push(Delivery { subscriber, offset }),
            Some(&stored) if stored != payload => v.delivery_mismatches.push(Mismatch {
                subscriber,
                offset,
                delivered: payload,
                stored,
            }),
            Some(_) => {}
        }
    }
    // Holes are judged once all deliveries are in, so an offset that merely came late is a
    // reorder (above), not also a gap.
    let mut next = seen.start.saturating_add(1);
    for &offset in delivered.range(next..) {
        v.delivery_gaps
            .push_range(next..=offset - 1, |offset| Delivery { subscriber, offset });
        next = offset.saturating_add(1);
    }
    let behind = index.last.saturating_sub(highest);
    if behind > 0 {
        v.subscribers_behind.push(Behind {
            subscriber,
            last: highest,
            behind,
        });
    }
}

fn check_availability(acks: &[Acked], faults: &[(u64, u64)], end_ms: u64, v: &mut Verdict) {
    let mut times: Vec<u64> = acks.iter().map(|a| a.at_ms).collect();
    times.sort_unstable();
    v.longest_ack_gap = longest_gap(&times, end_ms);
    v.last_healed_ms = faults.iter().map(|&(_, healed)| healed).max();
    v.recovery_ms = v.last_healed_ms.and_then(|healed| {
        let first_after = times.partition_point(|&t| t < healed);
        times.get(first_after).map(|&t| t - healed)
    });
}

/// The longest stretch without an ack, from the first ack to `end_ms` (the first such
/// stretch on a tie). Acks that came after `end_ms` (a drain) close no stretch beyond it.
fn longest_gap(sorted_ms: &[u64], end_ms: u64) -> Option<Window> {
    let first = *sorted_ms.first()?;
    let last = *sorted_ms.last()?;
    let tail = Window {
        from_ms: last,
        to_ms: end_ms.max(last),
    };
    let between = sorted_ms
        .iter()
        .zip(sorted_ms.iter().skip(1))
        .map(|(&a, &b)| Window {
            from_ms: a,
            to_ms: b.min(end_ms.max(a)),
        });
    let start = Window {
        from_ms: first,
        to_ms: first,
    };
    Some(
        between
            .chain([tail])
            .fold(start, |best, w| if w.ms() > best.ms() { w } else { best }),
    )
}

impl Verdict {
    /// A short human summary: the counts, each finding's total and first few examples, and
    /// the availability figures.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        // Writing to a String cannot fail, hence the ignored results.
        let status = match (self.ok(), self.caught_up()) {
            (false, _) => "FAILED",
            (true, false) => "ok (but subscribers ended behind)",
            (true, true) => "ok",
        };
        let _ = writeln!(w, "chaos check  {status}");
        let _ = writeln!(
            w,
            "publishes    {} attempted, {} acked, {} stored ({} stored without an ack, {} never stored); {} subscriber(s)",
            self.attempted, self.acked, self.stored, self.stored_unacked, self.never_stored, self.subscribers
        );
        finding(w, "missing offsets", &self.missing_offsets);
        finding(w, "repeated offsets", &self.repeated_offsets);
        finding(w, "lost", &self.lost);
        finding(w, "wrong offset", &self.wrong_offset);
        finding(w, "conflicting acks", &self.conflicting_acks);
        finding(w, "duplicated", &self.duplicated);
        finding(w, "phantom", &self.phantom);
        finding(w, "delivery gaps", &self.delivery_gaps);
        finding(w, "delivered twice", &self.delivery_duplicates);
        finding(w, "delivered out of order", &self.delivery_reorders);
        finding(w, "delivered wrong payload", &self.delivery_mismatches);
        finding(w, "delivered, not stored", &self.delivery_unstored);
        finding(w, "ended behind", &self.subscribers_behind);
        let gap = match self.longest_ack_gap {
            Some(g) => format!("{} ms ({}..{} ms)", g.ms(), g.from_ms, g.to_ms),
            None => "n/a (no acks)".to_owned(),
        };
        let recovery = match (self.last_healed_ms, self.recovery_ms) {
            (None, _) => "n/a (no faults)".to_owned(),
            (Some(healed), None) => format!("never (no ack after the heal at {healed} ms)"),
            (Some(healed), Some(ms)) => format!("{ms} ms after the heal at {healed} ms"),
        };
        let _ = writeln!(
            w,
            "availability longest without an ack {gap}; recovered {recovery}"
        );
        out
    }
}

/// One line per kind of finding that occurred: its total and first [`RENDERED`] examples.
fn finding<T: Display>(w: &mut String, name: &str, f: &Findings<T>) {
    if f.is_empty() {
        return;
    }
    let shown: Vec<String> = f
        .examples
        .iter()
        .take(RENDERED)
        .map(|e| e.to_string())
        .collect();
    let more = if f.total > shown.len() as u64 {
        ", …"
    } else {
        ""
    };
    let _ = writeln!(w, "  {name}: {} — {}{more}", f.total, shown.join("; "));
}

/// A payload number as printed: `unparseable` when the data was not a workload payload.
struct Payload(Option<u64>);

impl Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "payload {p}"),
            None => f.write_str("unparseable payload"),
        }
    }
}

impl Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload {} (acked at offset {})",
            self.payload, self.acked
        )
    }
}

impl Display for WrongOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, acked, stored) = (self.payload, self.acked, self.stored);
        write!(f, "payload {p} acked at offset {acked}, stored at {stored}")
    }
}

impl Display for ConflictingAcks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload {} acked at offsets {:?}",
            self.payload, self.offsets
        )
    }
}

impl Display for Duplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload {} at offsets {:?}", self.payload, self.offsets)
    }
}

impl Display for Phantom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", Payload(self.payload), self.offset)
    }
}

impl Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subscriber {} offset {}", self.subscriber, self.offset)
    }
}

impl Display for Reorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, o, after) = (self.subscriber, self.offset, self.after);
        write!(f, "subscriber {s} offset {o} after {after}")
    }
}

impl Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, o) = (self.subscriber, self.offset);
        let (got, stored) = (Payload(self.delivered), Payload(self.stored));
        write!(
            f,
            "subscriber {s} offset {o}: got {got}, history holds {stored}"
        )
    }
}

impl Display for Behind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, last, behind) = (self.subscriber, self.last, self.behind);
        write!(f, "subscriber {s} stopped at offset {last}, {behind} short")
    }
}

#[cfg(test)]
mod tests;
