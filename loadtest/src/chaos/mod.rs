//! `switchboard-loadtest chaos`: a fault-injection run with a Jepsen-style check at the end.
//!
//! It starts its own PostgreSQL ([`postgres`]) and Redis, and N `switchboard` nodes as processes
//! ([`services`]), each reaching PostgreSQL and Redis through proxies of its own ([`proxy`]) so
//! that one node can be partitioned from both. The workload ([`workload`]) publishes uniquely
//! numbered payloads to one channel through random nodes, retrying each with its idempotency key
//! until it is acked, while subscribers read the channel from the start and reconnect to random
//! nodes with `since`. Meanwhile the nemesis ([`nemesis`]) injects a schedule of faults drawn
//! from `--seed`: `kill -9` and restart, SIGTERM drain, SIGSTOP/SIGCONT, a partition, Redis and
//! PostgreSQL restarts, pub/sub connection kills. At the end everything is healed, the workload
//! finishes what it holds, the channel's history is read back, and the [`checker`] holds the
//! records against it: every ack at its offset exactly once, nothing stored twice or never
//! attempted, every subscriber's sequence gapless and equal to history; plus the longest window
//! without an ack and the time to recover after the last fault.

pub mod checker;
pub mod nemesis;
pub mod postgres;
pub mod proxy;
pub mod services;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_protocol::Encoding;

use self::checker::{Acked, Attempt, Observed, Stored, Verdict};
use self::nemesis::Planned;
use self::postgres::PrivatePostgres;
use self::services::{Node, Redis};
use self::workload::{Shared, CHANNEL};

/// What a chaos run does.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub server_bin: PathBuf,
    pub nodes: usize,
    /// Publishing time, faults included (a warm-up and a quiet end are part of it).
    pub duration: Duration,
    pub faults: usize,
    pub seed: u64,
    pub publishers: usize,
    pub subscribers: usize,
    /// Publishes per second per publisher (each waits for its ack before the next).
    pub rate: f64,
}

/// The cluster the nemesis breaks.
pub struct Cluster {
    pub postgres: PrivatePostgres,
    pub redis: Redis,
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// The outcome: the schedule as injected, the workload's totals, the checker's verdict.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub nodes: usize,
    pub faults: Vec<Injected>,
    pub attempted: usize,
    pub acked: usize,
    pub stored: usize,
    pub subscriber_reconnects: u64,
    pub refused: Vec<(u64, String)>,
    pub verdict: Verdict,
    pub elapsed_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Injected {
    #[serde(flatten)]
    pub planned: Planned,
    pub started_ms: u64,
    pub healed_ms: u64,
    pub error: Option<String>,
    /// The longest time without any ack (from any node) that overlaps the fault: how much one
    /// broken part held the whole cluster up.
    pub longest_ack_gap_ms: u64,
}

/// The longest gap between consecutive ack times (sorted) that overlaps `from..=to`.
fn longest_gap_within(sorted_acks: &[u64], from: u64, to: u64) -> u64 {
    sorted_acks
        .windows(2)
        .filter(|w| w[1] >= from && w[0] <= to)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0)
}

