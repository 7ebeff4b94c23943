//! Login throttling per account and per client IP, checked before any password hashing so a
//! flood of guesses costs the server almost nothing.
//!
//! The IP's budget is checked first, and an IP that has spent it spends nobody else's: one
//! client cannot lock any number of accounts out by guessing at them (each account's budget is
//! spent only by attempts an IP was still allowed to make). IPv6 clients are keyed by their /64,
//! which is what one host is usually given. Keys are forgotten once idle, by time.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// How often keys whose budget has fully refilled are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Throttle {
    per_user: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    last_purge: Mutex<Instant>,
}

/// What the throttle says to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Throttled,
}

impl Throttle {
    pub(crate) fn new(per_user_per_min: NonZeroU32, per_ip_per_min: NonZeroU32) -> Throttle {
        Throttle {
            per_user: RateLimiter::keyed(Quota::per_minute(per_user_per_min)),
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip_per_min)),
            last_purge: Mutex::new(Instant::now()),
        }
    }

    /// Counts one attempt from `ip`, for `username` when it is one that can exist (`None`
    /// otherwise: a malformed name never becomes a key).
    pub(crate) fn check(&self, username: Option<&str>, ip: IpAddr) -> Verdict {
        self.purge_now_and_then();
        if self.per_ip.check_key(&crate::net::client_key(ip)).is_err() {
            return Verdict::Throttled;
        }
        match username {
            Some(name) if self.per_user.check_key(&name.to_ascii_lowercase()).is_err() => {
                Verdict::Throttled
            }
            _ => Verdict::Allowed,
        }
    }

    fn purge_now_and_then(&self) {
        let mut last = self.last_purge.lock();
        if last.elapsed() < PURGE_EVERY {
            return;
        }
        *last = Instant::now();
        drop(last);
        self.per_user.retain_recent();
        self.per_user.shrink_to_fit();
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
    }
}

/// The registration budgets: per client address (by /64 for IPv6) and for the whole node.
pub(crate) struct RegisterThrottle {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    node: DefaultDirectRateLimiter,
    last_purge: Mutex<Instant>,
}

impl RegisterThrottle {
    pub(crate) fn new(per_ip_per_min: NonZeroU32, node_per_min: NonZeroU32) -> RegisterThrottle {
        RegisterThrottle {
            per_ip: RateLimiter::keyed(Quota::per_minute(per_ip_per_min)),
            node: RateLimiter::direct(Quota::per_minute(node_per_min)),
            last_purge: Mutex::new(Instant::now()),
        }
    }

    /// Counts one registration from `ip`; the node's budget is spent only by addresses still
    /// within theirs.
    pub(crate) fn check(&self, ip: IpAddr) -> Verdict {
        {
            let mut last = self.last_purge.lock();
            if last.elapsed() >= PURGE_EVERY {
                *last = Instant::now();
                self.per_ip.retain_recent();
                self.per_ip.shrink_to_fit();
            }
        }
        if self.per_ip.check_key(&crate::net::client_key(ip)).is_err() || self.node.check().is_err()
        {
            return Verdict::Throttled;
        }
        Verdict::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn one_ipv6_host_is_one_client_and_a_throttled_ip_spends_no_account_budget() {
        let throttle = Throttle::new(n(2), n(3));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for ip in [a, b, a] {
            assert_eq!(throttle.check(None, ip), Verdict::Allowed);
        }
        // Same /64: throttled, and the victim's budget is not touched.
        for _ in 0..5 {
            assert_eq!(throttle.check(Some("victim"), b), Verdict::Throttled);
        }
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.check(Some("Victim"), elsewhere), Verdict::Allowed);
        assert_eq!(throttle.check(Some("victim"), elsewhere), Verdict::Allowed);
        assert_eq!(
            throttle.check(Some("VICTIM"), elsewhere),
            Verdict::Throttled
        );
    }

    #[test]
    fn registrations_are_counted_per_address_and_for_the_node() {
        let throttle = RegisterThrottle::new(n(2), n(3));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(throttle.check(a), Verdict::Allowed);
        assert_eq!(throttle.check(a), Verdict::Allowed);
        assert_eq!(throttle.check(a), Verdict::Throttled, "a's budget");
        assert_eq!(throttle.check(b), Verdict::Allowed);
        assert_eq!(throttle.check(b), Verdict::Throttled, "the node's budget");
    }
}
