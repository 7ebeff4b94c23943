//! One typed configuration, read from flags or environment variables (`switchboard --help`).
//!
//! Values have the types they mean: durations are [`Duration`]s, rates [`NonZeroU32`]s (a zero
//! rate is refused when parsed), the signing secret and API keys [`Secret`]s, which print as
//! `[redacted]`. A duration given as a plain number is in the unit its name says (`_SECS`,
//! `_MS`: `SWITCHBOARD_ACCESS_TTL_SECS=900`), one with a unit is taken as written (`15m`,
//! `1h30m`, `250ms`).

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;
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

    /// Address of the admin listener: `/metrics` (only here), `/healthz` and `/readyz`. Keep it
    /// off the public network; `off` disables it.
    #[arg(long, env = "SWITCHBOARD_ADMIN_BIND", default_value = "127.0.0.1:9090")]
    pub admin_bind: String,

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

    /// Bytes of committed messages waiting to go out to Redis; past it (a long Redis outage)
    /// messages are dropped from the bus only: they are stored, and other nodes read them from
    /// storage when they reconnect. Keeps memory flat through an outage.
    #[arg(long, env = "SWITCHBOARD_BUS_BACKLOG_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub bus_backlog_bytes: usize,

    /// Authenticate bus envelopes with an HMAC keyed by the signing secret, and drop any without
    /// a valid one, so a process that can PUBLISH on the Redis cannot inject messages,
    /// revocations or presence. Every node of a cluster must agree on it.
    #[arg(long, env = "SWITCHBOARD_BUS_MAC", default_value_t = true, action = clap::ArgAction::Set)]
    pub bus_mac: bool,

    /// Prefix of every Redis key and pub/sub channel this deployment uses, so several
    /// deployments (or test runs) can share one Redis.
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", default_value = "switchboard:")]
    pub redis_prefix: String,

    /// Key that signs access tokens (HS256); every node of a cluster must share it. When unset,
    /// one is generated once into <data dir>/secret and reused.
    #[arg(long, env = "SWITCHBOARD_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,

    /// Comma-separated Origins allowed to open WebSockets (`*` allows any). Requests without an
    /// Origin header (non-browser clients) always pass. Default: same-origin only.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Comma-separated web origins (`http(s)://host[:port]`) whose pages may call the HTTP API
    /// (`/api/...`) from a browser, or `*` for any. Default: none, so no CORS headers are sent
    /// and only pages served from this server's own origin can read its answers. Tokens travel
    /// as bearer headers, never cookies, so no origin is ever allowed credentials. (Which pages
    /// may open WebSockets is SWITCHBOARD_ALLOWED_ORIGINS.)
    #[arg(
        long,
        env = "SWITCHBOARD_CORS_ORIGINS",
        default_value = "",
        hide_default_value = true
    )]
    pub cors_origins: CorsOrigins,

    /// Serve the demo web app at `/` (and `/demo/app.js`, `/demo/app.css`): true/false, 1/0,
    /// on/off. Default: on for the zero-setup single node (embedded SQLite and no REDIS_URL),
    /// where someone just ran the binary to try it and a page is the quickest way in; off once
    /// DATABASE_URL (PostgreSQL) or REDIS_URL is set, which is a deployment, whose `/` should not
    /// serve a page its operator did not ask for.
    #[arg(
        long,
        env = "SWITCHBOARD_DEMO",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub demo: Option<bool>,

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
    #[arg(
        long = "publish-rate",
        env = "SWITCHBOARD_PUBLISH_RATE",
        default_value = "200"
    )]
    pub publish_rate: NonZeroU32,

    /// Burst of publishes per connection allowed above the sustained rate.
    #[arg(
        long = "publish-burst",
        env = "SWITCHBOARD_PUBLISH_BURST",
        default_value = "400"
    )]
    pub publish_burst: NonZeroU32,

    /// Sustained publishes per second per user, shared by all of the user's connections and by
    /// HTTP publish (past it and the burst, `rate_limited` / 429): more connections buy no more.
    #[arg(
        long = "user-publish-rate",
        env = "SWITCHBOARD_USER_PUBLISH_RATE",
        default_value = "200"
    )]
    pub user_publish_rate: NonZeroU32,

    /// Burst of publishes per user allowed above the sustained rate.
    #[arg(
        long = "user-publish-burst",
        env = "SWITCHBOARD_USER_PUBLISH_BURST",
        default_value = "400"
    )]
    pub user_publish_burst: NonZeroU32,

    /// Server API keys (comma-separated, each at least 32 characters) for backends that publish
    /// on behalf of the system: `Authorization: Bearer <key>` on
    /// `POST /api/v1/channels/{channel}/messages` publishes to any room as `system`.
    #[arg(
        long,
        env = "SWITCHBOARD_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<Secret>,

    /// Sustained publishes per second per API key.
    #[arg(
        long = "api-key-rate",
        env = "SWITCHBOARD_API_KEY_RATE",
        default_value = "1000"
    )]
    pub api_key_rate: NonZeroU32,

    /// Burst of publishes per API key above the sustained rate.
    #[arg(
        long = "api-key-burst",
        env = "SWITCHBOARD_API_KEY_BURST",
        default_value = "2000"
    )]
    pub api_key_burst: NonZeroU32,

    /// Social writes over HTTP (posts, replies, reactions, follows, mutes, mark-read, rooms) per
    /// user per second, sustained; past it and the burst, 429 `rate_limited`. (Publishing to a
    /// channel is counted by the publish budget instead.)
    #[arg(
        long = "http-write-rate",
        env = "SWITCHBOARD_HTTP_WRITE_RATE",
        default_value = "20"
    )]
    pub http_write_rate: NonZeroU32,

    /// Burst of HTTP writes per user allowed above the sustained rate.
    #[arg(
        long = "http-write-burst",
        env = "SWITCHBOARD_HTTP_WRITE_BURST",
        default_value = "100"
    )]
    pub http_write_burst: NonZeroU32,

    /// Page reads over HTTP (history, feed, notifications, a user's posts) per user per second,
    /// sustained; past it and the burst, 429 `rate_limited`.
    #[arg(
        long = "http-read-rate",
        env = "SWITCHBOARD_HTTP_READ_RATE",
        default_value = "50"
    )]
    pub http_read_rate: NonZeroU32,

    /// Burst of HTTP page reads per user allowed above the sustained rate.
    #[arg(
        long = "http-read-burst",
        env = "SWITCHBOARD_HTTP_READ_BURST",
        default_value = "200"
    )]
    pub http_read_burst: NonZeroU32,

    /// Requests other than publish (subscribe, unsubscribe, history, presence) per WebSocket
    /// connection per second, sustained; past it and the burst, `rate_limited`. Bounds what one
    /// socket can make the node do for it, such as join/leave events to a whole room by
    /// toggling a subscription.
    #[arg(
        long = "request-rate",
        env = "SWITCHBOARD_REQUEST_RATE",
        default_value = "20"
    )]
    pub request_rate: NonZeroU32,

    /// Burst of such requests per connection (room for resubscribing everything at once after a
    /// reconnect: the default subscription limit is 256).
    #[arg(
        long = "request-burst",
        env = "SWITCHBOARD_REQUEST_BURST",
        default_value = "300"
    )]
    pub request_burst: NonZeroU32,

    /// Chat messages with `@mentions` per sender per minute whose mentions are notified; past
    /// it, further messages are stored and delivered as usual but notify nobody.
    #[arg(
        long = "mentions-per-min",
        env = "SWITCHBOARD_MENTIONS_PER_MIN",
        default_value = "60"
    )]
    pub mentions_per_min: NonZeroU32,

    /// Login attempts per username per minute, checked before any password hashing.
    #[arg(
        long = "login-per-user-per-min",
        env = "SWITCHBOARD_LOGIN_PER_USER",
        default_value = "10"
    )]
    pub login_per_user_per_min: NonZeroU32,

    /// Login attempts per client IP per minute, checked before any password hashing.
    #[arg(
        long = "login-per-ip-per-min",
        env = "SWITCHBOARD_LOGIN_PER_IP",
        default_value = "60"
    )]
    pub login_per_ip_per_min: NonZeroU32,

    /// Client registrations per client IP per minute (a burst of as many, then one every
    /// 60/n s); checked before any password hashing.
    #[arg(
        long = "register-per-ip-per-min",
        env = "SWITCHBOARD_REGISTER_PER_IP",
        default_value = "10"
    )]
    pub register_per_ip_per_min: NonZeroU32,

    /// Registrations per minute for the whole node, from all addresses together: sockpuppets
    /// from many addresses still cost at most this many password hashes.
    #[arg(
        long = "register-per-min",
        env = "SWITCHBOARD_REGISTER_PER_MIN",
        default_value = "300"
    )]
    pub register_per_min: NonZeroU32,

    /// Password hashes (login, registration) computed at once; each holds 19 MiB and a core for
    /// tens of milliseconds. 0 = the number of cores. Registrations may use at most half of
    /// them, so logins always have room.
    #[arg(long, env = "SWITCHBOARD_HASH_CONCURRENCY", default_value_t = 0)]
    pub hash_concurrency: usize,

    /// Requests waiting for a hashing slot; past it, and past a 2 s wait, 503 `unavailable`
    /// (a flood is refused at once rather than queued for minutes).
    #[arg(long, env = "SWITCHBOARD_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Peers (comma-separated addresses or CIDR blocks, e.g. `10.0.0.0/8,::1`) whose
    /// `X-Forwarded-For` (or `Forwarded`) is believed: the client is the right-most address in
    /// it that is not one of these. Default: none, so the TCP peer is the client. Set it to
    /// your load balancers, or every limit per IP counts the balancer.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<crate::net::Cidr>,

    /// The header the trusted proxies write the client chain into.
    #[arg(
        long,
        env = "SWITCHBOARD_CLIENT_IP_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub client_ip_header: crate::net::ClientIpHeader,

    /// Open sockets (HTTP and WebSocket) the node accepts at once; past it new ones get 503 and
    /// are closed. 0 = automatic: the process's descriptor limit less 256 for storage and
    /// Redis, at most 50,000.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Open sockets per client IP (an IPv6 client by its /64): from a direct peer, counted at
    /// accept (503 past it); from a client behind a trusted proxy, its WebSockets, counted at
    /// the upgrade (429).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1000
    )]
    pub max_connections_per_ip: usize,

    /// Open WebSockets per user, across all their sessions: past it, 429 at the upgrade (bearer
    /// token) or `rate_limited` and close 1013 after the `auth` frame.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_USER",
        default_value_t = 50
    )]
    pub max_connections_per_user: usize,

    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// or the end of its previous response, so it is also the keep-alive idle timeout.
    #[arg(
        long = "http-header-timeout-secs",
        env = "SWITCHBOARD_HTTP_HEADER_TIMEOUT_SECS",
        default_value = "10", value_parser = secs)]
    pub http_header_timeout: Duration,

    /// Seconds an HTTP request may take from its headers to its response (reading a slow body
    /// included); past it, 503 `unavailable`.
    #[arg(
        long = "http-request-timeout-secs",
        env = "SWITCHBOARD_HTTP_REQUEST_TIMEOUT_SECS",
        default_value = "30", value_parser = secs)]
    pub http_request_timeout: Duration,

    /// Seconds a write to a client (an HTTP response, a WebSocket frame) may make no progress
    /// before the connection is dropped: a client that stops reading cannot pin memory.
    #[arg(long = "write-timeout-secs", env = "SWITCHBOARD_WRITE_TIMEOUT_SECS", default_value = "30", value_parser = secs)]
    pub write_timeout: Duration,

    /// Seconds a new WebSocket has to authenticate before it is closed with 1008.
    #[arg(long = "auth-timeout-secs", env = "SWITCHBOARD_AUTH_TIMEOUT_SECS", default_value = "10", value_parser = secs)]
    pub auth_timeout: Duration,

    /// Seconds between server pings on an otherwise quiet connection.
    #[arg(long = "ping-interval-secs", env = "SWITCHBOARD_PING_INTERVAL_SECS", default_value = "25", value_parser = secs)]
    pub ping_interval: Duration,

    /// Seconds without any frame (or pong) from a client before it is closed (4009).
    #[arg(long = "idle-timeout-secs", env = "SWITCHBOARD_IDLE_TIMEOUT_SECS", default_value = "60", value_parser = secs)]
    pub idle_timeout: Duration,

    /// Access-token lifetime in seconds. Short, because revocation relies on it expiring.
    #[arg(long = "access-ttl-secs", env = "SWITCHBOARD_ACCESS_TTL_SECS", default_value = "900", value_parser = secs)]
    pub access_ttl: Duration,

    /// Refresh-token (session) lifetime in seconds.
    #[arg(long = "refresh-ttl-secs", env = "SWITCHBOARD_REFRESH_TTL_SECS", default_value = "2592000", value_parser = secs)]
    pub refresh_ttl: Duration,

    /// Seconds during which the refresh token just rotated away is refused without revoking the
    /// session (a retry after a lost response, or a second tab refreshing at the same moment);
    /// after it, presenting it counts as theft and revokes the session.
    #[arg(long = "refresh-grace-secs", env = "SWITCHBOARD_REFRESH_GRACE_SECS", default_value = "10", value_parser = secs)]
    pub refresh_grace: Duration,

    /// Largest page of history one request may ask for (`limit` is capped to it).
    #[arg(long, env = "SWITCHBOARD_HISTORY_MAX", default_value_t = 200)]
    pub history_max: u32,

    /// Read receipts (`GET /api/v1/rooms/{name}/read_state`) are given only for rooms of at
    /// most this many members: beyond, who read how far is noise, and the page is refused.
    #[arg(
        long,
        env = "SWITCHBOARD_READ_RECEIPTS_MAX_MEMBERS",
        default_value_t = 100
    )]
    pub read_receipts_max_members: u64,

    /// Distinct emoji one user may put on one room message.
    #[arg(long, env = "SWITCHBOARD_REACTIONS_PER_USER", default_value_t = 20)]
    pub reactions_per_user: u32,

    /// Distinct emoji on one room message, all users together: bounds what a history page
    /// carries per message, however many members react.
    #[arg(long, env = "SWITCHBOARD_REACTIONS_PER_MESSAGE", default_value_t = 50)]
    pub reactions_per_message: u32,

    /// Users one user may block. Every connection keeps its user's block list to hide those
    /// users' messages, so the list is bounded.
    #[arg(long, env = "SWITCHBOARD_MAX_BLOCKS", default_value_t = 1000)]
    pub max_blocks: u32,

    /// Most payload bytes in one page of history, feed or notifications (HTTP or WebSocket): a
    /// page of large messages is cut short (fewer than `limit` items; page on from its first
    /// offset), so no request holds or sends much more than this. At most half of
    /// SWITCHBOARD_OUTBOUND_QUEUE_BYTES, so a WebSocket history reply always fits the queue.
    #[arg(long, env = "SWITCHBOARD_PAGE_BYTES", default_value_t = 512 * 1024)]
    pub page_bytes: usize,

    /// Most publishes committed in one storage transaction (group commit). Bigger batches mean
    /// fewer fsyncs under load; a batch never waits to fill, so idle latency is unaffected.
    #[arg(long, env = "SWITCHBOARD_STORE_BATCH", default_value_t = 512)]
    pub store_batch: usize,

    /// Payload bytes of publishes waiting for (or in) a storage transaction, on this node; past
    /// it publishes get `rate_limited` / 429 until storage catches up.
    #[arg(long, env = "SWITCHBOARD_STORE_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub store_queue_bytes: usize,

    /// Parallel storage writers (channels are hashed onto them, so per-channel order holds).
    /// 0 = automatic: 1 for SQLite (one writer at a time anyway), 4 for PostgreSQL.
    #[arg(long, env = "SWITCHBOARD_STORE_WRITERS", default_value_t = 0)]
    pub store_writers: usize,

    /// Storage connection pool size.
    #[arg(long, env = "SWITCHBOARD_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,

    /// PostgreSQL ends a session of this node that sits inside a transaction without sending
    /// anything for this long (`idle_in_transaction_session_timeout`). A node paused mid-commit
    /// (SIGSTOP, a VM stall, a long GC-like pause) or cut off from the database would otherwise
    /// hold its channels' counter rows locked, and every other node's publishes to those channels
    /// would wait until it came back. Our transactions send their statements back to back, so a
    /// healthy node is never idle in one for anywhere near this long.
    #[arg(long = "db-idle-tx-timeout-ms", env = "SWITCHBOARD_DB_IDLE_TX_TIMEOUT_MS", default_value = "1000", value_parser = millis)]
    pub db_idle_tx_timeout: Duration,

    /// Milliseconds over which clients are told to spread their reconnects when this node shuts
    /// down, so they do not stampede the remaining nodes.
    #[arg(long = "drain-window-ms", env = "SWITCHBOARD_DRAIN_WINDOW_MS", default_value = "2000", value_parser = millis)]
    pub drain_window: Duration,

    /// Rooms with more online users than this get no join/leave events (each arrival would
    /// otherwise cost every member a frame: quadratic traffic); `presence` requests still work.
    #[arg(long, env = "SWITCHBOARD_PRESENCE_EVENTS_MAX", default_value_t = 1000)]
    pub presence_events_max: u64,

    /// Milliseconds the sequencer waits for a missing offset before reading it from storage.
    #[arg(long = "gap-timeout-ms", env = "SWITCHBOARD_GAP_TIMEOUT_MS", default_value = "50", value_parser = millis)]
    pub gap_timeout: Duration,

    /// Followers whose feeds one fan-out transaction writes a post into. Larger chunks fan out
    /// faster; smaller ones hold the database (SQLite's single write lock) for less time, which
    /// bounds how long a big fan-out can delay other publishes.
    #[arg(long, env = "SWITCHBOARD_FEED_CHUNK", default_value_t = 500)]
    pub feed_chunk: u32,
}

