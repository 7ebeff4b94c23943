//! Correctness accounting for one subscription (one subscriber connection on one channel): which
//! offsets arrived, in what order, how often, and — once the channel's final offset is known —
//! which never came. Pure and synchronous so it can be tested with injected faults.
//!
//! Memory stays small in the common case: offsets normally arrive in order, so the tracker keeps
//! only the next expected offset. Offsets that arrive ahead of a gap are kept as *ranges* rather
//! than one entry each, so a single lost message costs one range, not one entry for every later
//! message of the run.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// What one subscription saw, as counted at the end of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Every message received, duplicates included.
    pub delivered: u64,
    /// Offsets in (start, final]: what a correct server must deliver exactly once.
    pub expected: u64,
    /// Offsets in (start, final] that never arrived.
    pub lost: u64,
    /// Messages whose offset had already been received (or lies at or below the start, i.e. it
    /// was in the history the subscription explicitly skipped).
    pub duplicates: u64,
    /// Messages that arrived after a higher offset had already been received.
    pub out_of_order: u64,
    /// Messages whose publisher sequence number was lower than one already seen from the same
    /// publisher on this channel (without being a duplicate offset): the server reordered one
    /// publisher's messages relative to each other.
    pub seq_regressions: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.delivered += other.delivered;
        self.expected += other.expected;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.seq_regressions += other.seq_regressions;
    }

    /// True when anything went wrong that a correct server never does.
    pub fn is_faulty(&self) -> bool {
        self.lost + self.duplicates + self.out_of_order + self.seq_regressions > 0
    }
}

/// How a received offset was classified (useful to callers that only count clean deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    InOrder,
    OutOfOrder,
    Duplicate,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    /// The subscription started after this offset (the first subscribe ack's `offset`, or the
    /// `since` it used): offsets at or below it are not expected.
    start: u64,
    /// Every offset in (start, next) has been received.
    next: u64,
    /// Received offsets above `next`, as inclusive ranges keyed by their first offset; disjoint
    /// and never adjacent (adjacent ranges are merged).
    ahead: BTreeMap<u64, u64>,
    /// Highest offset received so far (`start` before anything arrived).
    max_seen: u64,
    /// Highest sequence number seen per publisher index.
    last_seq: HashMap<u32, u64>,
    counts: Counts,
}

impl Tracker {
    pub fn new(start: u64) -> Tracker {
        Tracker {
            start,
            next: start + 1,
            ahead: BTreeMap::new(),
            max_seen: start,
            last_seq: HashMap::new(),
            counts: Counts::default(),
        }
    }

    /// Records one delivered message: its channel offset and, when the payload carried one, the
    /// (publisher index, sequence number) stamp.
    pub fn observe(&mut self, offset: u64, stamp: Option<(u32, u64)>) -> Seen {
        self.counts.delivered += 1;
        let seen = self.classify(offset);
        if seen != Seen::Duplicate {
            if let Some((publisher, seq)) = stamp {
                let last = self.last_seq.entry(publisher).or_insert(0);
                if seq < *last {
                    self.counts.seq_regressions += 1;
                } else {
                    *last = seq;
                }
            }
        }
        match seen {
            Seen::Duplicate => self.counts.duplicates += 1,
            Seen::OutOfOrder => self.counts.out_of_order += 1,
            Seen::InOrder => {}
        }
        self.max_seen = self.max_seen.max(offset);
        seen
    }

    fn classify(&mut self, offset: u64) -> Seen {
        if offset < self.next {
            return Seen::Duplicate;
        }
        let late = offset < self.max_seen;
        if offset == self.next {
            self.next += 1;
            // The gap just closed may join the first range seen ahead.
            if let Some((&first, &end)) = self.ahead.first_key_value() {
                if first == self.next {
                    self.ahead.remove(&first);
                    self.next = end + 1;
                }
            }
        } else if !self.insert_ahead(offset) {
            return Seen::Duplicate;
        }
        if late {
            Seen::OutOfOrder
        } else {
            Seen::InOrder
        }
    }

    /// Adds `offset` (> next) to the ranges seen ahead; false when it was already there.
    fn insert_ahead(&mut self, offset: u64) -> bool {
        let before = self
            .ahead
            .range(..=offset)
            .next_back()
            .map(|(&s, &e)| (s, e));
        if let Some((_, end)) = before {
            if offset <= end {
                return false;
            }
        }
        let mut start = offset;
        let mut end = offset;
        if let Some((s, e)) = before {
            if e + 1 == offset {
                self.ahead.remove(&s);
                start = s;
            }
        }
        if let Some(after_end) = self.ahead.remove(&(offset + 1)) {
            end = after_end;
        }
        self.ahead.insert(start, end);
        true
    }

