//! Switchboard server: authenticates users over HTTP, keeps their WebSocket sessions in a
//! connection hub, stores every message with a gapless per-channel offset, and fans messages out
//! to subscribers.
//!
//! # Layout
//! The path of one published message, top to bottom:
//! - [`ws`] (or [`http`]): a `publish` frame or `POST /api/v1/channels/.../messages` arrives;
//! - [`payload`]: is `data` within the size and nesting bounds?
//! - [`authz`]: may this user publish there? ([`authz::watch`] applies rule changes to live
//!   subscriptions);
//! - [`publish`] → [`store::writer`]: batched into a group commit, offset assigned, durable; acked;
//! - [`bus`]: the committed batch goes to every node with interest;
//! - [`hub`]: the channel's sequencer puts it in offset order and writes one shared encoded frame
//!   into each subscriber's socket ([`ws::conn`]), queueing only what a blocked socket
//!   cannot take yet.
//!
//! Beside it: [`auth`] (passwords, tokens, sessions), [`config`] (every setting), [`store`]
//! (SQLite or PostgreSQL), `secret` (the signing secret, owner-only files), `workers`
//! (supervised background tasks, reported by `readyz`).

pub mod auth;
pub mod authz;
pub mod bus;
mod cluster;
pub mod config;
pub mod feed;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod payload;
pub mod presence;
pub mod publish;
pub mod rate;
mod secret;
pub mod store;
mod workers;
pub(crate) mod ws;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::authz::Authz;
use crate::config::Config;
use crate::hub::Hub;
use crate::store::writer::{CommitSink, Publisher};
use crate::store::{Backend, Store};

/// A follower who unfollows and follows again within this notifies the followed user once.
const FOLLOW_NOTICE_WINDOW: Duration = Duration::from_secs(3600);

/// Open sockets the admin listener takes at once.
const ADMIN_SOCKETS: usize = 64;

/// How long shutdown waits for connections to flush and close before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything a request handler or connection needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<Auth>,
    pub authz: Arc<Authz>,
    pub hub: Arc<Hub>,
    pub publisher: Publisher,
    /// Cluster-wide events this node sends (revocations, presence).
    pub control: bus::Control,
    pub presence: Arc<presence::Presence>,
    pub feed: Arc<feed::Feed>,
    pub notifier: Arc<notify::Notifier>,
    pub http_writes: Arc<http::throttle::UserRate>,
    pub http_reads: Arc<http::throttle::UserRate>,
    /// Follow notifications already sent within the window, per (follower, followed).
    pub follow_notices: Arc<notify::once::OncePerWindow>,
    /// Publish budgets per user and per API key.
    pub publish_budget: Arc<publish::budget::Budget>,
    /// WebSockets per user and per client behind a proxy.
    pub caps: Arc<net::caps::Caps>,
    /// The background workers, for `readyz`.
    pub workers: Arc<workers::Workers>,
    /// Cancelled once when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// Serves on `listener` until `shutdown` is cancelled, then drains: stops accepting, tells every
/// client to reconnect (with jitter), flushes and closes their sockets, lets the storage writers
/// finish what they hold, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    // TLS to Redis (`rediss://`) uses rustls with ring; installing it as the process default is
    // idempotent (a second server in the same process finds it there).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = match config.admin_addr()? {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("binding the admin listener to {addr} (SWITCHBOARD_ADMIN_BIND)")
        })?),
        None => None,
    };
    if let Some(admin) = &admin {
        tracing::info!(addr = %admin.local_addr()?, "admin listener (metrics, probes)");
    }
    run_with(listener, admin, config, shutdown).await
}

