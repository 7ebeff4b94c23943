//! One engine: holds this process's share of a run's connections and drives them through the
//! timeline — ramp, go, (drop), stop publishing, final offsets, finish — talking to the
//! coordinator through [`crate::link`]. Every wait is bounded, so an engine always ends.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_protocol::{ClientFrame, ServerFrame};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};

use crate::client::{Dialer, Event};
use crate::control::{Control, DropOrder, Finish};
use crate::latency::Window;
use crate::link::{EngineSpec, ToCoord, ToEngine};
use crate::payload::unix_nanos;
use crate::peer::{self, PeerEnv, CONNECT_TIMEOUT};
use crate::server::{http_base, sample_cpu};
use crate::stats::{Stats, Tally};
use crate::tokens::Minter;
use crate::{poster, scenarios};

/// Handshakes in flight per engine; see [`PeerEnv::handshakes`]. Well under the server's accept
/// backlog (1024 by default).
const HANDSHAKES_IN_FLIGHT: usize = 256;
/// How often live counters go to the coordinator.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Extra time allowed beyond every planned phase before an engine gives up on a straggler.
const SLACK: Duration = Duration::from_secs(5);

pub async fn run(spec: EngineSpec, tx: UnboundedSender<ToCoord>, rx: UnboundedReceiver<ToEngine>) {
    let msg = match drive(spec, &tx, rx).await {
        Ok(tally) => ToCoord::Done(Box::new(tally)),
        Err(e) => ToCoord::Failed(format!("{e:#}")),
    };
    let _ = tx.send(msg);
}

