//! The path of a message from "accepted" to "in every subscriber's socket", the same for chat
//! messages, notifications and feed items:
//!
//! 1. storage: [`commit`] batches chat publishes (and, on a queue of their own, notifications)
//!    into group commits that assign each its offset; feed fan-out commits its chunks itself
//!    ([`crate::store::Store::fanout_step`], with its progress in the same transaction);
//! 2. [`AfterCommit::committed`], which every producer calls with its committed batch, in commit
//!    order, and which never waits:
//!    - the after-commit hooks: the mention tap ([`crate::notify::mentions`]) queues chat
//!      messages that mention someone;
//!    - the bus ([`crate::bus`]) carries the batch to the other nodes;
//!    - the hub ([`crate::hub`]) delivers it to this node's subscribers, each channel through its
//!      sequencer, into each subscriber's connection ([`crate::ws::conn`]).
//!
//! On another node the bus hands what it receives to that node's hub; its sequencer orders by
//! offset and repairs from storage whatever the bus lost.

pub(crate) mod commit;

use std::sync::Arc;

use crate::bus::Bus;
use crate::hub::Hub;
use crate::metrics;
use crate::store::StoredMessage;

/// Looks at every committed batch before it is delivered (the mention tap, in
/// `notify::mentions`). Must not wait: the storage writer is calling.
pub(crate) trait Hook: Send + Sync {
    fn committed(&self, batch: &[StoredMessage]);
}

/// What happens to every committed batch.
pub(crate) struct AfterCommit {
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    /// Only the chat writers' batches pass the mention tap. The notification writer and feed
    /// fan-out carry none (mentions exist in rooms only), and must not hold the tap: the mention
    /// queue closes when the last tap is gone, which is how shutdown tells the mention worker
    /// that the chat writers are done (see `shutdown`).
    mentions: Option<Box<dyn Hook>>,
}

impl AfterCommit {
    /// Hands batches to the bus and the hub.
    pub(crate) fn new(hub: Arc<Hub>, bus: Arc<dyn Bus>) -> AfterCommit {
        AfterCommit {
            hub,
            bus,
            mentions: None,
        }
    }

    /// As [`AfterCommit::new`], with chat messages passing the mention tap first.
    pub(crate) fn with_mentions(
        hub: Arc<Hub>,
        bus: Arc<dyn Bus>,
        tap: impl Hook + 'static,
    ) -> AfterCommit {
        AfterCommit {
            hub,
            bus,
            mentions: Some(Box::new(tap)),
        }
    }

    /// A batch is durable: run the hooks, send it to the other nodes, deliver it here.
    pub(crate) fn committed(&self, batch: Vec<StoredMessage>) {
        metrics::MESSAGES_IN.increment(batch.len() as u64);
        if let Some(tap) = &self.mentions {
            tap.committed(&batch);
        }
        self.bus.publish(&batch);
        self.hub.deliver_batch(batch);
    }
}
