//! The result of a run: what `--json` writes (its key names are a public contract, pinned by a
//! test below), the verdict and the process exit code. The human summary is in
//! [`crate::summary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::latency::{Latency, Percentiles};
use crate::options::{RunOptions, Scenario, WireEncoding};
use crate::server::{CpuTimes, Rss};
use crate::stats::{ActionTally, LaneTally, MixTally, Tally};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub run_id: String,
    pub encoding: WireEncoding,
    pub workers: usize,
    pub source_ips: usize,
    /// Length of the measured window (after warm-up), in seconds.
    pub duration_secs: f64,
    pub warmup_secs: f64,
    /// Whole run, ramp and drain included.
    pub wall_secs: f64,
    pub connections: Connections,
    /// Publishes acknowledged by the server (stored).
    pub published: u64,
    /// Publish frames sent (acked, refused or lost).
    pub publish_attempts: u64,
    /// Publish frames sent per second inside the window.
    pub sent_per_sec: f64,
    /// Messages received by subscribers (duplicates included).
    pub delivered: u64,
    /// Sum over subscriptions of (final offset - start offset).
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub seq_regressions: u64,
    /// Subscriptions still short of their channel's final offset when the drain deadline
    /// passed: their missing offsets count as `lost` (a longer `--drain` tells late from lost).
    pub behind_at_end: u64,
    /// Connections that were lost and not back when the run ended.
    pub disconnected_at_end: u64,
    /// Error frames by code, unexpected closes (`close_<code>`, `connection_lost`), failed
    /// connects (`connect_<reason>`), publishes never acked (`publish_unacked`), ...
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    /// Messages received per second inside the window.
    pub delivered_per_sec: f64,
    /// Publish → deliver, for messages sent inside the window (replays excluded).
    pub latency_ms: Percentiles,
    /// Publish → ack, for publishes sent inside the window.
    pub ack_latency_ms: Percentiles,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// The feed scenario's chat probe (`--chat-rate`): publishes on a room while the posts fan
    /// out, counted apart from them (the numbers above are the posts').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Probe>,
    /// The chat scenario's lifecycle actions (`--lifecycle-every`). Their messages are in
    /// `delivered` and `expected` above (they have offsets of their own), not in `published`
    /// or the latencies (they carry no stamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleReport>,
    /// The chat scenario's typing signals (`--typing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<TypingReport>,
    pub server: ServerStats,
    pub client: ClientStats,
    /// True when this machine's limits (file descriptors, ports, addresses) refused connections.
    pub local_limit: bool,
    pub local_limit_detail: Option<String>,
    pub notes: Vec<String>,
    pub verdict: Verdict,
    /// Why the verdict is not `ok`.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connections {
    pub planned: u64,
    pub ok: u64,
    pub failed: u64,
    /// Attempts (initial or reconnect) refused by this machine's limits rather than the server.
    pub local_limit: u64,
    pub ramp_secs: f64,
    pub connect_per_sec: f64,
    /// TCP connect → upgrade → subscriptions acknowledged.
    pub connect_latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recovery {
    pub dropped: u64,
    pub unrecovered: u64,
    /// The channel's last offset at the drop: what "fully recovered" means holding.
    pub target_offset: Option<u64>,
    /// From the drop until the last subscriber held every offset up to the target; `None` when
    /// some never did.
    pub time_to_full_recovery_ms: Option<f64>,
    pub per_subscriber_ms: Percentiles,
}

/// Side traffic measured alongside the scenario's own: the same fields as the top level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub published: u64,
    pub publish_attempts: u64,
    pub sent_per_sec: f64,
    pub delivered: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub seq_regressions: u64,
    pub delivered_per_sec: f64,
    pub latency_ms: Percentiles,
    pub ack_latency_ms: Percentiles,
}

