//! Cross-node fan-out. Every committed batch goes to the bus, and the bus hands each message to
//! the hub of every node with local subscribers for its channel.
//!
//! Single node (no `REDIS_URL`): the in-process bus delivers straight into this node's hub.
//! Several nodes: [`redis`] carries committed messages between them.

mod backlog;
mod envelope;
pub mod redis;
pub mod seal;
mod sharded;

use std::sync::Arc;

use crate::hub::Hub;
use crate::store::writer::CommitSink;

pub use envelope::ControlEvent;

/// Cluster-wide control events this node sends. With the in-process bus there is no one to tell.
#[derive(Clone, Default)]
pub struct Control {
    redis: Option<redis::ControlSender>,
}

impl Control {
    /// Tells every other node about `event`.
    pub fn send(&self, event: ControlEvent) {
        if let Some(redis) = &self.redis {
            redis.send(&event);
        }
    }

    /// Tells every other node that `session_id` was revoked.
    pub fn session_revoked(&self, session_id: &str) {
        self.send(ControlEvent::Revoked(session_id.to_owned()));
    }
}

/// What this node does with a control event from another node.
pub type OnControl = Arc<dyn Fn(ControlEvent) + Send + Sync>;

/// The in-process bus: committed batches go straight to the local hub, in commit order.
pub fn local(hub: Arc<Hub>) -> CommitSink {
    Arc::new(move |batch| hub.deliver_batch(batch))
}
