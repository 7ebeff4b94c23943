//! The nemesis: a schedule of faults drawn from a seed (the same seed, the same schedule), and
//! their injection into the running cluster.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::Cluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "node", rename_all = "snake_case")]
pub enum Fault {
    /// `kill -9` of a node, restarted after the hold.
    Kill(usize),
    /// SIGTERM (the drain: `reconnect` frames, close 1001), restarted after the hold.
    Drain(usize),
    /// SIGSTOP for the hold, then SIGCONT: a long GC pause or a VM stall.
    Pause(usize),
    /// One node cut off from PostgreSQL and Redis (a black hole) for the hold.
    Partition(usize),
    /// Redis killed, restarted after the hold.
    RedisRestart,
    /// PostgreSQL stopped (`-m immediate`), started after the hold.
    PostgresRestart,
    /// Every Redis pub/sub connection dropped.
    PubsubKill,
}

impl Fault {
    const KINDS: usize = 7;

    fn of_kind(kind: usize, node: usize) -> Fault {
        match kind % Fault::KINDS {
            0 => Fault::Kill(node),
            1 => Fault::Pause(node),
            2 => Fault::RedisRestart,
            3 => Fault::Partition(node),
            4 => Fault::Drain(node),
            5 => Fault::PostgresRestart,
            _ => Fault::PubsubKill,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// From the start of the run.
    #[serde(rename = "at_ms", serialize_with = "millis")]
    pub at: Duration,
    pub fault: Fault,
    #[serde(rename = "hold_ms", serialize_with = "millis")]
    pub hold: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// `count` faults over `span` (after a warm-up), each kind before any repeats (in an order the
/// seed shuffles), targets and holds drawn from the seed. Holds are 1–4 s; pauses 3–7 s, longer
/// than the nodes' idle-in-transaction timeout, so a pause inside a commit is what it tests.
pub fn schedule(
    seed: u64,
    nodes: usize,
    warmup: Duration,
    span: Duration,
    count: usize,
) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds: Vec<usize> = Vec::with_capacity(count);
    while kinds.len() < count {
        let mut round: Vec<usize> = (0..Fault::KINDS).collect();
        round.shuffle(&mut rng);
        kinds.extend(round);
    }
    kinds.truncate(count);
    let slot = span / count.max(1) as u32;
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let fault = Fault::of_kind(kind, rng.gen_range(0..nodes.max(1)));
            let hold = match fault {
                Fault::Pause(_) => Duration::from_millis(rng.gen_range(3_000..7_000)),
                Fault::PubsubKill => Duration::ZERO,
                _ => Duration::from_millis(rng.gen_range(1_000..4_000)),
            };
            // Somewhere in the first half of the slot, so the fault heals within it.
            let jitter =
                Duration::from_millis(rng.gen_range(0..(slot.as_millis() as u64 / 4).max(1)));
            Planned {
                at: warmup + slot * i as u32 + jitter,
                fault,
                hold,
            }
        })
        .collect()
}

/// Injects `fault`, holds it, heals it.
pub async fn inject(cluster: &mut Cluster, fault: Fault, hold: Duration) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(i) => {
            cluster.nodes[i].kill();
            tokio::time::sleep(hold).await;
            cluster.nodes[i].restart().await?;
        }
        Fault::Drain(i) => {
            if !cluster.nodes[i].drain(Duration::from_secs(15)).await? {
                // Killed after all: a drain that hangs is a finding, not a drain.
                cluster.nodes[i].restart().await?;
                anyhow::bail!("node {i} did not finish its drain within 15 s");
            }
            tokio::time::sleep(hold).await;
            cluster.nodes[i].restart().await?;
        }
        Fault::Pause(i) => {
            cluster.nodes[i].signal("STOP")?;
            tokio::time::sleep(hold).await;
            cluster.nodes[i].signal("CONT")?;
        }
        Fault::Partition(i) => {
            cluster.nodes[i].pg_proxy.partition();
            cluster.nodes[i].redis_proxy.partition();
            tokio::time::sleep(hold).await;
            cluster.nodes[i].pg_proxy.heal();
            cluster.nodes[i].redis_proxy.heal();
        }
        Fault::RedisRestart => {
            cluster.redis.stop();
            tokio::time::sleep(hold).await;
            cluster.redis.resume()?;
        }
        Fault::PostgresRestart => {
            cluster.postgres.stop()?;
            tokio::time::sleep(hold).await;
            cluster.postgres.resume()?;
        }
        Fault::PubsubKill => cluster.redis.kill_pubsub_clients()?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_a_schedule_and_every_kind_comes_before_repeats() {
        let a = schedule(7, 3, Duration::from_secs(5), Duration::from_secs(120), 10);
        let b = schedule(7, 3, Duration::from_secs(5), Duration::from_secs(120), 10);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let c = schedule(8, 3, Duration::from_secs(5), Duration::from_secs(120), 10);
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
        let first: std::collections::HashSet<_> = a[..Fault::KINDS]
            .iter()
            .map(|p| std::mem::discriminant(&p.fault))
            .collect();
        assert_eq!(first.len(), Fault::KINDS);
        assert!(a.windows(2).all(|w| w[0].at < w[1].at), "in time order");
    }
}
