//! Keyed rate budgets (per user, per sender, per API key, per pair) that forget idle keys. A key
//! whose budget has refilled is the same as no key, so past a size the map drops those; the size
//! is looked at only every so many checks, because counting a concurrent map's entries visits
//! every shard and the publish path checks a budget per message.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys kept before those with a full budget are dropped.
const TRACKED_MAX: usize = 100_000;
/// Checks between two looks at the size.
const PRUNE_EVERY: u64 = 1024;

pub(crate) struct KeyedBudget<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedBudget<K> {
    pub(crate) fn new(quota: Quota) -> KeyedBudget<K> {
        KeyedBudget {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// Spends one unit of `key`'s budget; false when it is spent.
    pub(crate) fn allow(&self, key: &K) -> bool {
        let allowed = self.limiter.check_key(key).is_ok();
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
            && self.limiter.len() > TRACKED_MAX
        {
            self.limiter.retain_recent();
        }
        allowed
    }
}

/// `rate` a second with bursts of `burst`.
pub(crate) fn per_second(rate: NonZeroU32, burst: NonZeroU32) -> Quota {
    Quota::per_second(rate).allow_burst(burst)
}

/// `n` a minute, in a burst of `n`.
pub(crate) fn per_minute(n: NonZeroU32) -> Quota {
    Quota::per_minute(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_spends_its_own_budget() {
        let budget = KeyedBudget::new(per_second(NonZeroU32::MIN, NonZeroU32::new(2).unwrap()));
        assert!(budget.allow(&"a") && budget.allow(&"a"));
        assert!(!budget.allow(&"a"));
        assert!(budget.allow(&"b"));
    }
}