/// [`run`] on listeners the caller bound: the public one, and the admin one (`/metrics`,
/// `/healthz`, `/readyz`) unless `None`.
pub async fn run_with(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    metrics::install();
    let workers = Arc::new(workers::Workers::default());
    let store = Store::open(
        config.database_url.as_deref(),
        &config.data_dir,
        config.db_pool,
    )
    .await?;
    let secret = secret::load(config.secret.as_deref(), &config.data_dir)?;
    let auth = Arc::new(Auth::new(store.clone(), &secret, &config));
    auth.load_revocations()
        .await
        .context("loading revoked sessions")?;
    let authz = Arc::new(Authz::new(store.clone()));
    let (hub, bus_sink, control, bus_tasks) = match &config.redis_url {
        None => {
            let hub = Hub::new(store.clone(), None, config.gap_timeout());
            (
                hub.clone(),
                bus::local(hub),
                bus::Control::default(),
                Vec::new(),
            )
        }
        Some(url) => {
            anyhow::ensure!(
                store.backend() == Backend::Postgres,
                "several nodes (REDIS_URL) need shared storage: set DATABASE_URL to a postgres:// URL \
                 (SQLite is one node's private file)"
            );
            let (interest, interest_rx) = tokio::sync::mpsc::unbounded_channel();
            let hub = Hub::new(store.clone(), Some(interest), config.gap_timeout());
            let on_control = cluster::control_handler(&auth, &authz, &hub);
            let options = bus::redis::Options {
                url: url.clone(),
                prefix: config.redis_prefix.clone(),
                sharded: config.redis_cluster,
                backlog_bytes: config.bus_backlog_bytes,
                seal: Arc::new(bus::seal::Seal::new(&secret, config.bus_mac)),
            };
            let mut redis =
                bus::redis::start(options, hub.clone(), interest_rx, on_control.clone())
                    .await
                    .context("connecting to Redis")?;
            for task in &redis.tasks {
                workers.watch("bus", task);
            }
            let auth = auth.clone();
            redis
                .tasks
                .push(workers.supervise("revocation_poll", move || {
                    cluster::poll_revocations(auth.clone(), on_control.clone())
                }));
            (hub, redis.sink, redis.control, redis.tasks)
        }
    };
    // This process's identity in the cluster (presence entries, feed fan-out leases).
    let node: Arc<str> = uuid::Uuid::new_v4().to_string().into();
    let registry = match &config.redis_url {
        None => presence::Registry::Local(Default::default()),
        Some(url) => {
            let node = node.clone();
            let prefix = config.redis_prefix.clone();
            presence::Registry::Redis(
                presence::redis::Registry::connect(url, config.redis_cluster, prefix, node).await?,
            )
        }
    };
    let presence = presence::Presence::new(
        registry,
        hub.clone(),
        control.clone(),
        config.presence_events_max,
    );
    let mut bus_tasks = bus_tasks;
    if config.redis_url.is_some() {
        // Only a cluster's presence needs upkeep (its claims in Redis expire).
        bus_tasks.push(workers.supervise("presence", {
            let presence = presence.clone();
            move || presence.clone().maintain()
        }));
    }
    bus_tasks.push(workers.supervise("room_rules_poll", {
        let (store, authz, hub) = (store.clone(), authz.clone(), hub.clone());
        move || authz::watch::poll(store.clone(), authz.clone(), hub.clone())
    }));
    let writers = match (config.store_writers, store.backend()) {
        (0, Backend::Sqlite) => 1,
        (0, Backend::Postgres) => 4,
        (n, _) => n,
    };
    // Every committed batch goes to the bus, and its chat messages past the mention scanner.
    let (mentions, mention_queue) = notify::mentions::channel(config.mentions_per_min);
    let commit_sink: CommitSink = {
        let bus = bus_sink.clone();
        Arc::new(move |batch| {
            mentions.scan(&batch);
            bus(batch)
        })
    };
    let (publisher, writer_tasks) = Publisher::start(
        store.clone(),
        writers,
        config.store_batch,
        config.store_queue_bytes,
        commit_sink,
    );
    for task in &writer_tasks {
        workers.watch("store_writer", task);
    }
    // Notifications (the only writes to user: channels) have a writer of their own: the mention
    // worker must go on publishing until the chat writers have committed their last batch (whose
    // mentions it must still see) and exited.
    let (notify_publisher, notify_writers) = Publisher::start(
        store.clone(),
        1,
        config.store_batch,
        config.store_queue_bytes,
        bus_sink.clone(),
    );
    for task in &notify_writers {
        workers.watch("notification_writer", task);
    }
    let notifier = Arc::new(notify::Notifier::new(store.clone(), notify_publisher));
    // The workers that own a queue keep it across restarts: a run borrows it from the mutex.
    let mention_worker = Arc::new(tokio::sync::Mutex::new(notify::mentions::Worker {
        queue: mention_queue,
        store: store.clone(),
        authz: authz.clone(),
        notifier: notifier.clone(),
    }));
    let mention_task = workers.supervise("mentions", move || {
        let worker = mention_worker.clone();
        async move { worker.lock().await.run().await }
    });
    let fanout_stop = CancellationToken::new();
    let (fanout_queue, fanout_inbox) = tokio::sync::mpsc::channel(feed::INBOX);
    let fanout_worker = Arc::new(tokio::sync::Mutex::new(feed::fanout::Worker {
        store: store.clone(),
        sink: bus_sink,
        node: node.clone(),
        chunk: config.feed_chunk.max(1),
        inbox: fanout_inbox,
        shutdown: fanout_stop.clone(),
    }));
    let fanout_task = workers.supervise("feed_fanout", move || {
        let worker = fanout_worker.clone();
        async move { worker.lock().await.run().await }
    });
    let http_writes = Arc::new(http::throttle::UserRate::new(
        config.http_write_rate,
        config.http_write_burst,
        "SWITCHBOARD_HTTP_WRITE_RATE",
    ));
    let http_reads = Arc::new(http::throttle::UserRate::new(
        config.http_read_rate,
        config.http_read_burst,
        "SWITCHBOARD_HTTP_READ_RATE",
    ));
    let publish_budget = Arc::new(publish::budget::Budget::new(&config));
    let config_caps = (
        config.max_connections_per_user,
        config.max_connections_per_ip,
    );
    let limits = Arc::new(net::listener::Limits {
        sockets: net::Gauge::new(config.connection_cap()),
        per_peer: net::Slots::new(config.max_connections_per_ip),
        trusted: config.trusted_proxies.clone(),
        header_timeout: config.header_timeout(),
        write_timeout: config.write_timeout(),
    });
    let state = AppState {
        config: Arc::new(config),
        store: store.clone(),
        auth,
        authz,
        hub: hub.clone(),
        publisher,
        control,
        presence,
        feed: Arc::new(feed::Feed::new(store.clone(), node, fanout_queue)),
        notifier,
        http_writes,
        http_reads,
        follow_notices: Arc::new(notify::once::OncePerWindow::new(FOLLOW_NOTICE_WINDOW)),
        publish_budget,
        caps: Arc::new(net::caps::Caps::new(config_caps.0, config_caps.1)),
        workers,
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
    };
    let tasks = state.tasks.clone();
    let drain_window = state.config.drain_window_ms;
    let admin_app = http::admin_router(state.clone());
    let app = http::router(state);
    let admin_server = admin.map(|admin| {
        // The admin side is for probes and scrapers on a private address: a few sockets.
        let limits = Arc::new(net::listener::Limits {
            sockets: net::Gauge::new(ADMIN_SOCKETS),
            per_peer: net::Slots::new(ADMIN_SOCKETS),
            trusted: Vec::new(),
            header_timeout: limits.header_timeout,
            write_timeout: limits.write_timeout,
        });
        tokio::spawn(net::listener::serve(
            admin,
            admin_app,
            limits,
            shutdown.clone(),
        ))
    });
    let server = tokio::spawn(net::listener::serve(
        listener,
        app,
        limits,
        shutdown.clone(),
    ));

    shutdown.cancelled().await;
    tracing::info!(connections = hub.connection_count(), "shutting down");
    drain(&hub, drain_window);
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    server.await.context("server task")?;
    if let Some(admin) = admin_server {
        let _ = admin.await;
    }
    // No request is left, and the router (with every chat publisher handle) is gone. In order:
    // the fan-out worker stops and releases its leases; the chat writers commit what they still
    // hold and exit, which closes the mention queue; the mention worker notifies what was queued
    // and exits, dropping the last notification publisher; the notification writer finishes.
    fanout_stop.cancel();
    let _ = fanout_task.await;
    for writer in writer_tasks {
        let _ = writer.await;
    }
    let _ = mention_task.await;
    for writer in notify_writers {
        let _ = writer.await;
    }
    for task in bus_tasks {
        task.abort();
    }
    store.close().await;
    Ok(())
}

/// Tells every client to reconnect after a random delay within the drain window (so they do not
/// all arrive at the other nodes at once), then closes each socket with 1001 once its queue is
/// flushed.
fn drain(hub: &Hub, window_ms: u64) {
    hub.for_each_connection(|conn| conn.go_away(window_ms));
}
