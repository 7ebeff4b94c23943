//! Publish budgets: one per user, shared by all of the user's connections and by HTTP publish
//! (a user cannot multiply it by opening sockets), and one per server API key. Each connection
//! also keeps its own budget (`SWITCHBOARD_PUBLISH_RATE`), so one busy tab cannot spend the
//! user's whole budget in a burst.

use std::sync::Arc;

use crate::config::Config;
use crate::rate::{per_second, KeyedBudget};

pub(crate) struct Budget {
    per_user: KeyedBudget<Arc<str>>,
    per_key: KeyedBudget<usize>,
    api_keys: Vec<String>,
}

/// Who pays for a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payer<'a> {
    User(&'a Arc<str>),
    /// The index of a server API key in `SWITCHBOARD_API_KEYS`.
    ApiKey(usize),
}

/// The budget is spent: `rate_limited` / 429.
#[derive(Debug, thiserror::Error)]
#[error("publish budget exceeded, slow down ({0})")]
pub(crate) struct OverBudget(&'static str);

impl Budget {
    pub(crate) fn new(config: &Config) -> Budget {
        Budget {
            per_user: KeyedBudget::new(per_second(
                config.user_publish_rate,
                config.user_publish_burst,
            )),
            per_key: KeyedBudget::new(per_second(config.api_key_rate, config.api_key_burst)),
            api_keys: config
                .api_keys
                .iter()
                .map(|k| k.expose().trim().to_owned())
                .collect(),
        }
    }

    /// Which API key `token` is, if any: compared in constant time, so timing tells nothing
    /// about a key's prefix.
    pub(crate) fn api_key(&self, token: &str) -> Option<usize> {
        let mut found = None;
        for (i, key) in self.api_keys.iter().enumerate() {
            if constant_time_eq(key.as_bytes(), token.as_bytes()) {
                found = Some(i);
            }
        }
        found
    }

    /// Counts one publish.
    pub(crate) fn spend(&self, payer: Payer<'_>) -> Result<(), OverBudget> {
        let spent = match payer {
            Payer::User(user) => self
                .per_user
                .allow(user)
                .then_some(())
                .ok_or(OverBudget("SWITCHBOARD_USER_PUBLISH_RATE")),
            Payer::ApiKey(key) => self
                .per_key
                .allow(&key)
                .then_some(())
                .ok_or(OverBudget("SWITCHBOARD_API_KEY_RATE")),
        };
        if spent.is_err() {
            crate::metrics::refused("publish_budget");
        }
        spent
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_budget_is_one_whoever_spends_it_and_keys_are_recognised_exactly() {
        let mut config = Config::defaults();
        config.user_publish_rate = std::num::NonZeroU32::MIN;
        config.user_publish_burst = std::num::NonZeroU32::new(3).unwrap();
        config.api_keys = vec![" sk_0123456789abcdef0123456789abcdef ".into()];
        let budget = Budget::new(&config);
        let alice: Arc<str> = "alice".into();
        let bob: Arc<str> = "bob".into();
        for _ in 0..3 {
            assert!(budget.spend(Payer::User(&alice)).is_ok());
        }
        assert!(budget.spend(Payer::User(&alice)).is_err());
        assert!(budget.spend(Payer::User(&bob)).is_ok());
        assert_eq!(
            budget.api_key("sk_0123456789abcdef0123456789abcdef"),
            Some(0)
        );
        assert_eq!(budget.api_key("sk_0123456789abcdef0123456789abcdeF"), None);
        assert_eq!(budget.api_key("sk_0123456789abcdef"), None);
        assert_eq!(budget.api_key(""), None);
    }
}
