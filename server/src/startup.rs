//! Start-up: opens storage, connects the bus, starts the background workers, and assembles the
//! [`AppState`] that the routers serve. Serving is [`App::serve`]; the ordered stop is
//! [`crate::shutdown`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::authz::Authz;
use crate::bus::{self, Bus, LocalBus};
use crate::config::{Config, Secret};
use crate::hub::Hub;
use crate::node::NodeId;
use crate::pipeline::commit::CommitQueue;
use crate::pipeline::AfterCommit;
use crate::shutdown::Background;
use crate::store::{Backend, Store};
use crate::AppState;
use crate::{authz, cluster, feed, http, metrics, notify, presence, publish, secret, workers};

/// A follower who unfollows and follows again within this notifies the followed user once.
const FOLLOW_NOTICE_WINDOW: Duration = Duration::from_secs(3600);

/// A node, built and ready to serve.
pub(crate) struct App {
    pub state: AppState,
    /// What runs beside the requests, stopped in order after them.
    pub(crate) background: Background,
}

impl App {
    /// Builds the node from `config`, in the order each part needs the others: storage and
    /// authentication, the hub and the bus, presence, the pipeline, feed fan-out, then the
    /// state the routers serve. `shutdown` is cancelled to stop it ([`App::serve`]).
    pub(crate) async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
        config.validate()?;
        // TLS to Redis (`rediss://`) uses rustls with ring; installing it as the process default
        // is idempotent (a second server in the same process finds it there).
        let _ = rustls::crypto::ring::default_provider().install_default();
        metrics::install();
        let base = Base::open(config).await?;
        let mut bus_tasks = Vec::new();
        let (hub, bus) = connect_bus(&base, &mut bus_tasks).await?;
        let presence = start_presence(&base, &hub, &bus, &mut bus_tasks).await?;
        bus_tasks.push(base.workers.supervise("room_rules_poll", {
            let (store, authz, hub) = (base.store.clone(), base.authz.clone(), hub.clone());
            move || authz::watch::poll(store.clone(), authz.clone(), hub.clone())
        }));
        let pipeline = start_pipeline(&base, &hub, &bus);
        let feed = start_feed(&base, pipeline.delivered.clone());
        let Base {
            config,
            store,
            auth,
            authz,
            workers,
            ..
        } = base;
        let state = AppState {
            http_writes: Arc::new(http::throttle::UserRate::new(
                config.http_write_rate,
                config.http_write_burst,
                "SWITCHBOARD_HTTP_WRITE_RATE",
            )),
            http_reads: Arc::new(http::throttle::UserRate::new(
                config.http_read_rate,
                config.http_read_burst,
                "SWITCHBOARD_HTTP_READ_RATE",
            )),
            publish_budget: Arc::new(publish::budget::Budget::new(&config)),
            caps: Arc::new(crate::ws::caps::Caps::new(
                config.max_connections_per_user,
                config.max_connections_per_ip,
            )),
            follow_notices: Arc::new(notify::once::OncePerWindow::new(FOLLOW_NOTICE_WINDOW)),
            config: Arc::new(config),
            store: store.clone(),
            auth,
            authz,
            hub,
            commit_queue: pipeline.commit_queue,
            bus,
            presence,
            feed: feed.feed,
            notifier: pipeline.notifier,
            workers,
            shutdown,
            tasks: TaskTracker::new(),
        };
        // Holds the state (the commit queue with it) only until shutdown is cancelled, so the
        // writers still drain and exit.
        bus_tasks.push(state.workers.supervise("room_announcements", {
            let state = state.clone();
            move || crate::chat::membership::sweep(state.clone())
        }));
        let background = Background {
            fanout_stop: feed.stop,
            fanout_task: feed.task,
            chat_writers: pipeline.chat_writers,
            mention_task: pipeline.mention_task,
            notification_writers: pipeline.notification_writers,
            bus_tasks,
            store,
        };
        Ok(App { state, background })
    }
}

/// What every later step of start-up uses.
struct Base {
    config: Config,
    store: Store,
    /// The signing secret: tokens, and the bus's envelope seal.
    secret: Vec<u8>,
    auth: Arc<Auth>,
    authz: Arc<Authz>,
    workers: Arc<workers::Workers>,
    node: NodeId,
}

