//! Cross-node fan-out: the bus carries every committed batch to the other nodes, and their
//! control events (revocations, room rule changes, presence) both ways.
//!
//! [`Bus`] is what the rest of the node sees. Single node (no `REDIS_URL`): [`LocalBus`], which
//! has no one to tell. Several nodes: [`redis::RedisBus`] over Redis pub/sub. Local delivery is
//! not the bus's job: [`crate::pipeline::AfterCommit`] hands each batch to this node's hub itself.
//!
//! The bus depends on the hub, never the other way round: what the Redis bus receives goes into
//! the hub, and the hub's interest in channels reaches the bus as [`crate::hub::Interest`]
//! changes on a channel the bus drains.

mod backlog;
mod backoff;
mod envelope;
mod receiver;
pub(crate) mod redis;
pub(crate) mod seal;
mod sharded;

use std::sync::Arc;

use crate::store::StoredMessage;

pub use envelope::ControlEvent;

/// The other nodes, as this node reaches them. Neither method waits.
pub(crate) trait Bus: Send + Sync {
    /// Carries a committed batch to every other node with interest in its channels, in commit
    /// order.
    fn publish(&self, batch: &[StoredMessage]);

    /// Tells every other node about `event`.
    fn control(&self, event: ControlEvent);

    /// Tells every other node that `session_id` was revoked.
    fn session_revoked(&self, session_id: &str) {
        self.control(ControlEvent::Revoked(session_id.to_owned()));
    }
}

/// The bus of a single node: there are no other nodes to tell.
pub(crate) struct LocalBus;

impl Bus for LocalBus {
    fn publish(&self, _: &[StoredMessage]) {}

    fn control(&self, _: ControlEvent) {}
}

/// What this node does with a control event from another node.
pub(crate) type OnControl = Arc<dyn Fn(ControlEvent) + Send + Sync>;