impl Probe {
    fn build(t: &LaneTally, window_secs: f64) -> anyhow::Result<Probe> {
        let c = t.counts;
        Ok(Probe {
            published: t.acked,
            publish_attempts: t.sent,
            sent_per_sec: t.sent_in_window as f64 / window_secs,
            delivered: c.delivered,
            expected: c.expected,
            lost: c.lost,
            duplicates: c.duplicates,
            out_of_order: c.out_of_order,
            seq_regressions: c.seq_regressions,
            delivered_per_sec: t.delivered_in_window as f64 / window_secs,
            latency_ms: Latency::try_from(&t.latency)?.percentiles(),
            ack_latency_ms: Latency::try_from(&t.ack_latency)?.percentiles(),
        })
    }

    pub fn is_faulty(&self) -> bool {
        self.lost + self.duplicates + self.out_of_order + self.seq_regressions > 0
    }
}

/// Lifecycle actions (edit, react, unreact, delete over HTTP) and the messages they made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleReport {
    /// A chain after every Nth acknowledged publish of a member.
    pub every: u64,
    /// Requests sent, over all actions.
    pub sent: u64,
    /// Answered 2xx (`stored` with an offset of its own, or `unchanged`).
    pub acked: u64,
    pub stored: u64,
    pub unchanged: u64,
    /// Refused, by HTTP status, over all actions.
    pub refused: BTreeMap<String, u64>,
    /// Of those, 429s (throttled: counted, not a failure).
    pub throttled: u64,
    /// Not answered (connection failure, timeout).
    pub failed: u64,
    /// Chains still running when their member's drain deadline passed.
    pub unanswered: u64,
    /// Requests answered 2xx per second (sent inside the window).
    pub acked_per_sec: f64,
    /// By action: edit, react, unreact, delete.
    pub actions: BTreeMap<String, ActionTally>,
    /// Request → response, for 2xx answers to requests sent inside the window.
    pub latency_ms: Percentiles,
    /// Lifecycle messages received by subscribers, by `data.kind` (`changed`: replayed messages
    /// shown edited or deleted).
    pub delivered: BTreeMap<String, u64>,
    /// Received changes whose kind and target matched the answer for their offset; mismatched
    /// ones; ones made by another worker process (not checkable here).
    pub verified: u64,
    pub mismatched: u64,
    pub unverified: u64,
    /// Lifecycle kinds without a valid target below their own offset.
    pub malformed: u64,
    /// Unstamped messages that are no lifecycle change (a typing signal stored as a message
    /// would be one).
    pub unrecognised: u64,
}

impl LifecycleReport {
    fn build(every: u64, m: &MixTally, window_secs: f64) -> anyhow::Result<LifecycleReport> {
        let total = m.total();
        let latency = Latency::try_from(&m.latency)?.percentiles();
        Ok(LifecycleReport {
            every,
            sent: total.sent,
            acked: total.stored + total.unchanged,
            stored: total.stored,
            unchanged: total.unchanged,
            throttled: total.refused.get("429").copied().unwrap_or(0),
            refused: total.refused,
            failed: total.failed,
            unanswered: m.unanswered,
            acked_per_sec: latency.count as f64 / window_secs,
            actions: m.actions.clone(),
            latency_ms: latency,
            delivered: m.delivered.clone(),
            verified: m.verified,
            mismatched: m.mismatched,
            unverified: m.unverified,
            malformed: m.malformed,
            unrecognised: m.unrecognised,
        })
    }

    /// Refusals other than throttling (429).
    pub fn refused_not_throttled(&self) -> u64 {
        self.refused.values().sum::<u64>() - self.throttled
    }

    /// Messages a correct server never sends.
    pub fn is_faulty(&self) -> bool {
        self.mismatched + self.malformed + self.unrecognised > 0
    }
}

/// Typing signals: sent with an id (so acked or refused), and `typing` frames received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypingReport {
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    /// `typing` frames received by members (each signal reaches every member of its room, the
    /// typer included). Never a message: they have no offset and are not in `delivered`.
    pub received: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerStats {
    pub rss_source: Option<String>,
    pub rss_bytes_before: Option<u64>,
    pub rss_bytes_after: Option<u64>,
    pub rss_per_connection_bytes: Option<f64>,
    pub cpu_user_secs: Option<f64>,
    pub cpu_sys_secs: Option<f64>,
    pub cpu_user_us_per_delivery: Option<f64>,
    pub cpu_sys_us_per_delivery: Option<f64>,
}