    /// Offsets at or below this one were not expected (the subscription started after it).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Every offset up to this one (and above the start) has been received.
    pub fn contiguous(&self) -> u64 {
        self.next - 1
    }

    /// The `since` to resume with after a disconnect: the last offset received.
    pub fn resume_point(&self) -> u64 {
        self.max_seen
    }

    /// The counts, with `lost` and `expected` computed against the channel's final offset.
    pub fn finish(&self, final_offset: u64) -> Counts {
        let mut counts = self.counts;
        let expected = final_offset.saturating_sub(self.start);
        let contiguous_in_range = self
            .contiguous()
            .min(final_offset)
            .saturating_sub(self.start);
        let ahead_in_range: u64 = self
            .ahead
            .range(..=final_offset)
            .map(|(&s, &e)| e.min(final_offset) - s + 1)
            .sum();
        counts.expected = expected;
        counts.lost = expected.saturating_sub(contiguous_in_range + ahead_in_range);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds offsets (publisher 0, seq = offset) and finishes at `final_offset`.
    fn run(start: u64, offsets: &[u64], final_offset: u64) -> Counts {
        let mut t = Tracker::new(start);
        for &o in offsets {
            t.observe(o, Some((0, o)));
        }
        t.finish(final_offset)
    }

    #[test]
    fn a_clean_sequence_has_no_faults() {
        let c = run(0, &[1, 2, 3, 4, 5], 5);
        assert_eq!(
            c,
            Counts {
                delivered: 5,
                expected: 5,
                ..Counts::default()
            }
        );
        assert!(!c.is_faulty());
        // Starting after existing history: only the later offsets are expected.
        let c = run(10, &[11, 12], 12);
        assert_eq!((c.expected, c.lost, c.delivered), (2, 0, 2));
    }

    #[test]
    fn a_dropped_message_counts_as_lost() {
        let c = run(0, &[1, 2, 4, 5], 5);
        assert_eq!((c.lost, c.duplicates, c.out_of_order), (1, 0, 0));
        // Missing at the tail (never delivered before the run ended).
        let c = run(0, &[1, 2, 3], 5);
        assert_eq!((c.lost, c.expected), (2, 5));
        // Nothing at all.
        assert_eq!(run(3, &[], 7).lost, 4);
    }

    #[test]
    fn a_duplicated_message_counts_as_a_duplicate() {
        let c = run(0, &[1, 2, 2, 3], 3);
        assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 1, 0));
        assert_eq!(c.delivered, 4);
        // A duplicate of an offset seen ahead of a gap.
        let c = run(0, &[1, 3, 3, 2], 3);
        assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 1, 1));
        // An offset from the skipped history (at or below the start).
        let c = run(5, &[5, 6], 6);
        assert_eq!((c.duplicates, c.lost), (1, 0));
    }

    #[test]
    fn a_swapped_pair_counts_as_out_of_order() {
        let c = run(0, &[1, 3, 2, 4], 4);
        assert_eq!((c.lost, c.duplicates, c.out_of_order), (0, 0, 1));
        // The publisher's own sequence went backwards too.
        assert_eq!(c.seq_regressions, 1);
    }

    #[test]
    fn ranges_ahead_merge_and_fill() {
        let mut t = Tracker::new(0);
        for o in [1, 5, 3, 4, 7, 6] {
            t.observe(o, None);
        }
        assert_eq!(t.contiguous(), 1);
        assert_eq!(t.ahead.len(), 1, "3..=7 is one range: {:?}", t.ahead);
        t.observe(2, None);
        assert_eq!(t.contiguous(), 7);
        assert!(t.ahead.is_empty());
        assert_eq!(t.resume_point(), 7);
        let c = t.finish(7);
        assert_eq!((c.lost, c.duplicates), (0, 0));
        // 5, 3, 4 (after 5), 6 (after 7) and 2 arrived after higher offsets.
        assert_eq!(c.out_of_order, 4);
    }

    #[test]
    fn publisher_regressions_are_counted_per_publisher() {
        let mut t = Tracker::new(0);
        t.observe(1, Some((1, 10)));
        t.observe(2, Some((2, 1)));
        t.observe(3, Some((1, 11)));
        t.observe(4, Some((1, 9)));
        t.observe(4, Some((1, 9))); // duplicate offset: not a second regression
        let c = t.finish(4);
        assert_eq!((c.seq_regressions, c.duplicates, c.lost), (1, 1, 0));
    }

    #[test]
    fn offsets_beyond_the_final_are_not_lost_or_expected() {
        let c = run(0, &[1, 2, 3, 4], 2);
        assert_eq!((c.expected, c.lost, c.delivered), (2, 0, 4));
        let c = run(0, &[1, 3, 4], 2);
        assert_eq!(c.lost, 1);
    }
}
