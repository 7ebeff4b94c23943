//! Group commit: publishes are queued to per-node writer tasks that store them in batches.
//!
//! A writer takes everything that queued up while its previous transaction was committing (up to
//! `store_batch`), stores it in one transaction, hands the batch on ([`AfterCommit`]), and only
//! then answers each publisher with its offset. "Ack means stored" holds, and under load one fsync
//! covers many acks. A batch never waits to fill, so a lone publish is not delayed.
//!
//! Channels are hashed onto writers, so one channel's publishes are always committed by the same
//! writer, in the order they were queued.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::AfterCommit;
use crate::metrics;
use crate::store::messages::{Appended, NewMessage};
use crate::store::{Backend, Store, StoreError, StoredMessage};

/// Publishes queued per writer before new ones are refused with `rate_limited`: about a second of
/// peak throughput, so a stalled database sheds load instead of growing memory without bound.
/// The payload bytes queued across all writers are bounded too (`SWITCHBOARD_STORE_QUEUE_BYTES`):
/// 65,536 publishes of 64 KiB would be 4 GiB.
const QUEUE_DEPTH: usize = 65_536;

/// A batch's transaction given up after this long: on a connection to a database that was cut
/// off (no reset, no answer), a statement would otherwise wait for TCP to time out, minutes, with
/// every publish of the writer behind it. The publishers get `unavailable`, as for any failed
/// commit; the outcome is unknown (the commit may have landed: a retry with its idempotency key
/// finds it, and subscribers repair the offset from storage).
const COMMIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// The writer's queue is full: storage is not keeping up.
    #[error("storage is overloaded, retry later")]
    Overloaded,
    /// The transaction failed (or the node is shutting down); nothing was acked.
    #[error("storage is unavailable")]
    Unavailable,
    /// The publisher stored different data under this idempotency key on this channel before.
    #[error("this idempotency key was used for a different message on this channel")]
    KeyReused,
}

struct Pending {
    message: NewMessage,
    /// Its payload bytes, counted in the queued total until its batch is done.
    bytes: usize,
    /// The publisher waiting for its offset; dropped unanswered only if the writer dies.
    reply: oneshot::Sender<Result<u64, SubmitError>>,
}

/// The way into storage of chat publishes (or, on a queue of its own, notifications): the
/// sending side of the writers. Dropping every clone lets the writers finish what is queued and
/// exit (used at shutdown).
#[derive(Clone)]
pub(crate) struct CommitQueue {
    queues: Arc<[mpsc::Sender<Pending>]>,
    hasher: RandomState,
    queued: Arc<QueuedBytes>,
}

/// Payload bytes queued or being committed, across a queue's writers.
struct QueuedBytes {
    now: AtomicUsize,
    max: usize,
}

impl CommitQueue {
    /// Starts `writers` writer tasks; returns the queue and the tasks to await at shutdown.
    pub(crate) fn start(
        store: Store,
        writers: usize,
        max_batch: usize,
        max_queued_bytes: usize,
        after: Arc<AfterCommit>,
    ) -> (CommitQueue, Vec<JoinHandle<()>>) {
        let writers = writers.max(1);
        let queued = Arc::new(QueuedBytes {
            now: AtomicUsize::new(0),
            max: max_queued_bytes,
        });
        let mut queues = Vec::with_capacity(writers);
        let mut handles = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            queues.push(tx);
            handles.push(tokio::spawn(run_writer(
                store.clone(),
                rx,
                max_batch.max(1),
                after.clone(),
                queued.clone(),
            )));
        }
        let queue = CommitQueue {
            queues: queues.into(),
            hasher: RandomState::new(),
            queued,
        };
        (queue, handles)
    }

    /// Queues `message` at once (publishes keep their call order) and returns a future that
    /// resolves to its offset once it is durably stored.
    pub(crate) fn submit(
        &self,
        message: NewMessage,
    ) -> Result<impl Future<Output = Result<u64, SubmitError>>, SubmitError> {
        let writer = (self.hasher.hash_one(&*message.channel) % self.queues.len() as u64) as usize;
        let (reply, answer) = oneshot::channel();
        let bytes = message.data.get().len();
        let queued = &self.queued;
        if queued
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now + bytes <= queued.max).then_some(now + bytes)
            })
            .is_err()
        {
            metrics::refused("store_queue_bytes");
            return Err(SubmitError::Overloaded);
        }
        self.queues[writer]
            .try_send(Pending {
                message,
                bytes,
                reply,
            })
            .map_err(|e| {
                queued.now.fetch_sub(bytes, Ordering::AcqRel);
                match e {
                    mpsc::error::TrySendError::Full(_) => SubmitError::Overloaded,
                    mpsc::error::TrySendError::Closed(_) => SubmitError::Unavailable,
                }
            })?;
        Ok(async move { answer.await.unwrap_or(Err(SubmitError::Unavailable)) })
    }
}