/// Room for a message frame's envelope (type, channel, offset, sender, time) around its `data`.
pub const FRAME_ENVELOPE: usize = 16 * 1024;

/// Shortest API key accepted: as long as a signing secret, so it cannot be guessed.
const MIN_API_KEY: usize = 32;

/// Longest timeout accepted (a year): a deadline this far out is "never", and beyond it clock
/// arithmetic could overflow. Every connection timer is capped here too.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most sockets [`Config::max_connections`] allows by default, whatever the descriptor limit.
const AUTO_MAX_CONNECTIONS: usize = 50_000;
/// Descriptors kept back from the automatic connection cap (storage pool, Redis, files).
const RESERVED_DESCRIPTORS: usize = 256;

impl Config {
    /// Defaults for everything, as if started with no flags and no environment (for tests).
    pub fn defaults() -> Config {
        Config::parse_from(["switchboard"])
    }

    /// Refuses, at start, settings that could only fail later (a zero page size, batch, frame
    /// limit, rate, timeout or pool), naming the variable.
    pub fn validate(&self) -> anyhow::Result<()> {
        let at_least_one = [
            (
                "SWITCHBOARD_BUS_BACKLOG_BYTES",
                self.bus_backlog_bytes as u64,
            ),
            ("SWITCHBOARD_MAX_FRAME_BYTES", self.max_frame_bytes as u64),
            (
                "SWITCHBOARD_OUTBOUND_QUEUE_BYTES",
                self.outbound_queue_bytes as u64,
            ),
            (
                "SWITCHBOARD_MAX_SUBSCRIPTIONS",
                self.max_subscriptions as u64,
            ),
            ("SWITCHBOARD_HASH_QUEUE", self.hash_queue as u64),
            (
                "SWITCHBOARD_MAX_CONNECTIONS_PER_IP",
                self.max_connections_per_ip as u64,
            ),
            (
                "SWITCHBOARD_MAX_CONNECTIONS_PER_USER",
                self.max_connections_per_user as u64,
            ),
            ("SWITCHBOARD_PAGE_BYTES", self.page_bytes as u64),
            ("SWITCHBOARD_STORE_BATCH", self.store_batch as u64),
            (
                "SWITCHBOARD_STORE_QUEUE_BYTES",
                self.store_queue_bytes as u64,
            ),
            ("SWITCHBOARD_HISTORY_MAX", self.history_max.into()),
            ("SWITCHBOARD_DB_POOL", self.db_pool.into()),
            ("SWITCHBOARD_FEED_CHUNK", self.feed_chunk.into()),
        ];
        for (name, value) in at_least_one {
            anyhow::ensure!(value >= 1, "{name} must be at least 1 (got 0)");
        }
        for key in &self.api_keys {
            let len = key.expose().trim().len();
            anyhow::ensure!(
                len >= MIN_API_KEY,
                "every SWITCHBOARD_API_KEYS entry must be at least {MIN_API_KEY} characters \
                 (one is {len})"
            );
        }
        let durations = [
            (
                "SWITCHBOARD_HTTP_HEADER_TIMEOUT_SECS",
                self.http_header_timeout,
            ),
            (
                "SWITCHBOARD_HTTP_REQUEST_TIMEOUT_SECS",
                self.http_request_timeout,
            ),
            ("SWITCHBOARD_WRITE_TIMEOUT_SECS", self.write_timeout),
            ("SWITCHBOARD_AUTH_TIMEOUT_SECS", self.auth_timeout),
            ("SWITCHBOARD_PING_INTERVAL_SECS", self.ping_interval),
            ("SWITCHBOARD_IDLE_TIMEOUT_SECS", self.idle_timeout),
            ("SWITCHBOARD_ACCESS_TTL_SECS", self.access_ttl),
            ("SWITCHBOARD_REFRESH_TTL_SECS", self.refresh_ttl),
            ("SWITCHBOARD_GAP_TIMEOUT_MS", self.gap_timeout),
            ("SWITCHBOARD_DB_IDLE_TX_TIMEOUT_MS", self.db_idle_tx_timeout),
        ];
        for (name, value) in durations {
            anyhow::ensure!(!value.is_zero(), "{name} must not be zero");
        }
        // Tokens and sessions count whole seconds.
        for (name, value) in [
            ("SWITCHBOARD_ACCESS_TTL_SECS", self.access_ttl),
            ("SWITCHBOARD_REFRESH_TTL_SECS", self.refresh_ttl),
        ] {
            anyhow::ensure!(
                value >= Duration::from_secs(1),
                "{name} is at least a second (got {value:?})"
            );
        }
        for (name, value) in &durations[..3] {
            // A deadline this far out is "never"; beyond it, clock arithmetic could overflow.
            anyhow::ensure!(
                *value <= MAX_TIMEOUT,
                "{name} is at most a year ({} s; got {value:?})",
                MAX_TIMEOUT.as_secs()
            );
        }
        anyhow::ensure!(
            self.max_frame_bytes <= 16 * 1024 * 1024,
            "SWITCHBOARD_MAX_FRAME_BYTES is at most 16 MiB (got {})",
            self.max_frame_bytes
        );
        anyhow::ensure!(
            self.outbound_queue_bytes >= self.max_frame_bytes + FRAME_ENVELOPE,
            "SWITCHBOARD_OUTBOUND_QUEUE_BYTES ({}) must hold at least one message of \
             SWITCHBOARD_MAX_FRAME_BYTES ({}) and its envelope ({FRAME_ENVELOPE} bytes)",
            self.outbound_queue_bytes,
            self.max_frame_bytes
        );
        self.admin_addr()?;
        anyhow::ensure!(
            self.page_bytes <= self.outbound_queue_bytes / 2,
            "SWITCHBOARD_PAGE_BYTES ({}) is at most half of SWITCHBOARD_OUTBOUND_QUEUE_BYTES ({})",
            self.page_bytes,
            self.outbound_queue_bytes
        );
        Ok(())
    }

