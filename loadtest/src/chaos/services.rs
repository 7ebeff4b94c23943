//! What a chaos run starts and then breaks: a Redis of its own, `switchboard` nodes as
//! processes (each behind its own proxies to PostgreSQL and Redis), and the signals sent to them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::proxy::Proxy;

/// A free loopback port (bound, then let go: good enough on a machine the run has to itself).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `redis-server` on a port of its own, restartable on the same port.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        let mut redis = Redis {
            port: free_port()?,
            child: None,
        };
        redis.resume()?;
        Ok(redis)
    }

    /// Kills it (`kill -9`: subscribers and publishers lose their connections at once).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (apt-get install redis-server)")?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
    }

    /// Drops every pub/sub connection (what an overflowing output buffer does to a subscriber).
    pub fn kill_pubsub_clients(&self) -> anyhow::Result<()> {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "CLIENT",
                "KILL",
                "TYPE",
                "pubsub",
            ])
            .output()
            .context("running redis-cli")?;
        if !out.status.success() {
            bail!(
                "CLIENT KILL failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `switchboard` node: a process on a fixed port, restartable, with its own proxies.
pub struct Node {
    pub index: usize,
    pub port: u16,
    pub pg_proxy: Proxy,
    pub redis_proxy: Proxy,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub async fn start(
        index: usize,
        bin: &Path,
        dir: &Path,
        pg_port: u16,
        redis_port: u16,
        common: &[(String, String)],
    ) -> anyhow::Result<Node> {
        let pg_proxy = Proxy::start(pg_port).await?;
        let redis_proxy = Proxy::start(redis_port).await?;
        let port = free_port()?;
        let data = dir.join(format!("node{index}"));
        std::fs::create_dir_all(&data)?;
        let mut env: Vec<(String, String)> = common.to_vec();
        env.extend([
            ("SWITCHBOARD_BIND".into(), format!("127.0.0.1:{port}")),
            ("SWITCHBOARD_DATA_DIR".into(), data.display().to_string()),
            (
                "DATABASE_URL".into(),
                format!("postgres://root@127.0.0.1:{}/postgres", pg_proxy.port),
            ),
            (
                "REDIS_URL".into(),
                format!("redis://127.0.0.1:{}", redis_proxy.port),
            ),
        ]);
        let mut node = Node {
            index,
            port,
            pg_proxy,
            redis_proxy,
            bin: bin.to_owned(),
            env,
            log: dir.join(format!("node{index}.log")),
            child: None,
        };
        node.launch()?;
        node.wait_healthy(Duration::from_secs(30)).await?;
        Ok(node)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process again (after a kill or a drain), on the same port and data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.launch()?;
        self.wait_healthy(Duration::from_secs(30)).await
    }

    pub fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let Some(child) = &self.child else {
            bail!("node {} is not running", self.index);
        };
        let ok = Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("kill -{sig} node {} failed", self.index);
        }
        Ok(())
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits (up to `within`) for the drain to finish; then kill -9 if it did not.
    pub async fn drain(&mut self, within: Duration) -> anyhow::Result<bool> {
        self.signal("TERM")?;
        let deadline = Instant::now() + within;
        let mut clean = false;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child {
                if child.try_wait()?.is_some() {
                    clean = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        Ok(clean)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.base());
        let deadline = Instant::now() + within;
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not come up; see {}",
                    self.index,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused node would never die of SIGKILL's friend SIGTERM; SIGKILL works anyway.
            let _ = Command::new("kill")
                .args(["-CONT".to_owned(), child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
