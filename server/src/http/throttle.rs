//! Per-user request budgets over HTTP: social writes ([`super::extract::Writer`]) and reads of
//! pages ([`super::extract::Reader`]). Publishes have the publish budget instead.

use std::num::NonZeroU32;
use std::sync::Arc;

use switchboard_protocol::ErrorCode;

use super::ApiError;
use crate::rate::{per_second, KeyedBudget};

pub(crate) struct UserRate {
    per_user: KeyedBudget<Arc<str>>,
    /// What the refusal says is spent (the setting's name).
    what: &'static str,
}

impl UserRate {
    pub(crate) fn new(per_sec: NonZeroU32, burst: NonZeroU32, what: &'static str) -> UserRate {
        UserRate {
            per_user: KeyedBudget::new(per_second(per_sec, burst)),
            what,
        }
    }

    /// Counts one write by `user`; `rate_limited` when their budget is spent.
    pub(crate) fn check(&self, user: &Arc<str>) -> Result<(), ApiError> {
        if self.per_user.allow(user) {
            Ok(())
        } else {
            crate::metrics::refused(self.what);
            Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests, slow down ({})", self.what),
            ))
        }
    }
}
