//! The checker's own tests: a correct run passes, and each kind of fault injected into it is
//! caught as exactly that finding.

use super::*;

/// A small correct run: payload 100+n belongs at offset n. 103's ack was lost and its
/// retry acked again at the same offset; 104 was stored but its ack lost; 106 never got
/// stored. One fault (40..150 ms); subscriber 1 joined at offset 2.
struct Run {
    attempts: Vec<Attempt>,
    acks: Vec<Acked>,
    history: Vec<Stored>,
    observed: Vec<Observed>,
    faults: Vec<(u64, u64)>,
    end_ms: u64,
}

impl Run {
    fn baseline() -> Self {
        let ack = |payload, offset, at_ms| Acked {
            payload,
            offset,
            at_ms,
        };
        Self {
            attempts: (101..=106).map(|payload| Attempt { payload }).collect(),
            acks: vec![
                ack(101, 1, 10),
                ack(102, 2, 20),
                ack(103, 3, 30),
                ack(103, 3, 95),
                ack(105, 5, 200),
            ],
            history: (1..=5).map(|o| stored(o, Some(100 + o))).collect(),
            observed: vec![observed(0, 1..=5), observed(2, 3..=5)],
            faults: vec![(40, 150)],
            end_ms: 250,
        }
    }

    fn check(&self) -> Verdict {
        check(
            &self.attempts,
            &self.acks,
            &self.history,
            &self.observed,
            &self.faults,
            self.end_ms,
        )
    }
}

fn stored(offset: u64, payload: Option<u64>) -> Stored {
    Stored { offset, payload }
}

fn observed(start: u64, offsets: RangeInclusive<u64>) -> Observed {
    Observed {
        start,
        delivered: offsets.map(|o| (o, Some(100 + o))).collect(),
    }
}

fn delivery(subscriber: usize, offset: u64) -> Delivery {
    Delivery { subscriber, offset }
}

/// Only the named findings may be non-empty: each injected fault is caught as itself.
#[track_caller]
fn only(v: &Verdict, expected: &[&str]) {
    let json = serde_json::to_value(v).expect("a verdict serialises");
    let mut found: Vec<&str> = json
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, f)| f["total"].as_u64().is_some_and(|t| t > 0))
        .map(|(name, _)| name.as_str())
        .collect();
    found.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(found, expected, "{}", v.render());
}

#[test]
fn a_correct_run_is_ok() {
    let v = Run::baseline().check();
    assert!(v.ok() && v.caught_up(), "{}", v.render());
    only(&v, &[]);
    assert_eq!(
        (v.attempted, v.acked, v.stored, v.subscribers),
        (6, 4, 5, 2)
    );
    assert_eq!((v.stored_unacked, v.never_stored), (1, 1));
}

#[test]
fn catches_an_acked_payload_lost_from_history() {
    let mut run = Run::baseline();
    run.history.pop();
    let v = run.check();
    assert!(!v.ok());
    let lost = Lost {
        payload: 105,
        acked: 5,
    };
    assert_eq!(v.lost.examples, [lost]);
    // Both subscribers had been delivered it before storage lost it.
    assert_eq!(
        v.delivery_unstored.examples,
        [delivery(0, 5), delivery(1, 5)]
    );
    only(&v, &["lost", "delivery_unstored"]);
}

#[test]
fn catches_a_payload_stored_twice() {
    let mut run = Run::baseline();
    // The unacked 104's retry stored again: the idempotency key should have stopped it.
    run.history.push(stored(6, Some(104)));
    let v = run.check();
    assert!(!v.ok());
    let dup = Duplicated {
        payload: 104,
        copies: 2,
        offsets: vec![4, 6],
    };
    assert_eq!(v.duplicated.examples, [dup]);
    only(&v, &["duplicated", "subscribers_behind"]);
}

#[test]
fn catches_a_reorder_in_a_subscriber() {
    let mut run = Run::baseline();
    run.observed[0].delivered.swap(1, 2);
    let v = run.check();
    assert!(!v.ok());
    let reorder = Reorder {
        subscriber: 0,
        offset: 2,
        after: 3,
    };
    assert_eq!(v.delivery_reorders.examples, [reorder]);
    only(&v, &["delivery_reorders"]);
}

#[test]
fn catches_a_gap_in_a_subscriber() {
    let mut run = Run::baseline();
    run.observed[1].delivered.retain(|&(o, _)| o != 4);
    let v = run.check();
    assert!(!v.ok());
    assert_eq!(v.delivery_gaps.examples, [delivery(1, 4)]);
    only(&v, &["delivery_gaps"]);
}

