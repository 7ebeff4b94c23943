//! What a run does, as plain data: the scenario, its parameters and the common knobs. The CLI
//! ([`crate::cli`]) fills it from flags; tests build it directly; worker processes receive it as
//! JSON.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_protocol::Encoding;

/// Connections one worker process holds at most. The hard limit is 20,000 file descriptors per
/// process; 15,000 leaves room for the runtime, reconnect overlap and the process's own files.
pub const CONNECTIONS_PER_WORKER: usize = 15_000;
/// Connections per source address. One source IP reaches one server ip:port through about 28k
/// ephemeral ports (32768–60999); staying below leaves ports for reconnects in flight.
pub const CONNECTIONS_PER_SOURCE_IP: usize = 25_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOptions {
    /// WebSocket URLs (`ws://127.0.0.1:8080/ws`); connections are spread over them round-robin.
    pub urls: Vec<String>,
    /// The server's token-signing secret (`SWITCHBOARD_SECRET`), used to mint access tokens.
    pub secret: String,
    pub encoding: WireEncoding,
    /// Approximate JSON size of each published `data` object.
    pub payload_bytes: usize,
    /// How fast connections are opened.
    pub ramp: Ramp,
    /// Publishing time before measurement starts; excluded from latency and rates.
    pub warmup: Duration,
    /// The measured part of the run (for `connect`: how long connections are held).
    pub duration: Duration,
    /// How long to wait after publishing stops for in-flight acks and deliveries.
    pub drain: Duration,
    /// Worker processes; 0 picks one per [`CONNECTIONS_PER_WORKER`] connections.
    pub workers: usize,
    /// Spread client sockets over source addresses 127.0.0.2.. (0: automatic when needed).
    pub source_ips: usize,
    /// The server's process id, to read its CPU time (and RSS without `/metrics`) from `/proc`.
    pub server_pid: Option<u32>,
    /// Failed connections above this share of all attempts fail the run (exit code 1).
    pub max_connect_failure_pct: f64,
    /// Show a live progress bar on stderr.
    pub progress: bool,
    /// Short id used in channel names, user names and payloads; random when `None`.
    pub run_id: Option<String>,
    /// The program re-executed as `<program> worker` for multi-process runs; defaults to the
    /// current executable, which must then be `switchboard-loadtest` itself.
    pub worker_program: Option<PathBuf>,
    pub scenario: Scenario,
}

