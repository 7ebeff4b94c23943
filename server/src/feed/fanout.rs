//! The fan-out worker: one per node, writing posts into followers' feeds a chunk at a time.
//!
//! Pending fan-outs take turns, one chunk each, so a small account's post is not queued behind a
//! 100k-follower one: its wait is bounded by one chunk per other active fan-out. One author's
//! posts fan out one after the other, so they reach each feed in post order. Each chunk is its
//! own transaction, so regular publishes interleave with it at storage level too.
//!
//! Fan-outs survive their node: progress is committed with every chunk under a lease, and every
//! node regularly takes over fan-outs whose lease ran out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::ChannelKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{feed_item, LEASE};
use crate::metrics;
use crate::node::NodeId;
use crate::pipeline::commit::MAX_BATCH_BYTES;
use crate::pipeline::AfterCommit;
use crate::store::messages::NewMessage;
use crate::store::{now_ms, Fanout, Step, Store};

/// How often a node looks for fan-outs another node abandoned.
const SCAN_EVERY: Duration = Duration::from_secs(5);
/// Fan-outs taken over per scan.
const CLAIM_LIMIT: u32 = 64;
/// Fan-outs one node holds at once (queued posts carry their data and encoded feed item, up to
/// about 130 KiB each). Beyond it new posts stay in storage with their lease and are taken over
/// by the abandoned-fan-out scan (this node's or another's) once the lease runs out.
const MAX_PENDING: usize = 256;
/// Pause after a storage error before the fan-out is retried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(crate) struct Worker {
    pub store: Store,
    /// Where committed feed messages go for live delivery, as any committed batch does.
    pub after: Arc<AfterCommit>,
    pub node: NodeId,
    /// Followers per transaction (`SWITCHBOARD_FEED_CHUNK`).
    pub chunk: u32,
    pub inbox: mpsc::Receiver<Fanout>,
    pub shutdown: CancellationToken,
}

/// A fan-out in progress, with its feed item encoded once.
struct Active {
    fanout: Fanout,
    item: Box<serde_json::value::RawValue>,
    started: Instant,
}

impl Worker {
    /// Runs until shutdown. Its queue lives only in this run: if a run ends by a panic (and is
    /// started again), the fan-outs it held resume from storage once their leases run out.
    pub(crate) async fn run(&mut self) {
        let mut queue = Queue::default();
        let mut next_scan = Instant::now();
        while !self.shutdown.is_cancelled() {
            while queue.has_room() {
                match self.inbox.try_recv() {
                    Ok(fanout) => queue.add(fanout),
                    Err(_) => break,
                }
            }
            if Instant::now() >= next_scan {
                next_scan = Instant::now() + SCAN_EVERY;
                self.claim_abandoned(&mut queue).await;
            }
            self.give_up(&mut queue).await;
            metrics::FEED_FANOUT_ACTIVE.set(queue.len() as f64);
            let Some(mut current) = queue.next() else {
                let wait = next_scan.saturating_duration_since(Instant::now());
                tokio::select! {
                    next = self.inbox.recv() => match next {
                        Some(fanout) => queue.add(fanout),
                        None => break,
                    },
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.shutdown.cancelled() => break,
                }
                continue;
            };
            match self.step(&mut current).await {
                Ok(true) => {
                    metrics::FEED_FANOUT_DURATION.record(current.started.elapsed());
                    queue.finished(&current);
                }
                Ok(false) => queue.again(current),
                Err(()) => {
                    queue.again(current);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = self.shutdown.cancelled() => break,
                    }
                }
            }
        }
        // Let another node (or this one, restarted) resume at once rather than after the lease.
        if let Err(e) = self.store.release_fanouts(&self.node).await {
            tracing::warn!(error = ?e, "could not release feed fan-out leases");
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
            channel: ChannelKind::Feed.name(recipient).into(),
            id: id.clone(),
            from: author.clone(),
            ts_ms: ts,
            data: item.clone(),
            published_at: None,
            notification: None,
            idempotency_key: None,
            effect: None,
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
                if !messages.is_empty() {
                    self.after.committed(messages);
                }
                Ok(done)
            }
            Ok(Step::Lost) => {
                tracing::warn!(post = %current.fanout.post.id, "feed fan-out was taken over by another node");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = ?e, post = %current.fanout.post.id, "feed fan-out step failed; retrying");
                Err(())
            }
        }
    }

    /// Posts whose feed item cannot be built are marked failed in storage (not retried by any
    /// node) and skipped; the other fan-outs go on.
    async fn give_up(&self, queue: &mut Queue) {
        for post in std::mem::take(&mut queue.poisoned) {
            metrics::worker_skipped("feed_fanout");
            if let Err(e) = self.store.fail_fanout(&post).await {
                tracing::warn!(error = ?e, %post, "could not mark a failed fan-out; it will be retried");
            }
        }
    }

    async fn claim_abandoned(&self, queue: &mut Queue) {
        let room = MAX_PENDING
            .saturating_sub(queue.len())
            .min(CLAIM_LIMIT as usize);
        if room == 0 {
            return;
        }
        let now = now_ms();
        let lease_until = now + LEASE.as_millis() as i64;
        match self
            .store
            .claim_fanouts(&self.node, now, lease_until, room as u32)
            .await
        {
            Ok(claimed) => {
                for fanout in claimed {
                    tracing::info!(post = %fanout.post.id, after = fanout.after, "resuming an abandoned feed fan-out");
                    queue.add(fanout);
                }
            }
            Err(e) => tracing::warn!(error = ?e, "scanning for abandoned feed fan-outs failed"),
        }
    }
}