#[test]
fn catches_a_duplicate_delivery() {
    let mut run = Run::baseline();
    // A reconnect resumed from offset 1 instead of 3: 2 and 3 come again.
    run.observed[0].delivered = observed(0, 1..=3).delivered;
    run.observed[0]
        .delivered
        .extend(observed(1, 2..=5).delivered);
    let v = run.check();
    assert!(!v.ok());
    assert_eq!(
        v.delivery_duplicates.examples,
        [delivery(0, 2), delivery(0, 3)]
    );
    only(&v, &["delivery_duplicates"]);
}

#[test]
fn catches_a_gap_in_history() {
    let mut run = Run::baseline();
    run.history.retain(|s| s.offset != 4);
    let v = run.check();
    assert!(!v.ok());
    assert_eq!(v.missing_offsets.examples, [4]);
    // 104 was never acked, so its absence alone is no loss.
    assert_eq!(v.never_stored, 2);
    only(&v, &["missing_offsets", "delivery_unstored"]);
}

#[test]
fn catches_a_repeated_offset_in_history() {
    let mut run = Run::baseline();
    run.history.insert(3, stored(3, Some(103)));
    let v = run.check();
    assert!(!v.ok());
    assert_eq!(v.repeated_offsets.examples, [3]);
    only(&v, &["repeated_offsets"]);
}

#[test]
fn catches_a_wrong_acked_offset() {
    let mut run = Run::baseline();
    run.acks[1].offset = 3;
    let v = run.check();
    assert!(!v.ok());
    let wrong = WrongOffset {
        payload: 102,
        acked: 3,
        stored: 2,
    };
    assert_eq!(v.wrong_offset.examples, [wrong]);
    only(&v, &["wrong_offset"]);
}

#[test]
fn catches_acks_of_one_payload_naming_different_offsets() {
    let mut run = Run::baseline();
    run.acks[3].offset = 4;
    let v = run.check();
    assert!(!v.ok());
    let conflict = ConflictingAcks {
        payload: 103,
        offsets: vec![3, 4],
    };
    assert_eq!(v.conflicting_acks.examples, [conflict]);
    let wrong = WrongOffset {
        payload: 103,
        acked: 4,
        stored: 3,
    };
    assert_eq!(v.wrong_offset.examples, [wrong]);
    only(&v, &["conflicting_acks", "wrong_offset"]);
}

#[test]
fn catches_phantom_payloads() {
    let mut run = Run::baseline();
    run.history.push(stored(6, Some(999)));
    run.history.push(stored(7, None));
    for sub in &mut run.observed {
        sub.delivered.extend([(6, Some(999)), (7, None)]);
    }
    let v = run.check();
    assert!(!v.ok());
    let phantoms = [
        Phantom {
            offset: 6,
            payload: Some(999),
        },
        Phantom {
            offset: 7,
            payload: None,
        },
    ];
    assert_eq!(v.phantom.examples, phantoms);
    only(&v, &["phantom"]);
}

#[test]
fn catches_a_subscriber_delivered_another_payload() {
    let mut run = Run::baseline();
    run.observed[1].delivered[1] = (4, Some(105));
    let v = run.check();
    assert!(!v.ok());
    let mismatch = Mismatch {
        subscriber: 1,
        offset: 4,
        delivered: Some(105),
        stored: Some(104),
    };
    assert_eq!(v.delivery_mismatches.examples, [mismatch]);
    only(&v, &["delivery_mismatches"]);
}

#[test]
fn a_delivery_at_or_before_the_start_is_out_of_order() {
    let mut run = Run::baseline();
    run.observed[1].delivered.insert(0, (2, Some(102)));
    let v = run.check();
    let reorder = Reorder {
        subscriber: 1,
        offset: 2,
        after: 2,
    };
    assert_eq!(v.delivery_reorders.examples, [reorder]);
    only(&v, &["delivery_reorders"]);
}

#[test]
fn a_subscriber_behind_is_reported_but_not_a_failure() {
    let mut run = Run::baseline();
    run.observed[1].delivered.pop();
    // Of two that got nothing, the one that joined at history's end is not behind.
    let nothing = |start| Observed {
        start,
        delivered: Vec::new(),
    };
    run.observed.extend([nothing(5), nothing(3)]);
    let v = run.check();
    assert!(v.ok(), "{}", v.render());
    assert!(!v.caught_up());
    let behind = |subscriber, last, behind| Behind {
        subscriber,
        last,
        behind,
    };
    assert_eq!(
        v.subscribers_behind.examples,
        [behind(1, 4, 1), behind(3, 3, 2)]
    );
    only(&v, &["subscribers_behind"]);
}