impl RunOptions {
    /// Options with every default (a ~10 s run) for one URL.
    pub fn new(url: impl Into<String>, secret: impl Into<String>, scenario: Scenario) -> Self {
        RunOptions {
            urls: vec![url.into()],
            secret: secret.into(),
            encoding: WireEncoding::Json,
            payload_bytes: 100,
            ramp: Ramp::PerSec(1000.0),
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(8),
            drain: Duration::from_secs(2),
            workers: 0,
            source_ips: 0,
            server_pid: None,
            max_connect_failure_pct: 1.0,
            progress: false,
            run_id: None,
            worker_program: None,
            scenario,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.urls.is_empty(), "at least one --url is needed");
        for url in &self.urls {
            anyhow::ensure!(
                url.starts_with("ws://"),
                "{url}: only ws:// URLs are supported"
            );
        }
        anyhow::ensure!(!self.secret.is_empty(), "--secret is needed to mint tokens");
        anyhow::ensure!(!self.duration.is_zero(), "--duration must be positive");
        anyhow::ensure!(
            self.payload_bytes <= 60 * 1024,
            "--payload-bytes above 60 KiB exceeds the server's default frame limit"
        );
        anyhow::ensure!(
            self.source_ips <= 253,
            "--source-ips is at most 253 (127.0.0.2..254)"
        );
        anyhow::ensure!(self.ramp.is_valid(), "--ramp must be positive");
        if let Scenario::Feed(p) = &self.scenario {
            anyhow::ensure!(
                p.rate > 0.0 && p.rate.is_finite(),
                "--rate must be positive"
            );
            anyhow::ensure!(
                p.chat_rate >= 0.0 && p.chat_rate.is_finite(),
                "--chat-rate must be 0 or positive"
            );
        }
        if let Some(id) = &self.run_id {
            // It goes into channel names (at most 64 characters of [A-Za-z0-9_.-]).
            anyhow::ensure!(
                (1..=16).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()),
                "--run-id must be 1-16 ASCII letters or digits"
            );
        }
        Ok(())
    }

    /// Worker processes for `connections` connections.
    pub fn resolve_workers(&self, connections: usize) -> usize {
        match self.workers {
            0 => connections.div_ceil(CONNECTIONS_PER_WORKER).max(1),
            n => n,
        }
    }

    /// Source addresses for `connections` connections (0: let the kernel pick 127.0.0.1).
    /// Chosen automatically only for loopback servers: 127.0.0.x cannot reach anything else.
    pub fn resolve_source_ips(&self, connections: usize) -> usize {
        let loopback = self.urls.iter().all(|u| {
            let host = u.trim_start_matches("ws://");
            host.starts_with("127.") || host.starts_with("localhost")
        });
        match self.source_ips {
            0 if loopback && connections > CONNECTIONS_PER_SOURCE_IP => {
                connections.div_ceil(CONNECTIONS_PER_SOURCE_IP).min(253)
            }
            n => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WireEncoding {
    Json,
    Msgpack,
}

impl WireEncoding {
    pub fn protocol(self) -> Encoding {
        match self {
            WireEncoding::Json => Encoding::Json,
            WireEncoding::Msgpack => Encoding::MsgPack,
        }
    }
}

/// Connection opening pace: a rate, or a time over which all connections open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Ramp {
    PerSec(f64),
    Over(Duration),
}

impl Ramp {
    /// Connections per second for `n` connections.
    pub fn rate(&self, n: usize) -> f64 {
        match *self {
            Ramp::PerSec(r) => r,
            Ramp::Over(d) if d.is_zero() => f64::INFINITY,
            Ramp::Over(d) => n as f64 / d.as_secs_f64(),
        }
    }

    fn is_valid(&self) -> bool {
        match *self {
            Ramp::PerSec(r) => r > 0.0,
            Ramp::Over(_) => true,
        }
    }
}

impl FromStr for Ramp {
    type Err = String;

    /// `2000/s` is a rate; `5s` or `5` is a ramp time in seconds.
    fn from_str(s: &str) -> Result<Ramp, String> {
        let bad = || format!("{s}: expected seconds (`5s`) or connections per second (`2000/s`)");
        if let Some(rate) = s.strip_suffix("/s") {
            return rate.trim().parse().map(Ramp::PerSec).map_err(|_| bad());
        }
        let secs: f64 = s.trim_end_matches('s').parse().map_err(|_| bad())?;
        Duration::try_from_secs_f64(secs)
            .map(Ramp::Over)
            .map_err(|_| bad())
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ramp::PerSec(r) => write!(f, "{r}/s"),
            Ramp::Over(d) => write!(f, "{}s", d.as_secs_f64()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Scenario {
    Connect(ConnectParams),
    Fanout(FanoutParams),
    Chat(ChatParams),
    Reconnect(ReconnectParams),
    Feed(FeedParams),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Connect(_) => "connect",
            Scenario::Fanout(_) => "fanout",
            Scenario::Chat(_) => "chat",
            Scenario::Reconnect(_) => "reconnect",
            Scenario::Feed(_) => "feed",
        }
    }
}

/// Idle authenticated (and subscribed) connections: how many, how fast, at what memory cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectParams {
    pub connections: usize,
    /// Connections opened per second.
    pub rate: f64,
    /// Subscribe each connection to one channel.
    pub subscribe: bool,
}

impl Default for ConnectParams {
    fn default() -> Self {
        ConnectParams {
            connections: 1000,
            rate: 500.0,
            subscribe: true,
        }
    }
}

/// One channel, many subscribers, a steady publish rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutParams {
    pub subscribers: usize,
    /// Messages per second in total, over all publishers.
    pub rate: f64,
    /// Publishing connections; `None`: one per 100 msg/s (half the server's per-connection limit).
    pub publishers: Option<usize>,
}

