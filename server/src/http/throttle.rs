//! Per-user request budgets over HTTP: social writes ([`super::extract::Writer`]) and reads of
//! pages ([`super::extract::Reader`]). Publishes have the publish budget instead.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;

/// Users tracked before idle entries are dropped (a full budget is the same as no entry).
const TRACKED_MAX: usize = 100_000;

pub struct UserRate {
    per_user: DefaultKeyedRateLimiter<Arc<str>>,
    /// What the refusal says is spent (the setting's name).
    what: &'static str,
}

impl UserRate {
    pub fn new(per_sec: u32, burst: u32, what: &'static str) -> UserRate {
        let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        UserRate {
            per_user: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            what,
        }
    }

    /// Counts one write by `user`; `rate_limited` when their budget is spent.
    pub fn check(&self, user: &Arc<str>) -> Result<(), ApiError> {
        let allowed = self.per_user.check_key(user).is_ok();
        if self.per_user.len() > TRACKED_MAX {
            self.per_user.retain_recent();
        }
        if allowed {
            Ok(())
        } else {
            crate::metrics::refused(self.what);
            Err(ApiError::RateLimited(format!(
                "too many requests, slow down ({})",
                self.what
            )))
        }
    }
}
