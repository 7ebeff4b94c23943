//! The integration suite: one binary, real servers on port 0, real PostgreSQL.

/// Runs an async test body `fn(Backend)` once against SQLite and once against PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(switchboard_tests::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(switchboard_tests::Backend::Postgres).await
            }
        }
    )*};
}

mod abuse;
mod attacks;
mod auth;
mod chat;
mod cluster;
mod cors;
mod demo;
mod dms;
mod errors;
mod faults;
mod feed;
mod handshake;
mod history;
mod idempotency;
mod lifecycle;
mod loadtest;
mod membership;
mod metrics;
mod multinode;
mod notifications;
mod presence;
mod read_state;
mod recovery;
mod shutdown;
mod storage;
mod typing;
mod ws_limits;
