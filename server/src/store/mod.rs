//! Durable storage: users, sessions, rooms, channel history, the follow graph, posts,
//! notification read state and mutes, on SQLite (embedded default) or
//! PostgreSQL, behind one `Store`.
//!
//! Both backends go through sqlx's `Any` driver with the same SQL: the schemas (migrations/sqlite
//! and migrations/postgres) keep to types both speak (TEXT, 64-bit integers, millisecond
//! timestamps), so every query exists once and the same test suite covers both.
//!
//! Chat and notification publishes reach [`Store::append`] through the group commit of
//! [`crate::pipeline::commit`]; feed fan-out commits its chunks itself ([`Store::fanout_step`]),
//! with its progress in the same transaction. Both then hand the batch to the same
//! [`crate::pipeline::AfterCommit`].

pub mod blocks;
mod fanout;
pub mod follows;
mod idempotency;
pub mod lifecycle;
pub mod members;
pub mod mention_outbox;
pub mod messages;
mod mutes;
mod notifications;
mod posts;
mod read_state;
mod rooms;
mod sessions;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use fanout::{Fanout, Step};
pub use follows::{Direction, FollowEdge};
pub use messages::StoredMessage;
pub(crate) use messages::{rfc3339, stored};
pub use mutes::MuteTarget;
pub use notifications::{Notification, MAX_MARK};
pub use posts::{FanoutLease, Post, Reacted};
pub use rooms::Room;
pub use sessions::Session;
pub use users::User;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names by its scheme, `None` for any other scheme.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// Storage errors callers act on; everything else is `Other` (an internal error).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (username taken, room exists).
    #[error("already exists")]
    Conflict,
    #[error(transparent)]
    Other(sqlx::Error),
}

/// Every sqlx error becomes a `StoreError` here, so a unique violation is a `Conflict` wherever
/// it happens (a bare `?` included).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Other(e),
        }
    }
}