impl Default for FanoutParams {
    fn default() -> Self {
        FanoutParams {
            subscribers: 1000,
            rate: 40.0,
            publishers: None,
        }
    }
}

/// Rooms × members; every member subscribes to its room and publishes to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatParams {
    pub rooms: usize,
    pub members: usize,
    /// Messages per second per member.
    pub rate: f64,
    /// After every Nth acknowledged publish, the member edits, reacts to, unreacts and deletes
    /// that message over HTTP ([`crate::lifecycle`]); 0: never.
    #[serde(default)]
    pub lifecycle_every: u64,
    /// Members send typing signals (one per [`crate::lifecycle::TYPING_EVERY`]).
    #[serde(default)]
    pub typing: bool,
}

impl ChatParams {
    pub fn mix(&self) -> crate::lifecycle::Mix {
        crate::lifecycle::Mix {
            lifecycle_every: self.lifecycle_every,
            typing: self.typing,
        }
    }
}

impl Default for ChatParams {
    fn default() -> Self {
        ChatParams {
            rooms: 10,
            members: 10,
            rate: 1.0,
            lifecycle_every: 0,
            typing: false,
        }
    }
}

/// Subscribers all drop at once mid-run and resume with `since` while publishing continues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconnectParams {
    pub subscribers: usize,
    /// Messages per second in total.
    pub rate: f64,
    pub publishers: Option<usize>,
}

impl Default for ReconnectParams {
    fn default() -> Self {
        ReconnectParams {
            subscribers: 1000,
            rate: 100.0,
            publishers: None,
        }
    }
}

/// One author posting over HTTP to N followers, each receiving the posts on its `feed:` channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedParams {
    pub followers: usize,
    /// Posts per second.
    pub rate: f64,
    /// Chat messages per second on a side room with one subscriber, reported separately: what a
    /// big fan-out does to other publishes (0: none).
    #[serde(default)]
    pub chat_rate: f64,
}

impl Default for FeedParams {
    fn default() -> Self {
        FeedParams {
            followers: 1000,
            rate: 10.0,
            chat_rate: 0.0,
        }
    }
}

/// Publishing connections for `rate` msg/s: `explicit`, or one per 100 msg/s, which keeps each
/// at half the server's default per-connection limit (200/s, burst 400).
pub fn publishers_for(rate: f64, explicit: Option<usize>) -> usize {
    explicit
        .unwrap_or_else(|| (rate / 100.0).ceil() as usize)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_parses_rates_and_times() {
        assert_eq!("2000/s".parse::<Ramp>(), Ok(Ramp::PerSec(2000.0)));
        assert_eq!("5s".parse::<Ramp>(), Ok(Ramp::Over(Duration::from_secs(5))));
        assert_eq!(
            "2.5".parse::<Ramp>(),
            Ok(Ramp::Over(Duration::from_millis(2500)))
        );
        assert!("fast".parse::<Ramp>().is_err());
        assert_eq!(Ramp::Over(Duration::from_secs(2)).rate(1000), 500.0);
    }

    #[test]
    fn workers_and_source_ips_scale_with_connections() {
        let o = RunOptions::new(
            "ws://127.0.0.1:1/ws",
            "s",
            Scenario::Fanout(Default::default()),
        );
        assert_eq!(o.resolve_workers(1000), 1);
        assert_eq!(o.resolve_workers(15_001), 2);
        assert_eq!(o.resolve_workers(100_000), 7);
        assert_eq!(o.resolve_source_ips(20_000), 0);
        assert_eq!(o.resolve_source_ips(100_000), 4);
        let remote = RunOptions::new(
            "ws://10.0.0.1:1/ws",
            "s",
            Scenario::Chat(Default::default()),
        );
        assert_eq!(remote.resolve_source_ips(100_000), 0);
        assert_eq!(publishers_for(40.0, None), 1);
        assert_eq!(publishers_for(450.0, None), 5);
        assert_eq!(publishers_for(450.0, Some(2)), 2);
    }
}