    /// The admin listener's address, `None` when it is `off`.
    pub fn admin_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        let bind = self.admin_bind.trim();
        if bind.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        bind.parse().map(Some).map_err(|_| {
            anyhow::anyhow!("SWITCHBOARD_ADMIN_BIND must be an address such as 127.0.0.1:9090, or off (got {bind:?})")
        })
    }

    /// The node's socket cap: as configured, or sized to the descriptor limit.
    pub fn connection_cap(&self) -> usize {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let limit = descriptor_limit().unwrap_or(AUTO_MAX_CONNECTIONS as u64);
        (limit.saturating_sub(RESERVED_DESCRIPTORS as u64) as usize).clamp(1, AUTO_MAX_CONNECTIONS)
    }
    /// Parallel storage writers: as configured, or 1 for SQLite (one writer at a time anyway)
    /// and 4 for PostgreSQL.
    pub fn store_writer_count(&self, backend: crate::store::Backend) -> usize {
        match (self.store_writers, backend) {
            (0, crate::store::Backend::Sqlite) => 1,
            (0, crate::store::Backend::Postgres) => 4,
            (n, _) => n,
        }
    }
    /// Whether the public listener serves the demo web app: as configured, or when this is the
    /// zero-setup single node (SQLite, no Redis).
    pub fn serves_demo(&self) -> bool {
        self.demo.unwrap_or_else(|| {
            let sqlite = self.database_url.as_deref().map_or(
                Some(crate::store::Backend::Sqlite),
                crate::store::Backend::of_url,
            ) == Some(crate::store::Backend::Sqlite);
            sqlite && self.redis_url.is_none()
        })
    }
    /// Parallel password hashes: as configured, or one per core.
    pub fn hash_slots(&self) -> usize {
        if self.hash_concurrency > 0 {
            return self.hash_concurrency;
        }
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// The node URLs of a Redis Cluster's `REDIS_URL` (`SWITCHBOARD_REDIS_CLUSTER`): one or more,
/// comma-separated.
pub(crate) fn cluster_nodes(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// A duration in whole seconds (`900`), or with a unit (`15m`, `1h30m`).
fn secs(s: &str) -> Result<Duration, String> {
    duration(s, Duration::from_secs, "seconds")
}

/// A duration in milliseconds (`2000`), or with a unit (`2s`).
fn millis(s: &str) -> Result<Duration, String> {
    duration(s, Duration::from_millis, "milliseconds")
}

fn duration(s: &str, unit: fn(u64) -> Duration, unit_name: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(unit(n));
    }
    humantime::parse_duration(s).map_err(|e| {
        format!("{e}: give a number of {unit_name}, or a duration such as 15m or 1h30m")
    })
}

/// `SWITCHBOARD_CORS_ORIGINS`: the web origins whose pages may call the HTTP API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all: browsers let only same-origin pages read the answers.
    #[default]
    None,
    /// `*`: pages from any origin.
    Any,
    /// Exactly these origins, written as browsers send them (lower case, no trailing slash).
    List(Vec<HeaderValue>),
}

