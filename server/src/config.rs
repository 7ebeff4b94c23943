//! One typed configuration, read from flags or environment variables (`switchboard --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Switchboard: a real-time server for chat, feeds and notifications.
///
/// With no configuration it listens on 127.0.0.1:8080, keeps its data in ./data (embedded SQLite)
/// and fans out in-process. Set DATABASE_URL (postgres://) and REDIS_URL to run several nodes.
#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard", version)]
pub struct Config {
    /// Address to listen on for HTTP and WebSocket traffic.
    #[arg(long, env = "SWITCHBOARD_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the embedded SQLite database and the generated signing secret.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Storage URL. A postgres:// URL switches storage to PostgreSQL; unset means SQLite in the
    /// data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis URL for cross-node fan-out. Unset means the in-process bus (single node).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Treat `REDIS_URL` as a Redis Cluster (one or more node URLs, comma-separated) and fan out
    /// with sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7+), so each channel's traffic stays
    /// on the shard that owns it.
    #[arg(long, env = "SWITCHBOARD_REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,

    /// Prefix of every Redis key and pub/sub channel this deployment uses, so several
    /// deployments (or test runs) can share one Redis.
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", default_value = "switchboard:")]
    pub redis_prefix: String,

    /// Key that signs access tokens (HS256); every node of a cluster must share it. When unset,
    /// one is generated once into <data dir>/secret and reused.
    #[arg(long, env = "SWITCHBOARD_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Comma-separated Origins allowed to open WebSockets (`*` allows any). Requests without an
    /// Origin header (non-browser clients) always pass. Default: same-origin only.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Largest WebSocket frame/message accepted, in bytes; larger closes the socket with 1009.
    #[arg(long, env = "SWITCHBOARD_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Per-connection outbound queue bound, in bytes. A subscriber whose queue would grow past it
    /// is disconnected with close code 4008 and recovers with `since`: one slow reader never
    /// holds memory or slows fan-out for the others.
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub outbound_queue_bytes: usize,

    /// Most channels one connection may be subscribed to at once.
    #[arg(long, env = "SWITCHBOARD_MAX_SUBSCRIPTIONS", default_value_t = 256)]
    pub max_subscriptions: usize,

    /// Sustained publishes per second allowed per connection (excess gets `rate_limited`).
    #[arg(long, env = "SWITCHBOARD_PUBLISH_RATE", default_value_t = 200)]
    pub publish_rate: u32,

    /// Burst of publishes per connection allowed above the sustained rate.
    #[arg(long, env = "SWITCHBOARD_PUBLISH_BURST", default_value_t = 400)]
    pub publish_burst: u32,

    /// Social writes over HTTP (posts, replies, reactions, follows, mutes, mark-read, rooms) per
    /// user per second, sustained; past it and the burst, 429 `rate_limited`. (Publishing to a
    /// channel over HTTP is for backends and is not counted here.)
    #[arg(long, env = "SWITCHBOARD_HTTP_WRITE_RATE", default_value_t = 20)]
    pub http_write_rate: u32,

    /// Burst of HTTP writes per user allowed above the sustained rate.
    #[arg(long, env = "SWITCHBOARD_HTTP_WRITE_BURST", default_value_t = 100)]
    pub http_write_burst: u32,

    /// Login attempts per username per minute, checked before any password hashing.
    #[arg(long, env = "SWITCHBOARD_LOGIN_PER_USER", default_value_t = 10)]
    pub login_per_user_per_min: u32,

    /// Login attempts per client IP per minute, checked before any password hashing.
    #[arg(long, env = "SWITCHBOARD_LOGIN_PER_IP", default_value_t = 60)]
    pub login_per_ip_per_min: u32,

    /// Seconds a new WebSocket has to authenticate before it is closed with 1008.
    #[arg(long, env = "SWITCHBOARD_AUTH_TIMEOUT_SECS", default_value_t = 10)]
    pub auth_timeout_secs: u64,

    /// Seconds between server pings on an otherwise quiet connection.
    #[arg(long, env = "SWITCHBOARD_PING_INTERVAL_SECS", default_value_t = 25)]
    pub ping_interval_secs: u64,

    /// Seconds without any frame (or pong) from a client before it is closed (4009).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Access-token lifetime in seconds. Short, because revocation relies on it expiring.
    #[arg(long, env = "SWITCHBOARD_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,

    /// Refresh-token (session) lifetime in seconds.
    #[arg(long, env = "SWITCHBOARD_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,

    /// Seconds during which the refresh token just rotated away is refused without revoking the
    /// session (a retry after a lost response, or a second tab refreshing at the same moment);
    /// after it, presenting it counts as theft and revokes the session.
    #[arg(long, env = "SWITCHBOARD_REFRESH_GRACE_SECS", default_value_t = 10)]
    pub refresh_grace_secs: u64,

    /// Largest page of history one request may ask for (`limit` is capped to it).
    #[arg(long, env = "SWITCHBOARD_HISTORY_MAX", default_value_t = 200)]
    pub history_max: u32,