#[test]
fn availability_of_the_baseline() {
    let v = Run::baseline().check();
    let gap = Window {
        from_ms: 95,
        to_ms: 200,
    };
    assert_eq!(v.longest_ack_gap, Some(gap));
    assert_eq!((v.last_healed_ms, v.recovery_ms), (Some(150), Some(50)));
}

#[test]
fn availability_on_a_hand_made_timeline() {
    let acks: Vec<Acked> = [500, 100, 130, 900]
        .into_iter()
        .map(|at_ms| Acked {
            payload: at_ms,
            offset: 0,
            at_ms,
        })
        .collect();
    let with = |faults: &[(u64, u64)], end_ms| check(&[], &acks, &[], &[], faults, end_ms);
    let window = |from_ms, to_ms| Some(Window { from_ms, to_ms });

    // Gaps 30, 370, 400, then 600 from the last ack to the end of publishing; the later
    // of two faults (listed first) healed at 800, and the next ack came at 900.
    let v = with(&[(600, 800), (200, 400)], 1500);
    assert_eq!(v.longest_ack_gap, window(900, 1500));
    assert_eq!((v.last_healed_ms, v.recovery_ms), (Some(800), Some(100)));

    // Acks after publishing stopped (a drain) do not stretch a gap beyond its end.
    assert_eq!(with(&[], 700).longest_ack_gap, window(130, 500));
    // An ack at the very moment of the heal recovers in 0 ms.
    assert_eq!(with(&[(0, 500)], 1000).recovery_ms, Some(0));
    // No ack after the heal: never recovered; no faults: nothing to recover from.
    let v = with(&[(0, 901)], 1000);
    assert_eq!((v.last_healed_ms, v.recovery_ms), (Some(901), None));
    let v = with(&[], 1000);
    assert_eq!((v.last_healed_ms, v.recovery_ms), (None, None));
    // No acks at all: no window to speak of.
    assert_eq!(check(&[], &[], &[], &[], &[], 1000).longest_ack_gap, None);
}

#[test]
fn lists_keep_the_first_examples_but_count_everything() {
    let history: Vec<Stored> = (1..=250).map(|o| stored(o, Some(o))).collect();
    let v = check(&[], &[], &history, &[], &[], 0);
    assert_eq!(v.phantom.total, 250);
    assert_eq!(v.phantom.examples.len(), EXAMPLES);
    assert_eq!(v.phantom.examples[EXAMPLES - 1].offset, EXAMPLES as u64);

    // A hole of a billion offsets is counted, not listed.
    let holey = [stored(1, None), stored(1_000_000_002, None)];
    let v = check(&[], &[], &holey, &[], &[], 0);
    assert_eq!(v.missing_offsets.total, 1_000_000_000);
    assert_eq!(v.missing_offsets.examples, (2..=101).collect::<Vec<_>>());

    // The same for one subscriber's gap, after some examples from another.
    let sub = |start, offsets: &[u64]| Observed {
        start,
        delivered: offsets.iter().map(|&o| (o, None)).collect(),
    };
    let observed = [sub(0, &[1, 3, 5]), sub(0, &[1_000_000_000])];
    let v = check(&[], &[], &holey, &observed, &[], 0);
    assert_eq!(v.delivery_gaps.total, 2 + 999_999_999);
    assert_eq!(v.delivery_gaps.examples.len(), EXAMPLES);
    assert_eq!(v.delivery_gaps.examples[2], delivery(1, 1));
}

#[test]
fn render_names_each_finding_and_the_availability() {
    let v = Run::baseline().check();
    let text = v.render();
    assert!(text.starts_with("chaos check  ok\n"), "{text}");
    assert!(
        text.contains("1 stored without an ack, 1 never stored"),
        "{text}"
    );
    assert!(text.contains("105 ms (95..200 ms)"), "{text}");
    assert!(text.contains("50 ms after the heal at 150 ms"), "{text}");

    let mut run = Run::baseline();
    run.history.pop();
    let text = run.check().render();
    assert!(text.starts_with("chaos check  FAILED\n"), "{text}");
    assert!(
        text.contains("lost: 1 — payload 105 (acked at offset 5)\n"),
        "{text}"
    );
    assert!(
        text.contains("subscriber 0 offset 5; subscriber 1 offset 5\n"),
        "{text}"
    );
}
