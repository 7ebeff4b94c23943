//! The fan-out worker: one per node, writing posts into followers' feeds a chunk at a time.
//!
//! Pending fan-outs take turns, one chunk each, so a small account's post is not queued behind a
//! 100k-follower one: its wait is bounded by one chunk per other active fan-out. Each chunk is
//! its own transaction, so regular publishes interleave with it at storage level too.
//!
//! Fan-outs survive their node: progress is committed with every chunk under a lease, and every
//! node regularly takes over fan-outs whose lease ran out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{feed_item, LEASE};
use crate::metrics;
use crate::store::messages::NewMessage;
use crate::store::writer::{CommitSink, MAX_BATCH_BYTES};
use crate::store::{now_ms, Fanout, Step, Store};

/// How often a node looks for fan-outs another node abandoned.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// Fan-outs taken over per scan.
const CLAIM_LIMIT: u32 = 64;
/// Pause after a storage error before the fan-out is retried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Worker {
    pub store: Store,
    /// Where committed feed messages go for live delivery (the bus, as for any publish).
    pub sink: CommitSink,
    pub node: Arc<str>,
    /// Followers per transaction (`SWITCHBOARD_FEED_CHUNK`).
    pub chunk: u32,
    pub inbox: mpsc::UnboundedReceiver<Fanout>,
    pub shutdown: CancellationToken,
}

/// A fan-out in progress, with its feed item encoded once.
struct Active {
    fanout: Fanout,
    item: Box<serde_json::value::RawValue>,
    started: Instant,
}

impl Worker {
    pub async fn run(mut self) {
        let mut active: VecDeque<Active> = VecDeque::new();
        let mut next_scan = Instant::now();
        loop {
            while let Ok(fanout) = self.inbox.try_recv() {
                active.push_back(Active::new(fanout));
            }
            if Instant::now() >= next_scan {
                next_scan = Instant::now() + SCAN_EVERY;
                self.claim_abandoned(&mut active).await;
            }
            metrics::FEED_FANOUT_ACTIVE.set(active.len() as f64);
            let Some(mut current) = active.pop_front() else {
                let wait = next_scan.saturating_duration_since(Instant::now());
                tokio::select! {
                    next = self.inbox.recv() => match next {
                        Some(fanout) => active.push_back(Active::new(fanout)),
                        None => break,
                    },
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.shutdown.cancelled() => break,
                }
                continue;
            };
            if self.shutdown.is_cancelled() {
                break;
            }
            match self.step(&mut current).await {
                Ok(true) => {
                    metrics::FEED_FANOUT_DURATION.record(current.started.elapsed());
                }
                Ok(false) => active.push_back(current),
                Err(()) => {
                    active.push_back(current);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = self.shutdown.cancelled() => break,
                    }
                }
            }
        }
        // Let another node (or this one, restarted) resume at once rather than after the lease.
        if let Err(e) = self.store.release_fanouts(&self.node).await {
            tracing::warn!(error = %e, "could not release feed fan-out leases");
        }
    }

    /// One chunk of `current`; true when its fan-out is finished (or was taken over).
    async fn step(&self, current: &mut Active) -> Result<bool, ()> {
        // Keep a chunk's payload within what one publish batch may carry.
        let per_item = current.item.get().len().max(1);
        let chunk = self.chunk.min((MAX_BATCH_BYTES / per_item).max(1) as u32);
        let (id, author, ts) = {
            let post = &current.fanout.post;
            (post.id.clone(), post.author.clone(), post.ts)
        };
        let item = &current.item;
        let lease_until = now_ms() + LEASE.as_millis() as i64;
        let feed_message = |recipient: &str| NewMessage {
            channel: format!("feed:{recipient}").into(),
            id: id.clone(),
            from: author.clone(),
            ts_ms: ts,
            data: item.clone(),
            published_at: None,
            notification: None,
        };
        let result = self
            .store
            .fanout_step(
                &mut current.fanout,
                &self.node,
                lease_until,
                chunk,
                feed_message,
            )
            .await;
        match result {
            Ok(Step::Stored { messages, done }) => {
                metrics::FEED_FANOUT_MESSAGES.increment(messages.len() as u64);
                metrics::MESSAGES_IN.increment(messages.len() as u64);
                if !messages.is_empty() {
                    (self.sink)(messages);
                }
                Ok(done)
            }
            Ok(Step::Lost) => {
                tracing::warn!(post = %current.fanout.post.id, "feed fan-out was taken over by another node");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, post = %current.fanout.post.id, "feed fan-out step failed; retrying");
                Err(())
            }
        }
    }

    async fn claim_abandoned(&self, active: &mut VecDeque<Active>) {
        let now = now_ms();
        let lease_until = now + LEASE.as_millis() as i64;
        match self
            .store
            .claim_fanouts(&self.node, now, lease_until, CLAIM_LIMIT)
            .await
        {
            Ok(claimed) => {
                for fanout in claimed {
                    tracing::info!(post = %fanout.post.id, after = fanout.after, "resuming an abandoned feed fan-out");
                    active.push_back(Active::new(fanout));
                }
            }
            Err(e) => tracing::warn!(error = %e, "scanning for abandoned feed fan-outs failed"),
        }
    }
}

impl Active {
    fn new(fanout: Fanout) -> Active {
        Active {
            item: feed_item(&fanout.post),
            fanout,
            started: Instant::now(),
        }
    }
}