impl StoreError {
    /// The wire code of this error (see `switchboard_protocol::ErrorCode`).
    pub fn code(&self) -> switchboard_protocol::ErrorCode {
        match self {
            StoreError::Conflict => switchboard_protocol::ErrorCode::Conflict,
            StoreError::Other(_) => switchboard_protocol::ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database. Cheap to clone (the pool is reference-counted).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: every write takes its turn here first. SQLite allows one writer at a time
    /// and makes the others retry with growing sleeps (the busy handler), which is unfair: a
    /// feed fan-out committing chunk after chunk could keep a chat publish waiting for seconds.
    /// A FIFO queue in front of the database bounds that wait to the writes ahead of it.
    write_turns: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Store {
    /// Opens `database_url` (postgres://…) or, when absent, SQLite under `data_dir`, and runs
    /// that backend's migrations; PostgreSQL sessions get the default idle-in-transaction timeout.
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        pool_size: u32,
    ) -> anyhow::Result<Store> {
        Self::open_with(database_url, data_dir, pool_size, IDLE_TX_TIMEOUT).await
    }

    /// [`Store::open`] with PostgreSQL sessions ended by the server once idle inside a
    /// transaction for `idle_tx_timeout` (see `SWITCHBOARD_DB_IDLE_TX_TIMEOUT_MS`).
    pub async fn open_with(
        database_url: Option<&str>,
        data_dir: &Path,
        pool_size: u32,
        idle_tx_timeout: Duration,
    ) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) => match Backend::of_url(url) {
                Some(backend) => (url.to_owned(), backend),
                None => anyhow::bail!(
                    "DATABASE_URL must be a postgres:// or sqlite: URL, got scheme {:?}",
                    url.split(':').next().unwrap_or_default()
                ),
            },
            None => {
                crate::secret::private_dir(data_dir)?;
                let path = data_dir.join("switchboard.db");
                crate::secret::private_file(&path)?;
                for suffix in ["-wal", "-shm"] {
                    let side = data_dir.join(format!("switchboard.db{suffix}"));
                    if side.exists() {
                        crate::secret::restrict(&side)?;
                    }
                }
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Backend::Sqlite,
                )
            }
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets history reads run beside the single writer; the busy timeout
                    // covers the moments a reader and the writer collide on the lock. Feed
                    // fan-out dirties one index page per row (rows land in thousands of
                    // channels): a 32 MiB page cache and checkpoints every 64 MiB of WAL (not
                    // 4 MiB) halve its cost, as one page is checkpointed once for many commits.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 16384;")
                        .await?;
                    Ok(())
                })
            });
        }
        if backend == Backend::Postgres {
            let settings = session_settings(idle_tx_timeout);
            options = options.after_connect(move |conn, _| {
                let settings = settings.clone();
                Box::pin(async move {
                    conn.execute(settings.as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {backend:?} storage"))?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        refuse_case_conflicts(&pool).await?;
        migrator.run(&pool).await.context("running migrations")?;
        let write_turns =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store {
            pool,
            backend,
            write_turns,
        })
    }

    /// Waits for this write's turn (SQLite; a no-op on PostgreSQL, which has row locks).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_turns {
            Some(turns) => Some(turns.lock().await),
            None => None,
        }
    }

    /// The pool itself, for tests that stage what a crashed node leaves behind.
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers (readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Before the migration that makes usernames and room names unique ignoring case (0003), finds
/// names that differ only in case and refuses to start with them listed: an operator must rename
/// (or merge) them first. Silent on a fresh database and once the migration has run.
async fn refuse_case_conflicts(pool: &AnyPool) -> anyhow::Result<()> {
    let applied = sqlx::query("SELECT 1 FROM _sqlx_migrations WHERE version = 3")
        .fetch_optional(pool)
        .await;
    if !matches!(applied, Ok(None)) {
        return Ok(()); // applied already, or no migration has ever run (a fresh database)
    }
    let mut conflicts = Vec::new();
    for (what, table, column) in [
        ("usernames", "users", "username"),
        ("room names", "rooms", "name"),
    ] {
        let sql = format!(
            "SELECT {column} FROM {table} WHERE lower({column}) IN \
             (SELECT lower({column}) FROM {table} GROUP BY lower({column}) HAVING COUNT(*) > 1) \
             ORDER BY lower({column}), {column} LIMIT 50"
        );
        // No table yet (a fresh database, or another node is creating it right now) means no
        // data to check; a real conflict would still fail the migration's unique index.
        let Ok(names) = sqlx::query_scalar::<_, String>(&sql).fetch_all(pool).await else {
            continue;
        };
        if !names.is_empty() {
            conflicts.push(format!("{what}: {}", names.join(", ")));
        }
    }
    anyhow::ensure!(
        conflicts.is_empty(),
        "names must be unique ignoring case, and these differ only in case ({}); rename them \
         (UPDATE users SET username = ... / UPDATE rooms SET name = ...) and start again",
        conflicts.join("; ")
    );
    Ok(())
}

/// How long a query waits for a pool connection: the time to refuse with `unavailable` (HTTP 503)
/// when the database is down and every connection must be made anew (each attempt fails at
/// once when the server is gone, so this is the time spent retrying). Long enough for a pool
/// that is merely busy.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The default of `SWITCHBOARD_DB_IDLE_TX_TIMEOUT_MS`.
pub const IDLE_TX_TIMEOUT: Duration = Duration::from_secs(1);

/// What every PostgreSQL session of a node runs first: a session idle inside a transaction for
/// `idle_tx_timeout` is ended by the server, which releases its row locks. A paused or cut-off
/// node then holds up other nodes' publishes to its channels for that long, not until it is back.
pub fn session_settings(idle_tx_timeout: Duration) -> String {
    format!(
        "SET idle_in_transaction_session_timeout = {}",
        idle_tx_timeout.as_millis().max(1)
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
