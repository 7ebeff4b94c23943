//! At most one notification per (actor, target) pair per window: following someone, unfollowing
//! and following again must not notify them every time (F19). Kept in memory, per node: a
//! pair's window is forgotten after it ends ([`crate::rate`]).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

use crate::rate::KeyedBudget;

pub(crate) struct OncePerWindow {
    pairs: KeyedBudget<(String, String)>,
}

impl OncePerWindow {
    pub(crate) fn new(window: Duration) -> OncePerWindow {
        let quota = Quota::with_period(window.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        OncePerWindow {
            pairs: KeyedBudget::new(quota),
        }
    }

    /// True the first time a pair is seen in its window.
    pub(crate) fn first_in_window(&self, actor: &str, target: &str) -> bool {
        self.pairs.allow(&(actor.to_owned(), target.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_first_once_per_window() {
        let once = OncePerWindow::new(Duration::from_secs(3600));
        assert!(once.first_in_window("alice", "bob"));
        assert!(!once.first_in_window("alice", "bob"));
        assert!(once.first_in_window("bob", "alice"));
        assert!(once.first_in_window("alice", "carol"));
    }
}