impl ChaosReport {
    /// Correct, and the nemesis did everything it planned.
    pub fn ok(&self) -> bool {
        // Liveness too: a cluster that acks nothing, leaves a subscriber behind, or never acks
        // again after the last fault is not a correct one.
        self.verdict.ok()
            && self.verdict.caught_up()
            && self.acked > 0
            && (self.faults.is_empty() || self.verdict.recovery_ms.is_some())
            && self.refused.is_empty()
            && self.faults.iter().all(|f| f.error.is_none())
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "chaos: seed {}, {} nodes, {} faults in {:.1} s\n",
            self.seed,
            self.nodes,
            self.faults.len(),
            self.elapsed_ms as f64 / 1000.0
        );
        for f in &self.faults {
            out.push_str(&format!(
                "  {:>7.1} s  {:<18} held {:>5} ms, longest without an ack {:>5} ms{}\n",
                f.started_ms as f64 / 1000.0,
                format!("{:?}", f.planned.fault),
                f.healed_ms.saturating_sub(f.started_ms),
                f.longest_ack_gap_ms,
                f.error
                    .as_deref()
                    .map(|e| format!("  FAILED: {e}"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "publishes: {} attempted, {} acked, {} stored; subscribers reconnected {} times\n",
            self.attempted, self.acked, self.stored, self.subscriber_reconnects
        ));
        if !self.refused.is_empty() {
            out.push_str(&format!(
                "REFUSED for good: {} (first: {:?})\n",
                self.refused.len(),
                &self.refused[..self.refused.len().min(5)]
            ));
        }
        out.push_str(&self.verdict.render());
        out.push_str(if self.ok() { "\nOK\n" } else { "\nFAILED\n" });
        out
    }
}

/// Settings every node gets: budgets that the workload and the final history read fit in,
/// tokens that outlive the run, and the proxies' addresses (added per node).
fn node_env(secret: &str) -> Vec<(String, String)> {
    [
        ("SWITCHBOARD_SECRET", secret),
        ("SWITCHBOARD_ADMIN_BIND", "off"),
        ("SWITCHBOARD_ACCESS_TTL_SECS", "7200"),
        ("SWITCHBOARD_PUBLISH_RATE", "5000"),
        ("SWITCHBOARD_PUBLISH_BURST", "10000"),
        ("SWITCHBOARD_USER_PUBLISH_RATE", "5000"),
        ("SWITCHBOARD_USER_PUBLISH_BURST", "10000"),
        ("SWITCHBOARD_HTTP_READ_RATE", "100000"),
        ("SWITCHBOARD_HTTP_READ_BURST", "100000"),
        ("SWITCHBOARD_REGISTER_PER_IP", "100000"),
        ("SWITCHBOARD_REGISTER_PER_MIN", "100000"),
        ("SWITCHBOARD_LOGIN_PER_IP", "100000"),
        ("SWITCHBOARD_LOGIN_PER_USER", "100000"),
        ("SWITCHBOARD_DRAIN_WINDOW_MS", "500"),
        ("SWITCHBOARD_DB_POOL", "8"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn run(opts: ChaosOptions) -> anyhow::Result<ChaosReport> {
    if opts.nodes == 0 || opts.publishers == 0 || opts.subscribers == 0 {
        bail!("a chaos run needs at least one node, publisher and subscriber");
    }
    let dir = tempfile::tempdir()?;
    let postgres = PrivatePostgres::start().context("starting PostgreSQL")?;
    let redis = Redis::start()?;
    let secret = format!("chaos-{}-{}", opts.seed, uuid::Uuid::new_v4().simple());
    let env = node_env(&secret);
    let mut nodes = Vec::with_capacity(opts.nodes);
    for i in 0..opts.nodes {
        nodes.push(
            Node::start(
                i,
                &opts.server_bin,
                dir.path(),
                postgres.port,
                redis.port,
                &env,
            )
            .await?,
        );
    }
    let mut cluster = Cluster {
        postgres,
        redis,
        nodes,
        _dir: dir,
    };
    let first = cluster.nodes[0].base();
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for i in 0..opts.publishers + opts.subscribers {
        tokens.push(user_token(&http, &first, &format!("chaos{i}_{}", opts.seed % 100_000)).await?);
    }
    let shared = Shared {
        ws: cluster.nodes.iter().map(|n| n.ws()).collect(),
        started: Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
        target: Arc::new(AtomicU64::new(0)),
        give_up: Duration::from_secs(60),
        reconnects: Arc::new(AtomicU64::new(0)),
    };
    let started = shared.started;
    let (publisher_tokens, subscriber_tokens) = tokens.split_at(opts.publishers);
    let publishers: Vec<_> = publisher_tokens
        .iter()
        .enumerate()
        .map(|(p, token)| {
            tokio::spawn(workload::publisher(
                shared.clone(),
                token.clone(),
                (p as u64 + 1) * 1_000_000_000,
                opts.rate,
                opts.seed ^ (p as u64 + 1),
            ))
        })
        .collect();
    let subscribers: Vec<_> = subscriber_tokens
        .iter()
        .enumerate()
        .map(|(s, token)| {
            // Half of them read MessagePack: both encodings carry the same sequence.
            let encoding = if s % 2 == 0 {
                Encoding::Json
            } else {
                Encoding::MsgPack
            };
            tokio::spawn(workload::subscriber(
                shared.clone(),
                token.clone(),
                encoding,
                opts.seed ^ (0x5b + s as u64),
            ))
        })
        .collect();

    // The nemesis: a warm-up, the faults spread over most of the run, a quiet end.
    let warmup = Duration::from_secs(3).min(opts.duration / 10);
    let quiet_end = Duration::from_secs(5).min(opts.duration / 5);
    let span = opts.duration.saturating_sub(warmup + quiet_end);
    let plan = nemesis::schedule(opts.seed, opts.nodes, warmup, span, opts.faults);
    let mut injected = Vec::with_capacity(plan.len());
    for planned in plan {
        let now = started.elapsed();
        if planned.at > now {
            tokio::time::sleep(planned.at - now).await;
        }
        let started_ms = started.elapsed().as_millis() as u64;
        eprintln!(
            "chaos: {:>7.1} s  {:?}",
            started_ms as f64 / 1000.0,
            planned.fault
        );
        let result = nemesis::inject(&mut cluster, planned.fault, planned.hold).await;
        injected.push(Injected {
            planned,
            started_ms,
            healed_ms: started.elapsed().as_millis() as u64,
            error: result.err().map(|e| format!("{e:#}")),
            longest_ack_gap_ms: 0,
        });
    }
    let rest = opts.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    shared.stop.store(true, Ordering::Relaxed);
    eprintln!("chaos: publishing stopped; finishing the publishes in hand");
    let end_ms = started.elapsed().as_millis() as u64;

    let mut attempts: Vec<Attempt> = Vec::new();
    let mut acks: Vec<Acked> = Vec::new();
    let mut refused = Vec::new();
    for p in publishers {
        let record = p.await?;
        attempts.extend(record.attempts);
        acks.extend(record.acks);
        refused.extend(record.refused);
    }
    let mut ack_times: Vec<u64> = acks.iter().map(|a| a.at_ms).collect();
    ack_times.sort_unstable();
    for f in &mut injected {
        f.longest_ack_gap_ms = longest_gap_within(&ack_times, f.started_ms, f.healed_ms);
    }
    eprintln!("chaos: {} acks; reading the history back", acks.len());
    let history = read_history(&http, &first, &tokens[0]).await?;
    eprintln!(
        "chaos: {} stored; waiting for the subscribers to catch up",
        history.len()
    );
    shared
        .target
        .store(history.last().map_or(0, |m| m.offset), Ordering::Relaxed);
    let mut observed: Vec<Observed> = Vec::new();
    for s in subscribers {
        observed.push(s.await?);
    }
    let faults: Vec<(u64, u64)> = injected
        .iter()
        .map(|f| (f.started_ms, f.healed_ms))
        .collect();
    let verdict = checker::check(&attempts, &acks, &history, &observed, &faults, end_ms);
    Ok(ChaosReport {
        seed: opts.seed,
        nodes: opts.nodes,
        faults: injected,
        attempted: attempts.len(),
        acked: acks.len(),
        stored: history.len(),
        subscriber_reconnects: shared.reconnects.load(Ordering::Relaxed),
        refused,
        verdict,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

async fn user_token(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let creds = json!({ "username": name, "password": "chaos-password" });
    let reg = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await?;
    if !reg.status().is_success() {
        bail!("registering {name}: HTTP {}", reg.status());
    }
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&creds)
        .send()
        .await?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("login answered no access_token")
}

/// The channel's whole history, ascending, paged backwards over HTTP (retrying a node that is
/// still settling).
async fn read_history(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<Vec<Stored>> {
    let mut all: Vec<Stored> = Vec::new();
    let mut before: Option<u64> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut url = format!("{base}/api/v1/channels/{CHANNEL}/messages?limit=200");
        if let Some(b) = before {
            url.push_str(&format!("&before={b}"));
        }
        let page: Value = match http.get(&url).bearer_auth(token).send().await {
            Ok(r) if r.status().is_success() => r.json().await?,
            other => {
                if Instant::now() > deadline {
                    bail!("reading history failed: {other:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            all.reverse();
            return Ok(all);
        }
        // Pages come ascending; collect newest-first, flip at the end.
        for m in messages.iter().rev() {
            all.push(Stored {
                offset: m["offset"].as_u64().unwrap_or(0),
                payload: m["data"]["p"].as_u64(),
            });
        }
        before = messages.first().and_then(|m| m["offset"].as_u64());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_gap_that_overlaps_a_fault_is_the_one_counted() {
        let acks = [0, 100, 150, 1_150, 1_200, 5_000];
        assert_eq!(super::longest_gap_within(&acks, 200, 900), 1_000);
        assert_eq!(super::longest_gap_within(&acks, 1_160, 1_170), 50);
        assert_eq!(super::longest_gap_within(&acks, 0, 10_000), 3_800);
        assert_eq!(super::longest_gap_within(&[], 0, 10), 0);
    }
}