    /// Most publishes committed in one storage transaction (group commit). Bigger batches mean
    /// fewer fsyncs under load; a batch never waits to fill, so idle latency is unaffected.
    #[arg(long, env = "SWITCHBOARD_STORE_BATCH", default_value_t = 512)]
    pub store_batch: usize,

    /// Parallel storage writers (channels are hashed onto them, so per-channel order holds).
    /// 0 = automatic: 1 for SQLite (one writer at a time anyway), 4 for PostgreSQL.
    #[arg(long, env = "SWITCHBOARD_STORE_WRITERS", default_value_t = 0)]
    pub store_writers: usize,

    /// Storage connection pool size.
    #[arg(long, env = "SWITCHBOARD_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,

    /// Milliseconds over which clients are told to spread their reconnects when this node shuts
    /// down, so they do not stampede the remaining nodes.
    #[arg(long, env = "SWITCHBOARD_DRAIN_WINDOW_MS", default_value_t = 2000)]
    pub drain_window_ms: u64,

    /// Rooms with more online users than this get no join/leave events (each arrival would
    /// otherwise cost every member a frame: quadratic traffic); `presence` requests still work.
    #[arg(long, env = "SWITCHBOARD_PRESENCE_EVENTS_MAX", default_value_t = 1000)]
    pub presence_events_max: u64,

    /// Milliseconds the sequencer waits for a missing offset before reading it from storage.
    #[arg(long, env = "SWITCHBOARD_GAP_TIMEOUT_MS", default_value_t = 50)]
    pub gap_timeout_ms: u64,

    /// Followers whose feeds one fan-out transaction writes a post into. Larger chunks fan out
    /// faster; smaller ones hold the database (SQLite's single write lock) for less time, which
    /// bounds how long a big fan-out can delay other publishes.
    #[arg(long, env = "SWITCHBOARD_FEED_CHUNK", default_value_t = 500)]
    pub feed_chunk: u32,
}

impl Config {
    /// Defaults for everything, as if started with no flags and no environment (for tests).
    pub fn defaults() -> Config {
        Config::parse_from(["switchboard"])
    }

    /// Refuses, at start, settings that could only fail later (a zero page size, batch, frame
    /// limit, rate, timeout or pool), naming the variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        let at_least_one: [(&str, u64); 19] = [
            ("SWITCHBOARD_MAX_FRAME_BYTES", self.max_frame_bytes as u64),
            (
                "SWITCHBOARD_OUTBOUND_QUEUE_BYTES",
                self.outbound_queue_bytes as u64,
            ),
            (
                "SWITCHBOARD_MAX_SUBSCRIPTIONS",
                self.max_subscriptions as u64,
            ),
            ("SWITCHBOARD_PUBLISH_RATE", self.publish_rate.into()),
            ("SWITCHBOARD_PUBLISH_BURST", self.publish_burst.into()),
            ("SWITCHBOARD_HTTP_WRITE_RATE", self.http_write_rate.into()),
            ("SWITCHBOARD_HTTP_WRITE_BURST", self.http_write_burst.into()),
            (
                "SWITCHBOARD_LOGIN_PER_USER",
                self.login_per_user_per_min.into(),
            ),
            ("SWITCHBOARD_LOGIN_PER_IP", self.login_per_ip_per_min.into()),
            ("SWITCHBOARD_AUTH_TIMEOUT_SECS", self.auth_timeout_secs),
            ("SWITCHBOARD_PING_INTERVAL_SECS", self.ping_interval_secs),
            ("SWITCHBOARD_IDLE_TIMEOUT_SECS", self.idle_timeout_secs),
            ("SWITCHBOARD_ACCESS_TTL_SECS", self.access_ttl_secs),
            ("SWITCHBOARD_REFRESH_TTL_SECS", self.refresh_ttl_secs),
            ("SWITCHBOARD_HISTORY_MAX", self.history_max.into()),
            ("SWITCHBOARD_STORE_BATCH", self.store_batch as u64),
            ("SWITCHBOARD_DB_POOL", self.db_pool.into()),
            ("SWITCHBOARD_GAP_TIMEOUT_MS", self.gap_timeout_ms),
            ("SWITCHBOARD_FEED_CHUNK", self.feed_chunk.into()),
        ];
        for (name, value) in at_least_one {
            anyhow::ensure!(value >= 1, "{name} must be at least 1 (got 0)");
        }
        anyhow::ensure!(
            self.max_frame_bytes <= 16 * 1024 * 1024,
            "SWITCHBOARD_MAX_FRAME_BYTES is at most 16 MiB (got {})",
            self.max_frame_bytes
        );
        anyhow::ensure!(
            self.outbound_queue_bytes >= self.max_frame_bytes,
            "SWITCHBOARD_OUTBOUND_QUEUE_BYTES ({}) must hold at least one frame of \
             SWITCHBOARD_MAX_FRAME_BYTES ({})",
            self.outbound_queue_bytes,
            self.max_frame_bytes
        );
        Ok(())
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_secs)
    }
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    pub fn gap_timeout(&self) -> Duration {
        Duration::from_millis(self.gap_timeout_ms)
    }
}
