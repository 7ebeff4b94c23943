//! Password hashing: argon2id with the OWASP minimum (m = 19456 KiB, t = 2, p = 1), which is also
//! the argon2 crate's default. Hashing takes tens of milliseconds of CPU, so it runs on the
//! blocking pool, never on the async workers, and only as many at once as [`Hashing`] lets
//! through: tokio's blocking pool would otherwise run 512 (10 GiB and every core) in a flood.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use anyhow::Context;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest a request waits for a hashing slot before it is told to come back later.
const HASH_WAIT: Duration = Duration::from_secs(2);

/// What a hash is for: registrations may hold only part of the slots, so a registration flood
/// (which the per-IP and node-wide registration budgets already slow) never starves logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Login,
    Register,
}

/// The bound on concurrent password hashing, and on the requests waiting for it.
pub(super) struct Hashing {
    all: Semaphore,
    registrations: Semaphore,
    waiting: AtomicUsize,
    queue: usize,
}

/// A hashing slot; released when dropped.
pub(super) struct Slot<'a> {
    _all: SemaphorePermit<'a>,
    _registration: Option<SemaphorePermit<'a>>,
}

/// No hashing slot came free in time, or too many requests already wait for one.
#[derive(Debug)]
pub(super) struct Busy;

impl Hashing {
    pub(super) fn new(slots: usize, queue: usize) -> Hashing {
        let slots = slots.max(1);
        Hashing {
            all: Semaphore::new(slots),
            registrations: Semaphore::new((slots / 2).max(1)),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    pub(super) async fn slot(&self, purpose: Purpose) -> Result<Slot<'_>, Busy> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let acquire = async {
            let registration = match purpose {
                Purpose::Register => Some(self.registrations.acquire().await.map_err(|_| Busy)?),
                Purpose::Login => None,
            };
            let all = self.all.acquire().await.map_err(|_| Busy)?;
            Ok(Slot {
                _all: all,
                _registration: registration,
            })
        };
        let slot = tokio::time::timeout(HASH_WAIT, acquire)
            .await
            .unwrap_or(Err(Busy));
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        slot
    }
}

fn argon2() -> Argon2<'static> {
    // Spelled out rather than `Argon2::default()` so a change of crate defaults cannot weaken it.
    let params = Params::new(19_456, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(super) async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Verifies `password` against `stored`; with no stored hash (unknown user) verifies against a
/// fixed dummy hash and returns false, so both cases cost the same time.
pub(super) async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let ok = argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && ok)
    })
    .await
    .context("password verification task")?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"not a real password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registrations_leave_room_for_logins_and_a_full_queue_is_refused_at_once() {
        let hashing = Hashing::new(2, 3);
        let r1 = hashing.slot(Purpose::Register).await.unwrap();
        // The second registration waits (registrations hold at most half), a login does not.
        let login = hashing.slot(Purpose::Login).await.unwrap();
        let started = std::time::Instant::now();
        assert!(hashing.slot(Purpose::Register).await.is_err());
        assert!(started.elapsed() >= HASH_WAIT - Duration::from_millis(100));
        drop((r1, login));
        assert!(hashing.slot(Purpose::Register).await.is_ok());
        let none = Hashing::new(1, 0);
        let started = std::time::Instant::now();
        assert!(none.slot(Purpose::Login).await.is_err());
        assert!(started.elapsed() < HASH_WAIT / 2, "refused without waiting");
    }
}
