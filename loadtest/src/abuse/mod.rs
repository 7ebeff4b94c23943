//! `abuse`: an honest `fanout` run measured twice, alone and then beside bounded attackers
//! (a registration flood, a login spray from forged proxy addresses, many sockets of one user,
//! slowloris clients, a storm of history reads of large pages, a mention flood and presence
//! toggling on the honest channel). Reports the honest clients' loss and latency in both phases,
//! the server's peak memory, whether it stayed up, and what each attacker was answered.
//!
//! Not a test: a benchmark of how well the server's bounds hold (see BENCHMARKS.md).

mod attacks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::options::{RunOptions, Scenario};
use crate::server::ServerWatch;
use crate::tokens::Minter;
use crate::{Percentiles, Report};
pub use attacks::Attackers;

/// How often the server's RSS is sampled for the peak.
const RSS_EVERY: Duration = Duration::from_millis(250);

/// What one attacker did and was answered: outcome → count (`201`, `429`, `closed`, ...).
pub type Tally = BTreeMap<String, u64>;

#[derive(Debug, Serialize)]
pub struct AbuseReport {
    pub baseline: Phase,
    pub during: Phase,
    /// The server's largest RSS while the attackers ran.
    pub peak_rss_bytes: Option<u64>,
    pub rss_before_bytes: Option<u64>,
    /// `GET /healthz` answered 200 after the attack.
    pub server_up_after: bool,
    pub attackers: BTreeMap<&'static str, Tally>,
}

/// The honest fan-out in one phase.
#[derive(Debug, Serialize)]
pub struct Phase {
    pub delivered: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub latency_ms: Percentiles,
    pub ack_latency_ms: Percentiles,
    pub connections_failed: u64,
}

impl From<&Report> for Phase {
    fn from(r: &Report) -> Phase {
        Phase {
            delivered: r.delivered,
            expected: r.expected,
            lost: r.lost,
            duplicates: r.duplicates,
            out_of_order: r.out_of_order,
            latency_ms: r.latency_ms,
            ack_latency_ms: r.ack_latency_ms,
            connections_failed: r.connections.failed,
        }
    }
}

impl AbuseReport {
    /// 0 when the honest clients lost nothing in either phase and the server stayed up; 2 on
    /// loss, duplicates or reordering; 1 when the server went down.
    pub fn exit_code(&self) -> i32 {
        let faults = |p: &Phase| p.lost + p.duplicates + p.out_of_order;
        if faults(&self.baseline) + faults(&self.during) > 0 {
            2
        } else if !self.server_up_after {
            1
        } else {
            0
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mib = |b: Option<u64>| {
            b.map_or("?".to_owned(), |b| {
                format!("{:.1} MiB", b as f64 / 1048576.0)
            })
        };
        for (name, p) in [("alone", &self.baseline), ("under attack", &self.during)] {
            out.push_str(&format!(
                "honest fanout {name}: delivered {}/{} lost {} dup {} reordered {}, p50 {:.2} ms p99 {:.2} ms (ack p99 {:.2} ms), failed connects {}\n",
                p.delivered, p.expected, p.lost, p.duplicates, p.out_of_order,
                p.latency_ms.p50, p.latency_ms.p99, p.ack_latency_ms.p99, p.connections_failed
            ));
        }
        out.push_str(&format!(
            "server RSS before {}, peak during the attack {}; up after: {}\n",
            mib(self.rss_before_bytes),
            mib(self.peak_rss_bytes),
            self.server_up_after
        ));
        for (attacker, tally) in &self.attackers {
            let answers: Vec<String> = tally.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            out.push_str(&format!("  {attacker}: {}\n", answers.join(", ")));
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Runs the honest fan-out alone, then again with `attackers` beside it.
pub async fn run(opts: RunOptions, attackers: Attackers) -> anyhow::Result<AbuseReport> {
    anyhow::ensure!(
        matches!(opts.scenario, Scenario::Fanout(_)),
        "the abuse run measures a fanout scenario"
    );
    let url = opts
        .urls
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no --url"))?;
    let stem = opts
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned());
    let watch = Arc::new(ServerWatch::new(&url, opts.server_pid)?);

    let mut alone = opts.clone();
    alone.run_id = Some(format!("{stem}a"));
    let baseline = crate::run(alone).await?;

    let rss_before = watch.rss().await.map(|r| r.bytes);
    let stop = CancellationToken::new();
    let peak = tokio::spawn(peak_rss(watch.clone(), stop.clone()));
    let mut beside = opts.clone();
    let during_id = format!("{stem}b");
    beside.run_id = Some(during_id.clone());
    let channel = format!("room:lt-fanout-{during_id}");
    let minter = Minter::new(&opts.secret, &format!("{stem}x"));
    let running = attackers.start(&url, watch.base(), minter, &channel, stop.clone())?;
    // The attackers set themselves up (the large messages the history storm reads) first.
    tokio::time::sleep(attackers.head_start).await;
    let during = crate::run(beside).await;
    stop.cancel();
    let tallies = running.finish().await;
    let peak_rss_bytes = peak.await.ok().flatten();
    let during = during?;
    let server_up_after = watch
        .http()
        .get(format!("{}/healthz", watch.base()))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    Ok(AbuseReport {
        baseline: (&baseline).into(),
        during: (&during).into(),
        peak_rss_bytes,
        rss_before_bytes: rss_before,
        server_up_after,
        attackers: tallies,
    })
}

async fn peak_rss(watch: Arc<ServerWatch>, stop: CancellationToken) -> Option<u64> {
    let mut peak = None;
    loop {
        if let Some(rss) = watch.rss().await {
            peak = peak.max(Some(rss.bytes));
        }
        tokio::select! {
            _ = stop.cancelled() => return peak,
            _ = tokio::time::sleep(RSS_EVERY) => {}
        }
    }
}
