//! The top of a run: prepare the server for the scenario (the feed's author and follows), plan
//! it, start the engines (in this process, or worker processes for big runs), step them through
//! the timeline together, sample the server around the measured window, and merge the engines'
//! tallies into one [`Report`].

use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::time::{timeout_at, Instant};

use crate::engine::merge_finals;
use crate::link::{EngineSpec, Links, ToCoord, ToEngine};
use crate::options::RunOptions;
use crate::payload::unix_nanos;
use crate::peer::CONNECT_TIMEOUT;
use crate::progress::Progress;
use crate::report::{Inputs, Report};
use crate::server::{sample_cpu, ServerWatch};
use crate::stats::{Lane, Tally};
use crate::{scenarios, workers};

/// Delay between announcing "go" and the start instant, so every worker process has the
/// message before the moment it names.
const GO_DELAY: Duration = Duration::from_millis(200);
/// Extra patience per phase beyond what the engines themselves allow.
const SLACK: Duration = Duration::from_secs(30);

/// Runs one load test to completion and reports on it. Every phase is bounded in time.
pub async fn run(opts: RunOptions) -> anyhow::Result<Report> {
    opts.validate()?;
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    // The wall time includes the scenario's setup; the ramp is timed from the engines' start.
    let started = Instant::now();
    let prepared = scenarios::prepare(&opts, &run_id).await?;
    let plans = scenarios::plan(&opts, &run_id, &prepared)?;
    let planned = plans.len();
    anyhow::ensure!(planned > 0, "the scenario opens no connections");
    let publishes = plans.iter().any(|p| p.publish.is_some());
    let probe = plans.iter().any(|p| p.lane == Lane::Probe);
    let target_rate = plans
        .iter()
        .filter(|p| p.lane == Lane::Main)
        .filter_map(|p| p.publish.as_ref())
        .map(|p| p.rate)
        .sum();
    let drops = plans.iter().any(|p| p.drops);
    let mut notes = Vec::new();
    if let Some(rate) = scenarios::over_rate_limit(&plans) {
        notes.push(format!(
            "a connection publishes {rate:.0} msg/s, above the server's default limit of 200/s: \
             expect rate_limited errors (add publishers or raise SWITCHBOARD_PUBLISH_RATE)"
        ));
    }
    drop(plans);
    let workers = opts.resolve_workers(planned);
    let source_ips = opts.resolve_source_ips(planned);
    if source_ips > 0 && opts.source_ips == 0 {
        notes.push(format!(
            "spread sockets over {source_ips} source addresses (127.0.0.2..)"
        ));
    }

    let server = ServerWatch::new(&opts.urls[0], opts.server_pid)?;
    let rss_before = server.rss().await;
    let mut specs: Vec<EngineSpec> = (0..workers)
        .map(|worker| EngineSpec {
            opts: opts.clone(),
            run_id: run_id.clone(),
            worker,
            workers,
            source_ips,
            prepared: prepared.clone(),
        })
        .collect();
    let wall = Instant::now();
    let mut links = if workers == 1 {
        Links::in_process(specs.pop().expect("one spec"))
    } else {
        let program = match &opts.worker_program {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        workers::spawn(&program, specs)?
    };
    let mut progress = Progress::new(opts.progress, planned, workers);

    let rate = scenarios::ramp(&opts).rate(planned).max(1e-3);
    let ramp_limit = Duration::from_secs_f64((planned as f64 / rate).min(86_400.0))
        + CONNECT_TIMEOUT * (planned as u32 / 256 + 1)
        + SLACK;
    let result = async {
        collect(&mut links, &mut progress, ramp_limit, "connections", |m| {
            matches!(m, ToCoord::Ready(_)).then_some(())
        })
        .await?;
        let ramp_secs = wall.elapsed().as_secs_f64();
        progress.phase("running");
        let rss_after = server.rss().await;

        let start_unix_ns = unix_nanos() + GO_DELAY.as_nanos() as u64;
        links.broadcast(&ToEngine::Go { start_unix_ns });
        let window_start = Instant::now() + GO_DELAY + scenarios::warmup(&opts);
        let cpu = tokio::spawn(sample_cpu(opts.server_pid, window_start, opts.duration));
        let publishing = GO_DELAY + opts.warmup + opts.duration + opts.drain + SLACK;
        let acked = collect(
            &mut links,
            &mut progress,
            publishing,
            "publish acks",
            |m| match m {
                ToCoord::Acked(map) => Some(map),
                _ => None,
            },
        )
        .await?;
        links.broadcast(&ToEngine::Finals(merge_finals(&acked)));
        progress.phase("draining");
        let tallies = collect(
            &mut links,
            &mut progress,
            opts.drain + SLACK,
            "results",
            |m| match m {
                ToCoord::Done(t) => Some(*t),
                _ => None,
            },
        )
        .await?;
        let mut tally = Tally::default();
        for t in tallies {
            tally.merge(t)?;
        }
        let cpu = cpu.await.ok().flatten();
        Ok::<_, anyhow::Error>((tally, ramp_secs, rss_after, cpu))
    }
    .await;
    progress.finish();
    let (tally, ramp_secs, rss_after, cpu) = result?;
    let inputs = Inputs {
        opts: &opts,
        run_id,
        workers,
        source_ips,
        planned,
        publishes,
        probe,
        target_rate,
        drops,
        wall_secs: started.elapsed().as_secs_f64(),
        ramp_secs,
        rss: (rss_before, rss_after),
        cpu,
        notes,
    };
    Report::build(inputs, tally)
}

/// Waits for one message of a kind from every engine, relaying progress meanwhile.
async fn collect<T>(
    links: &mut Links,
    progress: &mut Progress,
    within: Duration,
    what: &str,
    mut pick: impl FnMut(ToCoord) -> Option<T>,
) -> anyhow::Result<Vec<T>> {
    let deadline = Instant::now() + within;
    let mut got: Vec<Option<T>> = (0..links.len()).map(|_| None).collect();
    while got.iter().any(Option::is_none) {
        let (k, msg) = timeout_at(deadline, links.events.recv())
            .await
            .map_err(|_| anyhow!("timed out after {within:?} waiting for {what}"))?
            .ok_or_else(|| anyhow!("engines went away while waiting for {what}"))?;
        match msg {
            ToCoord::Progress(live) | ToCoord::Ready(live) if got[k].is_some() => {
                progress.update(k, live)
            }
            ToCoord::Progress(live) => progress.update(k, live),
            ToCoord::Failed(e) => bail!("engine {k} failed: {e}"),
            other => {
                if let ToCoord::Ready(live) = &other {
                    progress.update(k, *live);
                }
                if let Some(t) = pick(other) {
                    got[k] = Some(t);
                }
            }
        }
    }
    Ok(got.into_iter().flatten().collect())
}

/// Eight hex digits: short enough for channel names, unique enough between runs.
fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
