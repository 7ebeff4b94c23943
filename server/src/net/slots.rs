//! Counted places for things a client holds open (sockets), in total and per key (client address,
//! user). A [`Slot`] gives its place back when dropped, so a place is held exactly as long as the
//! thing it was taken for, however that ends.

use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

/// Places per key, at most `per_key` each.
pub(crate) struct Slots<K: Eq + Hash + Clone + Send + Sync + 'static> {
    held: DashMap<K, usize>,
    per_key: usize,
}

/// One held place; dropping it gives it back.
pub(crate) struct Slot<K: Eq + Hash + Clone + Send + Sync + 'static> {
    slots: Arc<Slots<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone + Send + Sync + 'static> Slots<K> {
    pub(crate) fn new(per_key: usize) -> Arc<Slots<K>> {
        Arc::new(Slots {
            held: DashMap::new(),
            per_key,
        })
    }

    /// A place for `key`, or `None` when it already holds `per_key`.
    pub(crate) fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut count = self.held.entry(key.clone()).or_insert(0);
        if *count >= self.per_key {
            return None;
        }
        *count += 1;
        drop(count);
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }

    /// Places `key` holds now.
    #[cfg(test)]
    pub(crate) fn held(&self, key: &K) -> usize {
        self.held.get(key).map_or(0, |c| *c)
    }

    /// Keys holding at least one place (the map never keeps empty keys).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.held.len()
    }
}

impl<K: Eq + Hash + Clone + Send + Sync + 'static> Drop for Slot<K> {
    fn drop(&mut self) {
        // Removed when the last place goes, so the map is as big as the keys holding any.
        self.slots.held.remove_if_mut(&self.key, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }
}

/// A count with a ceiling, for the total of something (every open socket of the node).
pub(crate) struct Gauge {
    held: AtomicUsize,
    max: usize,
}

/// One place of a [`Gauge`]; dropping it gives it back.
pub(crate) struct GaugeSlot(Arc<Gauge>);

impl Gauge {
    pub(crate) fn new(max: usize) -> Arc<Gauge> {
        Arc::new(Gauge {
            held: AtomicUsize::new(0),
            max,
        })
    }

    pub(crate) fn take(self: &Arc<Self>) -> Option<GaugeSlot> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| GaugeSlot(self.clone()))
    }
}

impl Drop for GaugeSlot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share_and_gets_places_back_when_slots_drop() {
        let slots = Slots::new(2);
        let a1 = slots.take("a").unwrap();
        let a2 = slots.take("a").unwrap();
        assert!(slots.take("a").is_none());
        let b = slots.take("b").unwrap();
        assert_eq!((slots.held(&"a"), slots.keys()), (2, 2));
        drop(a1);
        let a3 = slots.take("a").unwrap();
        drop((a2, a3, b));
        assert_eq!(slots.keys(), 0, "no empty keys are kept");
        let gauge = Gauge::new(1);
        let g = gauge.take().unwrap();
        assert!(gauge.take().is_none());
        drop(g);
        assert!(gauge.take().is_some());
    }
}