/// The load generator's own CPU use during the window: when it nears the machine's capacity,
/// the client, not the server, may be what limited the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientStats {
    pub cpu_secs: Option<f64>,
    /// `cpu_secs` / (window × cores this process may run on, i.e. after `taskset`).
    pub cpu_share: Option<f64>,
}

/// Client CPU share above which the report warns that the load generator may be saturated.
const CLIENT_SATURATED: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// The run could not do what it set out to (connections refused, nothing published, ...).
    Failed,
    /// Messages were lost, duplicated or reordered.
    CorrectnessFailure,
}

/// Everything besides the merged tally that goes into a report.
pub struct Inputs<'a> {
    pub opts: &'a RunOptions,
    pub run_id: String,
    pub workers: usize,
    pub source_ips: usize,
    pub planned: usize,
    /// The scenario publishes (so nothing acked is a failure).
    pub publishes: bool,
    /// The scenario has a probe lane (the feed's chat probe), reported as `chat`.
    pub probe: bool,
    /// Planned publish rate over the scenario's own publishers (probe excluded), msg/s.
    pub target_rate: f64,
    pub drops: bool,
    pub wall_secs: f64,
    pub ramp_secs: f64,
    pub rss: (Option<Rss>, Option<Rss>),
    pub cpu: Option<(CpuTimes, CpuTimes)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn build(inputs: Inputs<'_>, tally: Tally) -> anyhow::Result<Report> {
        let opts = inputs.opts;
        let window = opts.duration.as_secs_f64();
        let per_sec = |n: u64| n as f64 / window;
        let pct = |e| Latency::try_from(e).map(|l| l.percentiles());
        let main = &tally.main;
        let c = main.counts;
        let chat = match inputs.probe {
            true => Some(Probe::build(&tally.probe, window)?),
            false => None,
        };
        let mix = match &opts.scenario {
            Scenario::Chat(p) => p.mix(),
            _ => Default::default(),
        };
        let lifecycle = match mix.lifecycle_every {
            0 => None,
            every => Some(LifecycleReport::build(every, &tally.mix, window)?),
        };
        let m = &tally.mix;
        let typing = mix.typing.then_some(TypingReport {
            sent: m.typing_sent,
            acked: m.typing_acked,
            refused: m.typing_refused,
            received: m.typing_received,
        });
        let recovery = inputs.drops.then(|| -> anyhow::Result<Recovery> {
            let per_subscriber = pct(&tally.recovery)?;
            Ok(Recovery {
                dropped: tally.dropped,
                unrecovered: tally.unrecovered,
                target_offset: tally.recovery_target,
                time_to_full_recovery_ms: (tally.unrecovered == 0 && per_subscriber.count > 0)
                    .then_some(per_subscriber.max),
                per_subscriber_ms: per_subscriber,
            })
        });
        let mut report = Report {
            scenario: opts.scenario.name().to_owned(),
            run_id: inputs.run_id,
            encoding: opts.encoding,
            workers: inputs.workers,
            source_ips: inputs.source_ips,
            duration_secs: window,
            warmup_secs: crate::scenarios::warmup(opts).as_secs_f64(),
            wall_secs: inputs.wall_secs,
            connections: Connections {
                planned: inputs.planned as u64,
                ok: tally.connect_ok,
                failed: tally.connect_failed,
                local_limit: tally.local_limit,
                ramp_secs: inputs.ramp_secs,
                connect_per_sec: tally.connect_ok as f64 / inputs.ramp_secs.max(1e-3),
                connect_latency_ms: pct(&tally.connect_latency)?,
            },
            published: main.acked,
            publish_attempts: main.sent,
            sent_per_sec: per_sec(main.sent_in_window),
            delivered: c.delivered,
            expected: c.expected,
            lost: c.lost,
            duplicates: c.duplicates,
            out_of_order: c.out_of_order,
            seq_regressions: c.seq_regressions,
            behind_at_end: tally.behind_at_end,
            disconnected_at_end: tally.disconnected_at_end,
            errors_total: tally.errors.values().sum(),
            errors: tally.errors,
            delivered_per_sec: per_sec(main.delivered_in_window),
            latency_ms: pct(&main.latency)?,
            ack_latency_ms: pct(&main.ack_latency)?,
            recovery: recovery.transpose()?,
            chat,
            lifecycle,
            typing,
            server: server_stats(
                inputs.rss,
                inputs.cpu,
                tally.connect_ok,
                main.delivered_in_window + tally.probe.delivered_in_window,
            ),
            client: client_stats(tally.client_cpu_secs, window),
            local_limit: tally.local_limit > 0,
            local_limit_detail: tally.local_limit_detail,
            notes: inputs.notes,
            verdict: Verdict::Ok,
            failures: Vec::new(),
        };
        let posts = matches!(opts.scenario, Scenario::Feed(_));
        report.add_notes(inputs.target_rate, posts);
        report.judge(opts.max_connect_failure_pct, inputs.publishes);
        Ok(report)
    }

    /// Explains numbers that are easy to misread.
    fn add_notes(&mut self, target_rate: f64, posts: bool) {
        if target_rate > 0.0 && self.sent_per_sec < 0.9 * target_rate {
            let why = match posts {
                // One post in flight at a time: slow 201s hold the next post back.
                true => {
                    "the author waits for each post's 201 before the next, so slow answers \
                         (ack latency above) lower the rate"
                }
                false => {
                    "the load generator fell behind its own schedule (CPU-bound or blocked \
                          on the socket)"
                }
            };
            self.notes.push(format!(
                "publishers sent {:.1} msg/s of the planned {target_rate:.1}: {why}",
                self.sent_per_sec
            ));
        }
        if self.behind_at_end > 0 {
            self.notes.push(format!(
                "{} subscriptions had not caught up when the drain deadline passed ({} connections \
                 were disconnected at the end); their missing offsets count as lost — rerun with a \
                 longer --drain to tell late from lost",
                self.behind_at_end, self.disconnected_at_end
            ));
        }
        if let Some(l) = self.lifecycle.as_ref().filter(|l| l.throttled > 0) {
            self.notes.push(format!(
                "{} lifecycle actions were throttled (429): the server's HTTP write rate \
                 (SWITCHBOARD_HTTP_WRITE_RATE, default 20/s per user) or the user's publish budget \
                 is below the planned rate; counted, not a failure (fewer --lifecycle-every or a \
                 lower --rate stays under it)",
                l.throttled
            ));
        }
        if let Some(t) = self.typing.as_ref().filter(|t| t.refused > 0) {
            self.notes.push(format!(
                "{} typing signals were refused (see errors typing_*): they are sent every 2.5 s, \
                 above the server's one per channel per 2 s",
                t.refused
            ));
        }
        if let Some(share) = self.client.cpu_share.filter(|&s| s > CLIENT_SATURATED) {
            self.notes.push(format!(
                "the load generator used {:.0}% of this machine's CPU during the window: it, not \
                 the server, may be the bottleneck (use a release build, fewer deliveries, or \
                 another machine)",
                share * 100.0
            ));
        }
    }

    /// Sets the verdict and the reasons for it.
    fn judge(&mut self, max_connect_failure_pct: f64, publishes: bool) {
        let mut failures = Vec::new();
        let attempts = self.connections.ok + self.connections.failed;
        let failed_pct = 100.0 * self.connections.failed as f64 / attempts.max(1) as f64;
        if failed_pct > max_connect_failure_pct {
            failures.push(format!(
                "{} of {attempts} connections failed ({failed_pct:.1}% > {max_connect_failure_pct}%)",
                self.connections.failed
            ));
        }
        if self.local_limit {
            failures.push("this machine's limits refused connections (see LOCAL LIMIT)".into());
        }
        if publishes && self.published == 0 {
            failures.push("no publish was acknowledged".into());
        }
        if self.chat.as_ref().is_some_and(|c| c.published == 0) {
            failures.push("no chat probe publish was acknowledged".into());
        }
        if let Some(l) = &self.lifecycle {
            if l.acked == 0 {
                failures.push("no lifecycle action was acknowledged".into());
            }
            let refused = l.refused_not_throttled();
            if refused + l.failed + l.unanswered > 0 {
                let statuses = l
                    .refused
                    .iter()
                    .filter(|(status, _)| *status != "429")
                    .map(|(status, n)| format!("{n}×{status}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                failures.push(format!(
                    "lifecycle actions went wrong: {refused} refused ({statuses}), {} unanswered \
                     requests, {} chains unfinished at the drain deadline",
                    l.failed, l.unanswered
                ));
            }
        }
        if let Some(t) = &self.typing {
            if t.acked == 0 {
                failures.push("no typing signal was acknowledged".into());
            } else if t.received == 0 {
                failures.push("typing signals were acknowledged but none was received".into());
            }
        }
        if let Some(r) = self.recovery.as_ref().filter(|r| r.unrecovered > 0) {
            failures.push(format!(
                "{} subscribers never recovered after the drop",
                r.unrecovered
            ));
        }
        self.verdict = if self.is_correctness_failure() {
            Verdict::CorrectnessFailure
        } else if failures.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Failed
        };
        self.failures = failures;
    }

    /// Messages were lost, duplicated or reordered (in the scenario's traffic or the probe's).
    pub fn is_correctness_failure(&self) -> bool {
        self.lost + self.duplicates + self.out_of_order + self.seq_regressions > 0
            || self.chat.as_ref().is_some_and(Probe::is_faulty)
            || self
                .lifecycle
                .as_ref()
                .is_some_and(LifecycleReport::is_faulty)
    }

    /// 0: ok; 1: the run failed (connections, local limits, nothing published); 2: messages
    /// were lost, duplicated or reordered.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Ok => 0,
            Verdict::Failed => 1,
            Verdict::CorrectnessFailure => 2,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }
}