impl FromStr for CorsOrigins {
    type Err = String;

    /// A comma-separated list of `http(s)://host[:port]`, or `*` alone; empty is none. A
    /// malformed entry is refused by name, so a typo fails the start instead of silently
    /// leaving a web app unable to read answers.
    fn from_str(s: &str) -> Result<CorsOrigins, String> {
        let entries: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if entries.contains(&"*") {
            if entries.len() > 1 {
                return Err(
                    "SWITCHBOARD_CORS_ORIGINS: `*` already allows every origin; \
                            give `*` alone, or a list of origins"
                        .into(),
                );
            }
            return Ok(CorsOrigins::Any);
        }
        entries
            .into_iter()
            .map(web_origin)
            .collect::<Result<_, _>>()
            .map(CorsOrigins::List)
    }
}

/// One origin as a browser serialises it in `Origin`: `http` or `https`, `://`, a host (a name,
/// an IPv4 address or a bracketed IPv6 one) and an optional port; no path, query or user.
/// Upper case is folded, and one trailing `/` and a default port (`:80`, `:443`) dropped, as
/// `Origin` never has them.
fn web_origin(raw: &str) -> Result<HeaderValue, String> {
    let refuse = || {
        format!(
            "SWITCHBOARD_CORS_ORIGINS: {raw:?} is not a web origin \
             (http://host[:port] or https://host[:port])"
        )
    };
    let origin = raw.strip_suffix('/').unwrap_or(raw).to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://").ok_or_else(refuse)?;
    if scheme != "http" && scheme != "https" {
        return Err(refuse());
    }
    let port = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, rest) = v6.split_once(']').ok_or_else(refuse)?;
            addr.parse::<std::net::Ipv6Addr>().map_err(|_| refuse())?;
            match rest {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or_else(refuse)?),
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            if host.is_empty() || !host.chars().all(name) {
                return Err(refuse());
            }
            port
        }
    };
    let mut origin = origin.as_str();
    if let Some(port) = port {
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(refuse());
        }
        // A browser leaves the scheme's default port out of `Origin`.
        if (scheme, port) == ("http", "80") || (scheme, port) == ("https", "443") {
            origin = &origin[..origin.len() - port.len() - 1];
        }
    }
    HeaderValue::from_str(origin).map_err(|_| refuse())
}

