//! Sessions revoked while their access tokens may still be unexpired. Consulted on every token
//! check, so it is an in-memory map; entries expire with the longest-lived access token they
//! could block. (Across nodes the bus propagates revocations into every node's copy.)

use std::time::{Duration, Instant};

use dashmap::DashMap;

#[derive(Default)]
pub(crate) struct Revocations {
    /// Session id → when the entry can be forgotten.
    revoked: DashMap<String, Instant>,
}

impl Revocations {
    pub(crate) fn revoke(&self, session_id: &str, ttl_secs: u64) {
        let until = Instant::now() + Duration::from_secs(ttl_secs + 60);
        self.revoked.insert(session_id.to_owned(), until);
        if self.revoked.len().is_multiple_of(1024) {
            self.purge();
        }
    }

    pub(crate) fn is_revoked(&self, session_id: &str) -> bool {
        self.revoked.contains_key(session_id)
    }

    /// Drops entries whose tokens have all expired.
    pub(crate) fn purge(&self) {
        let now = Instant::now();
        self.revoked.retain(|_, until| *until > now);
    }
}