async fn drive(
    spec: EngineSpec,
    tx: &UnboundedSender<ToCoord>,
    mut rx: UnboundedReceiver<ToEngine>,
) -> anyhow::Result<Tally> {
    let opts = &spec.opts;
    let all = scenarios::plan(opts, &spec.run_id, &spec.prepared)?;
    let total = all.len();
    let plans: Vec<_> = all
        .into_iter()
        .filter(|p| p.index as usize % spec.workers == spec.worker)
        .collect();
    let minter = Minter::new(&opts.secret, &spec.run_id);
    let dialer = Dialer::new(
        &opts.urls,
        spec.source_ips,
        opts.encoding.protocol(),
        minter,
    )
    .await?;
    let stats = Arc::new(Stats::new());
    let env = Arc::new(PeerEnv {
        dialer,
        stats: stats.clone(),
        run_id: spec.run_id.clone(),
        payload_bytes: opts.payload_bytes,
        handshakes: Semaphore::new(HANDSHAKES_IN_FLIGHT),
        drain: opts.drain,
        http: poster::client()?,
        http_base: http_base(&opts.urls[0])?,
    });
    let (control, control_rx) = watch::channel(Control::default());
    let progress = tokio::spawn({
        let (stats, tx) = (stats.clone(), tx.clone());
        async move {
            loop {
                sleep(PROGRESS_EVERY).await;
                if tx.send(ToCoord::Progress(stats.live())).is_err() {
                    return;
                }
            }
        }
    });

    // Ramp: open this engine's share at its share of the rate.
    let rate = scenarios::ramp(opts).rate(total) / spec.workers as f64;
    let count = plans.len() as u64;
    let publishers = plans.iter().filter(|p| p.publish.is_some()).count() as u64;
    let drop_channel = plans
        .iter()
        .find(|p| p.drops)
        .and_then(|p| p.subscribe.first().cloned());
    let ramp_start = Instant::now();
    let mut peers = JoinSet::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let due = ramp_start + Duration::from_secs_f64(i as f64 / rate);
        if due > Instant::now() {
            sleep_until(due).await;
        }
        peers.spawn(peer::run(plan, env.clone(), control_rx.clone()));
    }
    // Every attempt ends within the connect timeout once it holds a handshake slot.
    let ramp_limit =
        Instant::now() + CONNECT_TIMEOUT * (count as u32 / HANDSHAKES_IN_FLIGHT as u32 + 1) + SLACK;
    while stats.connect_ok.load(Relaxed) + stats.connect_failed.load(Relaxed) < count
        && Instant::now() < ramp_limit
    {
        sleep(Duration::from_millis(20)).await;
    }
    let ramp_secs = ramp_start.elapsed().as_secs_f64();
    let _ = tx.send(ToCoord::Ready(stats.live()));

    let Some(ToEngine::Go { start_unix_ns }) = rx.recv().await else {
        anyhow::bail!("coordinator went away before go");
    };
    let start = instant_at(start_unix_ns);
    let warmup = scenarios::warmup(opts);
    let window_start = start_unix_ns + warmup.as_nanos() as u64;
    stats.set_window(Window {
        start_ns: window_start,
        end_ns: window_start + opts.duration.as_nanos() as u64,
    });
    let own_cpu = tokio::spawn(sample_cpu(
        Some(std::process::id()),
        start + warmup,
        opts.duration,
    ));
    sleep_until(start).await;
    control.send_modify(|c| c.publish_from = Some(start));
    if let (Some(after), Some(channel)) = (scenarios::drop_after(opts), drop_channel) {
        sleep_until(start + after).await;
        let index = (total + spec.worker) as u64;
        let probed = probe_last_offset(&env.dialer, index, &channel).await;
        let acked = stats.max_acked().get(&channel).copied();
        let target = probed.max(acked);
        if let Some(t) = target {
            stats.set_recovery_target(t);
        }
        control.send_modify(|c| {
            c.drop = Some(DropOrder {
                at: Instant::now(),
                target,
            })
        });
    }
    sleep_until(start + warmup + opts.duration).await;
    control.send_modify(|c| c.publish_stopped = true);

    let acks_limit = Instant::now() + opts.drain + SLACK;
    while stats.publishers_done.load(Relaxed) < publishers && Instant::now() < acks_limit {
        sleep(Duration::from_millis(10)).await;
    }
    let _ = tx.send(ToCoord::Acked(stats.max_acked()));
    let Some(ToEngine::Finals(finals)) = rx.recv().await else {
        anyhow::bail!("coordinator went away before sending final offsets");
    };
    let deadline = Instant::now() + opts.drain;
    control.send_modify(|c| {
        c.finish = Some(Finish {
            finals: Arc::new(finals),
            deadline,
        })
    });
    let join_limit = deadline + SLACK;
    while let Ok(Some(_)) = timeout_at(join_limit, peers.join_next()).await {}
    if !peers.is_empty() {
        stats.errors("connection_task_stuck", peers.len() as u64);
        peers.abort_all();
    }
    progress.abort();
    let client_cpu = own_cpu
        .await
        .ok()
        .flatten()
        .map(|(a, b)| (b.user_secs + b.sys_secs) - (a.user_secs + a.sys_secs));
    Ok(stats.tally(ramp_secs, client_cpu))
}

/// The tokio instant matching a Unix time (now, if it is already past).
fn instant_at(unix_ns: u64) -> Instant {
    Instant::now() + Duration::from_nanos(unix_ns.saturating_sub(unix_nanos()))
}

/// The channel's last offset right now, from a subscribe ack on a short-lived connection.
async fn probe_last_offset(dialer: &Dialer, index: u64, channel: &str) -> Option<u64> {
    let attempt = async {
        let mut conn = dialer
            .dial(index)
            .await
            .map_err(|e| anyhow::anyhow!(e.detail))?;
        let id = conn.next_id();
        conn.send(&ClientFrame::Subscribe {
            id,
            channel: channel.to_owned(),
            since: None,
        })
        .await?;
        loop {
            match conn.next().await {
                Event::Frame(ServerFrame::Ack(a)) if a.id == id => {
                    conn.close().await;
                    return a.offset.context("subscribe ack without offset");
                }
                Event::Closed(_) => anyhow::bail!("probe connection closed"),
                _ => {}
            }
        }
    };
    timeout(CONNECT_TIMEOUT, attempt).await.ok()?.ok()
}

/// Highest offset per channel over several engines' reports.
pub fn merge_finals(all: &[BTreeMap<String, u64>]) -> BTreeMap<String, u64> {
    let mut merged = BTreeMap::new();
    for map in all {
        for (channel, &offset) in map {
            let max = merged.entry(channel.clone()).or_insert(0);
            *max = offset.max(*max);
        }
    }
    merged
}
