//! What this node has committed but not yet handed to Redis, bounded in bytes
//! (`SWITCHBOARD_BUS_BACKLOG_BYTES`). The committer never waits for Redis, so during an outage
//! everything published would otherwise pile up here for as long as it lasts. Past the bound,
//! message batches are dropped from the bus only: they are stored, and nodes read what the bus
//! lost from storage when their subscriber reconnects (every channel is resynced) or when the
//! channel's next message shows the gap. Control events (revocations, room rules, presence) are
//! small and never dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::metrics;

/// Encoded publishes on their way to the publisher task: (Redis channel, payload).
pub(super) type Outgoing = Vec<(String, Vec<u8>)>;

#[derive(Clone)]
pub(super) struct Sender {
    tx: mpsc::UnboundedSender<Outgoing>,
    bytes: Arc<AtomicUsize>,
    max: usize,
}

pub(super) struct Receiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    bytes: Arc<AtomicUsize>,
}

pub(super) fn channel(max: usize) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            bytes: bytes.clone(),
            max,
        },
        Receiver { rx, bytes },
    )
}

fn size(batch: &Outgoing) -> usize {
    batch
        .iter()
        .map(|(key, bytes)| key.len() + bytes.len())
        .sum()
}

impl Sender {
    /// Queues a committed batch, or drops it (counted) when the backlog is full.
    pub(super) fn messages(&self, batch: Outgoing) {
        let size = size(&batch);
        let max = self.max;
        let taken = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now + size <= max).then_some(now + size)
            });
        if taken.is_err() {
            metrics::BUS_DROPPED.increment(batch.len() as u64);
            return;
        }
        if self.tx.send(batch).is_err() {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
        }
    }

    /// Queues a control event, whatever the backlog holds.
    pub(super) fn control(&self, batch: Outgoing) {
        let size = size(&batch);
        self.bytes.fetch_add(size, Ordering::AcqRel);
        if self.tx.send(batch).is_err() {
            self.bytes.fetch_sub(size, Ordering::AcqRel);
        }
    }
}

impl Receiver {
    pub(super) async fn recv(&mut self) -> Option<Outgoing> {
        let batch = self.rx.recv().await?;
        self.bytes.fetch_sub(size(&batch), Ordering::AcqRel);
        Some(batch)
    }

    pub(super) fn try_recv(&mut self) -> Option<Outgoing> {
        let batch = self.rx.try_recv().ok()?;
        self.bytes.fetch_sub(size(&batch), Ordering::AcqRel);
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_past_the_bound_are_dropped_and_control_events_never_are() {
        let (tx, mut rx) = channel(100);
        let batch = |n: usize| vec![("k".to_owned(), vec![0u8; n])];
        tx.messages(batch(59));
        tx.messages(batch(59)); // 60 + 60 > 100: dropped
        tx.control(batch(59));
        assert_eq!(rx.recv().await.map(|b| b[0].1.len()), Some(59));
        assert_eq!(rx.recv().await.map(|b| b[0].1.len()), Some(59));
        assert!(
            rx.try_recv().is_none(),
            "the second message batch was dropped"
        );
        tx.messages(batch(59));
        assert!(rx.try_recv().is_some(), "room again once drained");
    }
}