/// The fan-outs this node works on. Each author has at most one in `turns` at a time, so an
/// author's posts reach every feed in post order; the others wait behind it in `waiting`. Those
/// in `turns` get one chunk each in turn.
#[derive(Default)]
struct Queue {
    turns: VecDeque<Active>,
    waiting: HashMap<String, VecDeque<Fanout>>,
    /// Post ids in `turns`, in `waiting`, or being worked on: a post claimed again (its lease ran
    /// out while it waited here) is not queued twice.
    known: HashSet<String>,
    /// Posts whose feed item could not be built, for the worker to mark failed.
    poisoned: Vec<String>,
}

impl Queue {
    fn len(&self) -> usize {
        self.known.len()
    }

    fn has_room(&self) -> bool {
        self.len() < MAX_PENDING
    }

    fn add(&mut self, fanout: Fanout) {
        if !self.known.insert(fanout.post.id.clone()) {
            return;
        }
        let author = &fanout.post.author;
        let busy = self.waiting.contains_key(author)
            || self.turns.iter().any(|a| a.fanout.post.author == *author);
        if busy {
            self.waiting
                .entry(author.clone())
                .or_default()
                .push_back(fanout);
        } else {
            self.start(fanout);
        }
    }

    /// Puts `fanout` in turn, or among the poisoned when its feed item cannot be built (its
    /// author's next post, if any, goes in turn instead).
    fn start(&mut self, fanout: Fanout) {
        match feed_item(&fanout.post) {
            Ok(item) => self.turns.push_back(Active {
                item,
                fanout,
                started: Instant::now(),
            }),
            Err(e) => {
                tracing::error!(error = ?e, post = %fanout.post.id, "cannot build the feed item; fan-out given up");
                self.known.remove(&fanout.post.id);
                self.poisoned.push(fanout.post.id.clone());
                self.next_of(&fanout.post.author);
            }
        }
    }

    /// The next fan-out to advance by one chunk; hand it back with `again` or `finished`.
    fn next(&mut self) -> Option<Active> {
        self.turns.pop_front()
    }

    fn again(&mut self, active: Active) {
        self.turns.push_back(active);
    }

    /// `active` is done: its author's next post, if any, takes its place.
    fn finished(&mut self, active: &Active) {
        self.known.remove(&active.fanout.post.id);
        self.next_of(&active.fanout.post.author);
    }

    /// Starts `author`'s next waiting post, if any.
    fn next_of(&mut self, author: &str) {
        if let Some(mut later) = self.waiting.remove(author) {
            if let Some(next) = later.pop_front() {
                if !later.is_empty() {
                    self.waiting.insert(author.to_owned(), later);
                }
                self.start(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::store::Post;

    fn fanout(id: &str, author: &str) -> Fanout {
        Fanout {
            post: Post {
                id: id.into(),
                author: author.into(),
                author_name: author.into(),
                reply_to: None,
                data: RawValue::from_string("{}".into()).unwrap(),
                ts: 0,
            },
            after: 0,
        }
    }

    fn ids(queue: &mut Queue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(a) = queue.next() {
            out.push(a.fanout.post.id.clone());
            queue.finished(&a);
        }
        out
    }

    #[test]
    fn one_author_at_a_time_in_post_order_others_interleave() {
        let mut queue = Queue::default();
        for (id, author) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a")] {
            queue.add(fanout(id, author));
        }
        assert_eq!(queue.turns.len(), 2, "a1 and b1 take turns; a2, a3 wait");
        assert_eq!(ids(&mut queue), ["a1", "b1", "a2", "a3"]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_post_is_queued_once() {
        let mut queue = Queue::default();
        queue.add(fanout("p", "a"));
        let active = queue.next().unwrap();
        queue.add(fanout("p", "a")); // claimed again while being worked on
        queue.again(active);
        assert_eq!(ids(&mut queue), ["p"]);
    }
}
