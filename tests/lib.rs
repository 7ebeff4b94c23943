//! Test harness: spawns real Switchboard servers on port 0 (in-process, or as `switchboard`
//! processes) against a fresh SQLite directory or a fresh PostgreSQL database each, and talks to
//! them like a client would: HTTP through reqwest, WebSockets through tokio-tungstenite and the
//! `protocol` crate.

pub mod client;
pub mod db;
pub mod pgcluster;
pub mod process;
pub mod raw;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_server::config::Config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use client::WsClient;
pub use db::{Backend, TestDb};
pub use switchboard_protocol::{Encoding, ServerFrame};

/// How long a test waits for something it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A 32+ byte secret shared by servers of one test.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A running in-process server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, probes).
    pub admin_addr: SocketAddr,
    pub http: reqwest::Client,
    pub db: Option<TestDb>,
    /// The Redis prefix of this node's cluster (empty for a single node).
    pub redis_prefix: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A rate or burst for a config tweak (`c.publish_rate = nz(5)`).
#[track_caller]
pub fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).expect("a rate is at least 1")
}

/// The Redis the tests use (`SWITCHBOARD_TEST_REDIS`, default the local one).
pub fn redis_url() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Configuration for a test server: defaults, storage from `db`, everything on loopback.
#[track_caller]
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.data_dir = db.data_dir();
    config.database_url = db.url();
    config.redis_url = None;
    config.secret = Some(SECRET.into());
    config.allowed_origins = vec![];
    // Every test client registers from 127.0.0.1: the registration budgets are for tests that
    // test them (attacks.rs sets its own).
    config.register_per_ip_per_min = nz(100_000);
    config.admin_bind = "127.0.0.1:0".into();
    config.register_per_min = nz(100_000);
    config
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns a server whose configuration `tweak` adjusts first.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(TestDb::new(backend).await, tweak).await
    }

    /// Spawns a server on an existing database (e.g. to restart on the data a previous one left).
    pub async fn spawn_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut app = Self::spawn_node(&db, tweak).await;
        app.db = Some(db);
        app
    }

    /// Spawns `n` nodes sharing one fresh PostgreSQL database and the local Redis under a prefix
    /// of their own (so parallel tests do not hear each other). The database outlives the nodes.
    pub async fn spawn_cluster(n: usize, tweak: impl Fn(&mut Config)) -> (TestDb, Vec<TestApp>) {
        let db = TestDb::new(Backend::Postgres).await;
        let prefix = format!("sbtest:{}:", uuid::Uuid::new_v4().simple());
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            nodes.push(
                Self::spawn_node(&db, |c| {
                    c.redis_url = Some(redis_url());
                    c.redis_prefix = prefix.clone();
                    tweak(c);
                })
                .await,
            );
        }
        (db, nodes)
    }

    /// Spawns a server on `db` without owning it.
    pub async fn spawn_node(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        init_tracing();
        let mut config = test_config(db);
        tweak(&mut config);
        let redis_prefix = if config.redis_url.is_some() {
            config.redis_prefix.clone()
        } else {
            String::new()
        };
        let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(switchboard_server::run_with(
            listener,
            Some(admin),
            config,
            shutdown.clone(),
        ));
        let app = TestApp {
            addr,
            admin_addr,
            http: reqwest::Client::new(),
            db: None,
            redis_prefix: redis_prefix.clone(),
            shutdown,
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Starts the graceful shutdown and waits for `run` to return; hands back the database.
    pub async fn stop(mut self) -> anyhow::Result<TestDb> {
        self.shutdown.cancel();
        let server = self.server.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), server).await???;
        self.db
            .take()
            .ok_or_else(|| anyhow::anyhow!("this node does not own its database"))
    }

    /// Stops a node that does not own its database (see `spawn_cluster`).
    pub async fn stop_node(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let server = self.server.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), server).await???;
        Ok(())
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    /// `DELETE path`, with a JSON body when `body` is not null.
    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.delete(self.url(path));
        if !body.is_null() {
            req = req.json(&body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn register(&self, username: &str, password: &str) -> (u16, Value) {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({ "username": username, "password": password }),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({ "username": username, "password": password }),
        )
        .await
    }

    /// `POST /api/v1/auth/logout` with `token`; returns the status.
    pub async fn logout(&self, token: &str) -> u16 {
        self.post("/api/v1/auth/logout", Some(token), json!(null))
            .await
            .0
    }

    /// Registers and logs in a user with a unique name starting with `prefix`.
    pub async fn user(&self, prefix: &str) -> User {
        let username = format!(
            "{prefix}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let password = "correct horse battery".to_owned();
        let (status, body) = self.register(&username, &password).await;
        assert_eq!(status, 201, "register: {body}");
        let (status, body) = self.login(&username, &password).await;
        assert_eq!(status, 200, "login: {body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            username,
            password,
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A WebSocket authenticated as `user` with an `auth` frame.
    pub async fn ws(&self, user: &User, encoding: Encoding) -> WsClient {
        let mut ws = WsClient::connect(&self.ws_url(), encoding, None)
            .await
            .expect("ws connect");
        ws.auth(&user.access_token).await;
        ws
    }
}

/// Registers `username` on the server at `base` (`http://host:port`) and logs in; returns the
/// access token. For servers that are not a `TestApp` (processes, load balancers).
pub async fn register_and_login(base: &str, username: &str) -> String {
    let http = reqwest::Client::new();
    let creds = json!({ "username": username, "password": "longenough" });
    let reg = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status().as_u16(), 201, "register {username}");
    let (status, body) = read(
        http.post(format!("{base}/api/v1/auth/login"))
            .json(&creds)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "login {username}: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Server logs in test output (`RUST_LOG`, default warnings), captured per test by the harness.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter =
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
