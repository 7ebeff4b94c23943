//! Start-up: opens storage, connects the bus, starts the background workers, and assembles the
//! [`AppState`] that the routers serve. Serving is [`App::serve`]; the ordered stop is
//! [`crate::shutdown`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
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
    /// Builds the node from `config`. `shutdown` is cancelled to stop it ([`App::serve`]).
    pub(crate) async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
        config.validate()?;
        // TLS to Redis (`rediss://`) uses rustls with ring; installing it as the process default
        // is idempotent (a second server in the same process finds it there).
        let _ = rustls::crypto::ring::default_provider().install_default();
        metrics::install();
        let workers = Arc::new(workers::Workers::default());
        let store = Store::open(
            config.database_url.as_deref(),
            &config.data_dir,
            config.db_pool,
        )
        .await?;
        let secret = secret::load(config.secret.as_ref().map(Secret::expose), &config.data_dir)?;
        let auth = Arc::new(Auth::new(store.clone(), &secret, &config));
        auth.load_revocations()
            .await
            .context("loading revoked sessions")?;
        let authz = Arc::new(Authz::new(store.clone()));
        let node = NodeId::random();
        let mut bus_tasks = Vec::new();
        let (hub, bus): (Arc<Hub>, Arc<dyn Bus>) = match &config.redis_url {
            None => (
                Hub::new(store.clone(), None, config.gap_timeout),
                Arc::new(LocalBus),
            ),
            Some(url) => {
                anyhow::ensure!(
                    store.backend() == Backend::Postgres,
                    "several nodes (REDIS_URL) need shared storage: set DATABASE_URL to a \
                     postgres:// URL (SQLite is one node's private file)"
                );
                let (interest, interest_rx) = tokio::sync::mpsc::unbounded_channel();
                let hub = Hub::new(store.clone(), Some(interest), config.gap_timeout);
                let on_control = cluster::control_handler(&auth, &authz, &hub);
                let options = bus::redis::Options {
                    url: url.clone(),
                    prefix: config.redis_prefix.clone(),
                    sharded: config.redis_cluster,
                    backlog_bytes: config.bus_backlog_bytes,
                    seal: Arc::new(bus::seal::Seal::new(&secret, config.bus_mac)),
                };
                let (redis, tasks) = bus::redis::start(
                    options,
                    node.clone(),
                    hub.clone(),
                    interest_rx,
                    on_control.clone(),
                )
                .await
                .context("connecting to Redis")?;
                for task in &tasks {
                    workers.watch("bus", task);
                }
                bus_tasks = tasks;
                let auth = auth.clone();
                bus_tasks.push(workers.supervise("revocation_poll", move || {
                    cluster::poll_revocations(auth.clone(), on_control.clone())
                }));
                (hub, Arc::new(redis))
            }
        };
        let registry = match &config.redis_url {
            None => presence::Backend::Local(Default::default()),
            Some(url) => presence::Backend::Redis(
                presence::redis::RedisPresence::connect(
                    url,
                    config.redis_cluster,
                    config.redis_prefix.clone(),
                    node.clone(),
                )
                .await?,
            ),
        };
        let presence = presence::Presence::new(
            registry,
            hub.clone(),
            bus.clone(),
            config.presence_events_max,
        );
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

        // The pipeline: chat batches pass the mention tap; notifications and feed items do not.
        let (mentions, mention_queue) = notify::mentions::channel(config.mentions_per_min);
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
        // Notifications (the only writes to user: channels) have a writer of their own: the
        // mention worker must go on publishing until the chat writers have committed their last
        // batch (whose mentions it must still see) and exited.
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
            after: delivered,
            node: node.clone(),
            chunk: config.feed_chunk.max(1),
            inbox: fanout_inbox,
            shutdown: fanout_stop.clone(),
        }));
        let fanout_task = workers.supervise("feed_fanout", move || {
            let worker = fanout_worker.clone();
            async move { worker.lock().await.run().await }
        });

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
            feed: Arc::new(feed::Feed::new(store.clone(), node, fanout_queue)),
            follow_notices: Arc::new(notify::once::OncePerWindow::new(FOLLOW_NOTICE_WINDOW)),
            config: Arc::new(config),
            store: store.clone(),
            auth,
            authz,
            hub,
            commit_queue,
            bus,
            presence,
            notifier,
            workers,
            shutdown,
            tasks: TaskTracker::new(),
        };
        let background = Background {
            fanout_stop,
            fanout_task,
            chat_writers,
            mention_task,
            notification_writers,
            bus_tasks,
            store,
        };
        Ok(App { state, background })
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
