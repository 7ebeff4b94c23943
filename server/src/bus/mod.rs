//! Cross-node fan-out. Every committed batch goes to the bus, and the bus hands each message to
//! the hub of every node with local subscribers for its channel.
//!
//! Single node (no `REDIS_URL`): the in-process bus delivers straight into this node's hub.
//! Several nodes: [`redis`] carries committed messages between them.

mod envelope;
pub mod redis;

use std::sync::Arc;

use crate::hub::{Delivery, Hub};
use crate::store::writer::CommitSink;

/// The in-process bus: committed batches go straight to the local hub, in commit order.
pub fn local(hub: Arc<Hub>) -> CommitSink {
    Arc::new(move |batch| {
        for msg in batch {
            hub.deliver(Arc::new(Delivery::new(msg)));
        }
    })
}