/// A value that must not be printed (the signing secret, API keys): `Debug` shows `[redacted]`,
/// and there is no `Display`; [`Secret::expose`] is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_owned())
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The soft limit on open descriptors (`Max open files` in `/proc/self/limits`), on Linux.
fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("switchboard").chain(args.iter().copied()))
    }

    /// Every value format that worked keeps working (a number in the unit of the name), and a
    /// duration with a unit works too.
    #[test]
    fn durations_take_the_unit_of_their_name_or_their_own() {
        let c = parse(&["--access-ttl-secs", "900", "--gap-timeout-ms", "50"]).unwrap();
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.gap_timeout, Duration::from_millis(50));
        let c = parse(&["--access-ttl-secs", "15m", "--drain-window-ms", "2s"]).unwrap();
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.drain_window, Duration::from_secs(2));
        assert!(parse(&["--idle-timeout-secs", "soon"]).is_err());
        let defaults = Config::defaults();
        assert_eq!(defaults.idle_timeout, Duration::from_secs(60));
        assert_eq!(defaults.refresh_ttl, Duration::from_secs(30 * 24 * 3600));
        assert!(defaults.validate().is_ok());
    }

    #[test]
    fn a_zero_size_rate_or_duration_is_refused() {
        for flag in [
            "--history-max",
            "--db-pool",
            "--feed-chunk",
            "--store-batch",
            "--page-bytes",
        ] {
            let c = parse(&[flag, "0"]).unwrap();
            assert!(c.validate().is_err(), "{flag} 0 was accepted");
        }
        assert!(parse(&["--publish-rate", "0"]).is_err());
        assert_eq!(
            parse(&["--publish-rate", "7"]).unwrap().publish_rate.get(),
            7
        );
        let c = parse(&["--refresh-ttl-secs", "500ms"]).unwrap();
        assert!(
            c.validate().is_err(),
            "a session shorter than its unit was accepted"
        );
        let c = parse(&["--idle-timeout-secs", "0"]).unwrap();
        let refused = c.validate().unwrap_err().to_string();
        assert!(
            refused.contains("SWITCHBOARD_IDLE_TIMEOUT_SECS"),
            "{refused}"
        );
    }

    /// The demo is the zero-setup node's front page: on with embedded SQLite and no Redis, off
    /// once a deployment names PostgreSQL or Redis; an explicit value wins either way.
    #[test]
    fn the_demo_is_served_by_default_only_on_the_zero_setup_node() {
        let serves = |args: &[&str]| parse(args).unwrap().serves_demo();
        assert!(serves(&[]));
        assert!(serves(&["--database-url", "sqlite:///tmp/sb.db"]));
        assert!(!serves(&["--database-url", "postgres://db/sb"]));
        assert!(!serves(&["--redis-url", "redis://127.0.0.1:6379"]));
        assert!(serves(&["--demo", "--database-url", "postgres://db/sb"]));
        for (value, on) in [
            ("true", true),
            ("1", true),
            ("on", true),
            ("false", false),
            ("0", false),
            ("off", false),
        ] {
            let flag = format!("--demo={value}");
            assert_eq!(serves(&[&flag]), on, "{flag}");
            assert_eq!(serves(&[&flag, "--redis-url", "redis://r"]), on, "{flag}");
        }
        assert!(parse(&["--demo=maybe"]).is_err());
    }

    #[test]
    fn cors_origins_are_checked_at_start() {
        let origins = |arg: &str| parse(&["--cors-origins", arg]).map(|c| c.cors_origins);
        assert_eq!(Config::defaults().cors_origins, CorsOrigins::None);
        assert_eq!(origins("").unwrap(), CorsOrigins::None);
        assert_eq!(origins(" * ").unwrap(), CorsOrigins::Any);
        let listed = origins(
            "https://App.Example/, http://localhost:5173,http://[::1]:8080,https://x.example:443",
        )
        .unwrap();
        let expected = [
            "https://app.example",
            "http://localhost:5173",
            "http://[::1]:8080",
            "https://x.example",
        ];
        assert_eq!(
            listed,
            CorsOrigins::List(expected.map(HeaderValue::from_static).to_vec())
        );
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://app.example/path",
            "https://app.example:99999",
            "https://app.example:+80",
            "https://app.example:",
            "https://user@app.example",
            "https://",
            "https://[zz]:80",
            "null",
        ] {
            let refused = origins(&format!("https://ok.example,{bad}"))
                .unwrap_err()
                .to_string();
            assert!(refused.contains(&format!("{bad:?}")), "{bad}: {refused}");
        }
        assert!(origins("*,https://app.example").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = parse(&["--secret", "hunter2-hunter2", "--api-keys", "sk_a,sk_b"]).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("sk_a"),
            "{shown}"
        );
        assert_eq!(
            c.secret.as_ref().map(Secret::expose),
            Some("hunter2-hunter2")
        );
    }
}
