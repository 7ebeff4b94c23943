//! Login throttling per account and per client IP, checked before any password hashing so a
//! flood of guesses costs the server almost nothing.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Throttle {
    per_user: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl Throttle {
    pub fn new(per_user_per_min: u32, per_ip_per_min: u32) -> Throttle {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Throttle {
            per_user: RateLimiter::keyed(quota(per_user_per_min)),
            per_ip: RateLimiter::keyed(quota(per_ip_per_min)),
        }
    }

    /// Counts one attempt; false when either budget is spent.
    pub fn allow(&self, username: &str, ip: IpAddr) -> bool {
        let ip_ok = self.per_ip.check_key(&ip).is_ok();
        let user_ok = self
            .per_user
            .check_key(&username.to_ascii_lowercase())
            .is_ok();
        if self.per_user.len() > 100_000 {
            self.per_user.retain_recent();
            self.per_ip.retain_recent();
        }
        ip_ok && user_ok
    }
}
