//! What the subscriber side of the Redis bus shares between a single Redis and a Redis Cluster:
//! the key names, and routing what it hears into the hub (or the control handler).

use std::sync::Arc;

use super::envelope;
use super::seal::Seal;
use crate::hub::{Delivery, Hub};
use crate::metrics;
use crate::node::NodeId;

pub(super) fn channel_key(prefix: &str, channel: &str) -> String {
    format!("{prefix}ch:{channel}")
}

pub(super) fn control_key(prefix: &str) -> String {
    format!("{prefix}ctl")
}

/// What the subscriber needs to route what it hears.
pub(super) struct Receiver {
    pub(super) prefix: String,
    pub(super) node: NodeId,
    pub(super) hub: Arc<Hub>,
    pub(super) on_control: super::OnControl,
    pub(super) seal: Arc<Seal>,
}

impl Receiver {
    /// Handles one message from the pub/sub connection. One that cannot be handled (garbage is
    /// logged where it is decoded; a panic is caught here) is skipped: the loop goes on, and the
    /// sequencer repairs a skipped offset from storage.
    pub(super) fn handle(&self, msg: redis::Msg) {
        let handled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dispatch(&msg)));
        if let Err(panic) = handled {
            metrics::worker_skipped("bus");
            tracing::error!(
                panic = crate::workers::panic_message(&*panic),
                "a bus message could not be handled"
            );
        }
    }

    fn dispatch(&self, msg: &redis::Msg) {
        let Some(payload) = self.seal.open(msg.get_payload_bytes()) else {
            metrics::BUS_FORGED.increment(1);
            tracing::warn!(
                channel = msg.get_channel_name(),
                "bus envelope without a valid MAC dropped"
            );
            return;
        };
        let name = msg.get_channel_name();
        let is_message = name
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.starts_with("ch:"));
        if is_message {
            if let Some(stored) = envelope::decode(&self.node, payload) {
                if let Some(lag) = time_since_ms(stored.ts_ms) {
                    metrics::BUS_LAG.record(lag);
                }
                self.hub.deliver(Arc::new(Delivery::new(stored)));
            }
        } else if name == control_key(&self.prefix) {
            if let Some(event) = envelope::decode_control(&self.node, payload) {
                (self.on_control)(event);
            }
        }
    }
}

/// Seconds from a message's storage timestamp to now (cross-node clocks: same host in tests).
fn time_since_ms(ts_ms: i64) -> Option<f64> {
    let lag = crate::store::now_ms() - ts_ms;
    (lag >= 0).then(|| lag as f64 / 1000.0)
}