impl Base {
    /// Opens storage (running migrations), loads the signing secret and the sessions revoked
    /// recently enough to matter.
    async fn open(config: Config) -> anyhow::Result<Base> {
        let store = Store::open_with(
            config.database_url.as_deref(),
            &config.data_dir,
            config.db_pool,
            config.db_idle_tx_timeout,
        )
        .await?;
        let secret = secret::load(config.secret.as_ref().map(Secret::expose), &config.data_dir)?;
        let auth = Arc::new(Auth::new(store.clone(), &secret, &config));
        auth.load_revocations()
            .await
            .context("loading revoked sessions")?;
        Ok(Base {
            authz: Arc::new(Authz::new(store.clone())),
            workers: Arc::new(workers::Workers::default()),
            node: NodeId::random(),
            config,
            store,
            secret,
            auth,
        })
    }
}

/// The hub, and the bus to the other nodes: in-process for one node, Redis (with the control
/// handler and the revocation poll) for several. The bus's tasks go into `tasks`.
async fn connect_bus(
    base: &Base,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<(Arc<Hub>, Arc<dyn Bus>)> {
    let config = &base.config;
    let Some(url) = &config.redis_url else {
        let hub = Hub::new(base.store.clone(), None, config.gap_timeout);
        return Ok((hub, Arc::new(LocalBus)));
    };
    anyhow::ensure!(
        base.store.backend() == Backend::Postgres,
        "several nodes (REDIS_URL) need shared storage: set DATABASE_URL to a postgres:// URL \
         (SQLite is one node's private file)"
    );
    let (interest, interest_rx) = tokio::sync::mpsc::unbounded_channel();
    let hub = Hub::new(base.store.clone(), Some(interest), config.gap_timeout);
    let on_control = cluster::control_handler(&base.auth, &base.authz, &hub);
    let options = bus::redis::Options {
        url: url.clone(),
        prefix: config.redis_prefix.clone(),
        sharded: config.redis_cluster,
        backlog_bytes: config.bus_backlog_bytes,
        seal: Arc::new(bus::seal::Seal::new(&base.secret, config.bus_mac)),
    };
    let (redis, bus_tasks) = bus::redis::start(
        options,
        base.node.clone(),
        hub.clone(),
        interest_rx,
        on_control.clone(),
    )
    .await
    .context("connecting to Redis")?;
    for task in &bus_tasks {
        base.workers.watch("bus", task);
    }
    tasks.extend(bus_tasks);
    let auth = base.auth.clone();
    tasks.push(base.workers.supervise("revocation_poll", move || {
        cluster::poll_revocations(auth.clone(), on_control.clone())
    }));
    Ok((hub, Arc::new(redis)))
}

/// Presence: in memory for one node; in Redis for a cluster, where its claims need renewing
/// (that task goes into `tasks`).
async fn start_presence(
    base: &Base,
    hub: &Arc<Hub>,
    bus: &Arc<dyn Bus>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Arc<presence::Presence>> {
    let config = &base.config;
    let backend = match &config.redis_url {
        None => presence::Backend::Local(Default::default()),
        Some(url) => presence::Backend::Redis(
            presence::redis::RedisPresence::connect(
                url,
                config.redis_cluster,
                config.redis_prefix.clone(),
                base.node.clone(),
            )
            .await?,
        ),
    };
    let clustered = matches!(backend, presence::Backend::Redis(_));
    let presence = presence::Presence::new(
        backend,
        hub.clone(),
        bus.clone(),
        config.presence_events_max,
    );
    if clustered {
        tasks.push(base.workers.supervise("presence", {
            let presence = presence.clone();
            move || presence.clone().maintain()
        }));
    }
    Ok(presence)
}

/// The pipeline's moving parts ([`crate::pipeline`]).
struct Pipeline {
    /// Where chat publishes are committed.
    commit_queue: CommitQueue,
    /// What notifications and feed items are handed to once committed (no mention tap).
    delivered: Arc<AfterCommit>,
    notifier: Arc<notify::Notifier>,
    chat_writers: Vec<JoinHandle<()>>,
    notification_writers: Vec<JoinHandle<()>>,
    mention_task: JoinHandle<()>,
}

/// The chat writers (whose batches pass the mention tap), the notification writer, and the
/// mention worker between them.
fn start_pipeline(base: &Base, hub: &Arc<Hub>, bus: &Arc<dyn Bus>) -> Pipeline {
    let (config, store, workers) = (&base.config, &base.store, &base.workers);
    let (mentions, mention_queue) = notify::mentions::channel();
    let delivered = Arc::new(AfterCommit::new(hub.clone(), bus.clone()));
    let (commit_queue, chat_writers) = CommitQueue::start(
        store.clone(),
        config.store_writer_count(store.backend()),
        config.store_batch,
        config.store_queue_bytes,
        Arc::new(AfterCommit::with_mentions(
            hub.clone(),
            bus.clone(),
            mentions,
        )),
    );
    for task in &chat_writers {
        workers.watch("store_writer", task);
    }
    // Notifications (the only writes to user: channels) have a writer of their own: the mention
    // worker must go on publishing until the chat writers have committed their last batch
    // (whose mentions it must still see) and exited.
    let (notification_queue, notification_writers) = CommitQueue::start(
        store.clone(),
        1,
        config.store_batch,
        config.store_queue_bytes,
        delivered.clone(),
    );
    for task in &notification_writers {
        workers.watch("notification_writer", task);
    }
    let notifier = Arc::new(notify::Notifier::new(store.clone(), notification_queue));
    // The workers that own a queue keep it across restarts: a run borrows it from the mutex.
    let mention_worker = Arc::new(tokio::sync::Mutex::new(notify::mentions::Worker::new(
        mention_queue,
        store.clone(),
        base.authz.clone(),
        notifier.clone(),
        config.mentions_per_min,
    )));
    let mention_task = workers.supervise("mentions", move || {
        let worker = mention_worker.clone();
        async move { worker.lock().await.run().await }
    });
    Pipeline {
        commit_queue,
        delivered,
        notifier,
        chat_writers,
        notification_writers,
        mention_task,
    }
}

/// Feed fan-out: the worker, and what stops it.
struct FeedFanout {
    feed: Arc<feed::Feed>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn start_feed(base: &Base, delivered: Arc<AfterCommit>) -> FeedFanout {
    let stop = CancellationToken::new();
    let (queue, inbox) = tokio::sync::mpsc::channel(feed::INBOX);
    let worker = Arc::new(tokio::sync::Mutex::new(feed::fanout::Worker {
        store: base.store.clone(),
        after: delivered,
        node: base.node.clone(),
        chunk: base.config.feed_chunk.max(1),
        inbox,
        shutdown: stop.clone(),
    }));
    let task = base.workers.supervise("feed_fanout", move || {
        let worker = worker.clone();
        async move { worker.lock().await.run().await }
    });
    FeedFanout {
        feed: Arc::new(feed::Feed::new(
            base.store.clone(),
            base.node.clone(),
            queue,
        )),
        stop,
        task,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{header, Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;

    /// One request through the router, as if from a loopback client; the status and JSON body.
    async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value) {
        let mut req = req;
        let peer: SocketAddr = ([127, 0, 0, 1], 40_000).into();
        req.extensions_mut().insert(ConnectInfo(peer));
        let response = http::router(state.clone(), crate::ws::router())
            .oneshot(req)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn post(uri: &str, token: Option<&str>, body: Value) -> Request<Body> {
        let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        req.body(Body::from(body.to_string())).unwrap()
    }

    /// The app is built and its router called without a socket: a user registers, logs in,
    /// publishes over HTTP and reads it back from history, through the whole pipeline (group
    /// commit, after-commit, hub); a request without a token gets the JSON error; the ordered
    /// shutdown then completes.
    #[tokio::test]
    async fn the_router_serves_the_publish_path_without_a_socket() {
        let dir = std::env::temp_dir().join(format!("sb-app-{}", uuid::Uuid::new_v4().simple()));
        let mut config = Config::defaults();
        config.data_dir = dir.clone();
        config.admin_bind = "off".into();
        let app = App::build(config, CancellationToken::new()).await.unwrap();
        let state = app.state.clone();

        let credentials = json!({ "username": "ada", "password": "correct horse" });
        let (status, body) = call(
            &state,
            post("/api/v1/auth/register", None, credentials.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = call(&state, post("/api/v1/auth/login", None, credentials)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();

        let uri = "/api/v1/channels/room:lobby/messages";
        for n in 1..=3 {
            let (status, body) = call(
                &state,
                post(uri, Some(&token), json!({ "data": { "n": n } })),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["offset"], n, "{body}");
        }
        let history = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&state, history).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ns: Vec<i64> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["data"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [1, 2, 3], "{body}");

        let (status, body) = call(&state, post(uri, None, json!({ "data": 1 }))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");

        drop(state);
        app.state.shutdown.cancel();
        let App { state, background } = app;
        drop(state);
        crate::shutdown::stop(background).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