/// Payload bytes after which a batch is closed even if more publishes are queued. A committed
/// batch reaches each subscriber's outbound queue at once, so this bounds that burst well below
/// the default 1 MiB queue bound; it is far above what a batch of typical chat messages carries.
pub(crate) const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Waits for the next publish, then takes whatever else is already queued, up to `max` publishes
/// or `MAX_BATCH_BYTES` of payload.
async fn next_batch(
    queue: &mut mpsc::Receiver<Pending>,
    batch: &mut Vec<Pending>,
    max: usize,
) -> bool {
    let Some(first) = queue.recv().await else {
        return false;
    };
    let mut bytes = first.message.data.get().len();
    batch.push(first);
    while batch.len() < max && bytes < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(next) => {
                bytes += next.message.data.get().len();
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    true
}

async fn run_writer(
    store: Store,
    mut queue: mpsc::Receiver<Pending>,
    max_batch: usize,
    after: Arc<AfterCommit>,
    queued: Arc<QueuedBytes>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while next_batch(&mut queue, &mut batch, max_batch).await {
        let bytes: usize = batch.iter().map(|p| p.bytes).sum();
        let (messages, replies): (Vec<NewMessage>, Vec<_>) =
            batch.drain(..).map(|p| (p.message, p.reply)).unzip();
        commit(&store, messages, replies, &after).await;
        queued.now.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Stores one batch, hands it on, answers its publishers.
async fn commit(
    store: &Store,
    mut messages: Vec<NewMessage>,
    replies: Vec<oneshot::Sender<Result<u64, SubmitError>>>,
    after: &AfterCommit,
) {
    let started = Instant::now();
    metrics::STORE_BATCH.record(messages.len() as f64);
    // A panic while storing fails this batch's publishes like a storage error would, and the
    // writer goes on with the next batch.
    let storing = std::panic::AssertUnwindSafe(store.append(&mut messages)).catch_unwind();
    // SQLite is local: nothing hangs on a network, and a deadline would also count the wait for
    // the single writer's turn behind a long feed fan-out.
    let deadline = match store.backend() {
        Backend::Postgres => COMMIT_DEADLINE,
        Backend::Sqlite => std::time::Duration::MAX,
    };
    let appended = match tokio::time::timeout(deadline, storing).await {
        Ok(Ok(appended)) => appended,
        Ok(Err(panic)) => {
            metrics::worker_skipped("store_writer");
            tracing::error!(
                panic = crate::workers::panic_message(&panic),
                "storing a batch panicked"
            );
            Err(StoreError::Other(sqlx::Error::WorkerCrashed))
        }
        Err(_) => Err(StoreError::Other(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the batch did not commit within its deadline",
        )))),
    };
    match appended {
        Ok(outcomes) => {
            metrics::STORE_COMMIT.record(started.elapsed());
            // A repeat goes on to subscribers again, as stored: its first attempt may have been
            // a batch that committed after its deadline, whose messages were never delivered
            // live. The hub drops an offset it has delivered already. Rare: one read each.
            let mut stored: Vec<StoredMessage> = Vec::new();
            for (m, o) in messages.iter().zip(&outcomes) {
                if let Appended::Repeat(offset) = o {
                    match store
                        .messages_after(&m.channel, offset.saturating_sub(1), 1, usize::MAX)
                        .await
                    {
                        Ok(page) => stored.extend(page.messages),
                        Err(e) => {
                            tracing::warn!(error = ?e, channel = %m.channel, offset, "reading a repeated publish back failed; subscribers repair it from storage")
                        }
                    }
                }
            }
            stored.extend(
                messages
                    .into_iter()
                    .zip(&outcomes)
                    .filter_map(|(m, o)| match o {
                        Appended::Stored(offset) => Some(m.stored(*offset)),
                        Appended::Repeat(_) | Appended::KeyReused => None,
                    }),
            );
            // Stored is stored: a panic on the way to live delivery loses no ack (subscribers
            // repair the gap from storage).
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| after.committed(stored)))
            {
                metrics::worker_skipped("store_writer");
                tracing::error!(
                    panic = crate::workers::panic_message(&*panic),
                    "delivering a committed batch panicked"
                );
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A publisher that went away still had its message stored; nothing to undo.
                let _ = reply.send(outcome.offset().ok_or(SubmitError::KeyReused));
            }
        }
        Err(e) => {
            metrics::STORE_FAILURES.increment(1);
            tracing::error!(error = ?e, batch = replies.len(), "storing a publish batch failed");
            for reply in replies {
                let _ = reply.send(Err(SubmitError::Unavailable));
            }
        }
    }
}