fn client_stats(cpu_secs: Option<f64>, window_secs: f64) -> ClientStats {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    ClientStats {
        cpu_secs,
        cpu_share: cpu_secs.map(|c| c / (window_secs * cores)),
    }
}

fn server_stats(
    rss: (Option<Rss>, Option<Rss>),
    cpu: Option<(CpuTimes, CpuTimes)>,
    connections: u64,
    deliveries: u64,
) -> ServerStats {
    let mut s = ServerStats::default();
    if let (Some(before), Some(after)) = rss {
        s.rss_source = Some(after.source.to_owned());
        s.rss_bytes_before = Some(before.bytes);
        s.rss_bytes_after = Some(after.bytes);
        s.rss_per_connection_bytes = (connections > 0)
            .then(|| (after.bytes as f64 - before.bytes as f64) / connections as f64);
    }
    if let Some((start, end)) = cpu {
        let user = end.user_secs - start.user_secs;
        let sys = end.sys_secs - start.sys_secs;
        s.cpu_user_secs = Some(user);
        s.cpu_sys_secs = Some(sys);
        if deliveries > 0 {
            s.cpu_user_us_per_delivery = Some(user * 1e6 / deliveries as f64);
            s.cpu_sys_us_per_delivery = Some(sys * 1e6 / deliveries as f64);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Encoded;
    use crate::options::FanoutParams;
    use crate::tracker::Counts;

    fn report(counts: Counts, acked: u64) -> Report {
        report_with(counts, acked, None)
    }

    /// With `probe`: a feed-like run whose chat probe saw these counts.
    fn report_with(counts: Counts, acked: u64, probe: Option<Counts>) -> Report {
        let fanout = Scenario::Fanout(FanoutParams::default());
        report_for(fanout, counts, acked, probe, MixTally::default())
    }

    fn report_for(
        scenario: Scenario,
        counts: Counts,
        acked: u64,
        probe: Option<Counts>,
        mix: MixTally,
    ) -> Report {
        let opts = RunOptions::new("ws://127.0.0.1:1/ws", "s", scenario);
        let mut latency = Latency::new();
        latency.record_us(1500);
        let tally = Tally {
            connect_ok: 10,
            main: LaneTally {
                acked,
                counts,
                delivered_in_window: 80,
                latency: Encoded::from(&latency),
                ..LaneTally::default()
            },
            probe: LaneTally {
                acked: 4,
                counts: probe.unwrap_or_default(),
                ..LaneTally::default()
            },
            mix,
            ..Tally::default()
        };
        let inputs = Inputs {
            opts: &opts,
            run_id: "r".into(),
            workers: 1,
            source_ips: 0,
            planned: 10,
            publishes: true,
            probe: probe.is_some(),
            target_rate: 0.0,
            drops: false,
            wall_secs: 12.0,
            ramp_secs: 1.0,
            rss: (
                Some(Rss {
                    bytes: 1000,
                    source: "proc",
                }),
                Some(Rss {
                    bytes: 3000,
                    source: "proc",
                }),
            ),
            cpu: Some((
                CpuTimes::default(),
                CpuTimes {
                    user_secs: 0.8,
                    sys_secs: 0.4,
                },
            )),
            notes: vec![],
        };
        Report::build(inputs, tally).unwrap()
    }

    #[test]
    fn json_has_the_contract_keys() {
        let clean = Counts {
            delivered: 100,
            expected: 100,
            ..Counts::default()
        };
        let v = serde_json::to_value(report(clean, 10)).unwrap();
        for key in [
            "scenario",
            "published",
            "delivered",
            "expected",
            "lost",
            "duplicates",
            "out_of_order",
            "errors",
            "delivered_per_sec",
            "ack_latency_ms",
            "duration_secs",
            "server",
            "local_limit",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["scenario"], "fanout");
        assert_eq!(v["connections"]["ok"], 10);
        assert_eq!(v["connections"]["failed"], 0);
        assert!(v["connections"]["local_limit"].is_u64());
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_ms"][key].is_f64(), "latency_ms.{key}: {v}");
        }
        assert!((v["latency_ms"]["p50"].as_f64().unwrap() - 1.5).abs() < 0.01);
        assert!(v["errors"].is_object());
        assert_eq!(v["delivered_per_sec"], 10.0); // 80 in the default 8 s window
        for key in [
            "rss_bytes_before",
            "rss_bytes_after",
            "rss_per_connection_bytes",
            "cpu_user_secs",
            "cpu_sys_secs",
            "cpu_user_us_per_delivery",
            "cpu_sys_us_per_delivery",
        ] {
            assert!(v["server"].get(key).is_some(), "server.{key}");
        }
        assert_eq!(v["server"]["rss_per_connection_bytes"], 200.0);
        assert_eq!(v["server"]["cpu_user_us_per_delivery"], 10_000.0);
        assert_eq!(v["verdict"], "ok");
    }

    #[test]
    fn verdicts_map_to_exit_codes() {
        let clean = Counts {
            delivered: 100,
            expected: 100,
            ..Counts::default()
        };
        assert_eq!(report(clean, 10).exit_code(), 0);
        let lossy = Counts { lost: 3, ..clean };
        let r = report(lossy, 10);
        assert_eq!((r.verdict, r.exit_code()), (Verdict::CorrectnessFailure, 2));
        let r = report(clean, 0);
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Failed, 1));
    }

    #[test]
    fn the_chat_probe_is_reported_apart_and_judged_too() {
        let clean = Counts {
            delivered: 100,
            expected: 100,
            ..Counts::default()
        };
        let probe = Counts {
            delivered: 4,
            expected: 4,
            ..Counts::default()
        };
        let r = report_with(clean, 10, Some(probe));
        let chat = r.chat.as_ref().expect("a chat section");
        assert_eq!((chat.published, chat.delivered, chat.expected), (4, 4, 4));
        // The top-level numbers are the main lane's alone.
        assert_eq!((r.published, r.delivered, r.expected), (10, 100, 100));
        assert_eq!(r.exit_code(), 0);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["chat"]["published"], 4);
        assert!(v["chat"]["latency_ms"]["p99"].is_f64());
        // Without a probe there is no `chat` key at all.
        let v = serde_json::to_value(report(clean, 10)).unwrap();
        assert!(v.get("chat").is_none());
        // A lost probe message fails the run like any other.
        let lossy = Counts { lost: 1, ..probe };
        let r = report_with(clean, 10, Some(lossy));
        assert_eq!((r.verdict, r.exit_code()), (Verdict::CorrectnessFailure, 2));
        assert!(summary_mentions(&r, "chat"));
    }

    /// A chat run with every 4th ack followed by a chain, and typing.
    fn mixed(edit: ActionTally, mix: MixTally) -> Report {
        let chat = Scenario::Chat(crate::options::ChatParams {
            lifecycle_every: 4,
            typing: true,
            ..Default::default()
        });
        let clean = Counts {
            delivered: 100,
            expected: 100,
            ..Counts::default()
        };
        let mix = MixTally {
            actions: BTreeMap::from([("edit".to_owned(), edit)]),
            delivered: BTreeMap::from([("edit".to_owned(), 30)]),
            verified: 30,
            typing_sent: 5,
            typing_acked: 5,
            typing_received: 25,
            ..mix
        };
        report_for(chat, clean, 10, None, mix)
    }

    #[test]
    fn lifecycle_refusals_fail_the_run_unless_throttled() {
        let ok = ActionTally {
            sent: 10,
            stored: 10,
            ..Default::default()
        };
        let r = mixed(ok.clone(), MixTally::default());
        assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.failures);
        let l = r.lifecycle.as_ref().expect("a lifecycle section");
        assert_eq!((l.every, l.sent, l.acked, l.stored), (4, 10, 10, 10));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["lifecycle"]["actions"]["edit"]["stored"], 10);
        assert_eq!(v["lifecycle"]["delivered"]["edit"], 30);
        assert_eq!(v["typing"]["received"], 25);
        assert!(summary_mentions(&r, "lifecycle    every 4 acks"));
        assert!(summary_mentions(&r, "typing       5 sent, 5 acked"));
        // Without the flags there are no such keys (a plain chat reports as before).
        let plain = serde_json::to_value(report(Counts::default(), 10)).unwrap();
        assert!(plain.get("lifecycle").is_none() && plain.get("typing").is_none());

        // Throttled: counted and noted, not a failure.
        let throttled = ActionTally {
            sent: 12,
            refused: BTreeMap::from([("429".to_owned(), 2)]),
            ..ok.clone()
        };
        let r = mixed(throttled, MixTally::default());
        assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.failures);
        assert_eq!(r.lifecycle.as_ref().unwrap().throttled, 2);
        assert!(r.notes.iter().any(|n| n.contains("throttled")));

        // Any other refusal, or no answer, fails it.
        let forbidden = ActionTally {
            sent: 11,
            refused: BTreeMap::from([("403".to_owned(), 1)]),
            ..ok.clone()
        };
        let r = mixed(forbidden, MixTally::default());
        assert_eq!((r.verdict, r.exit_code()), (Verdict::Failed, 1));
        assert!(r.failures[0].contains("1×403"), "{:?}", r.failures);
        let unanswered = MixTally {
            unanswered: 1,
            ..MixTally::default()
        };
        assert_eq!(mixed(ok.clone(), unanswered).verdict, Verdict::Failed);

        // A change that is not what its answer said, or a message that is no change at all, is
        // a correctness failure.
        let wrong = MixTally {
            mismatched: 1,
            ..MixTally::default()
        };
        let r = mixed(ok.clone(), wrong);
        assert_eq!((r.verdict, r.exit_code()), (Verdict::CorrectnessFailure, 2));
        assert!(summary_mentions(&r, "lifecycle messages"));

        // Typing signals acknowledged but never fanned out.
        let mut r = mixed(ok, MixTally::default());
        r.typing.as_mut().unwrap().received = 0;
        r.judge(1.0, true);
        assert_eq!(r.verdict, Verdict::Failed);
    }

    fn summary_mentions(r: &Report, what: &str) -> bool {
        crate::summary::render(r).contains(what)
    }
}
