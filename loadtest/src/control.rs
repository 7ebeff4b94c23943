//! The run's timeline as seen by each connection: one `watch` value the engine updates (start
//! publishing, drop, stop publishing, finish) and every connection task observes. A watch keeps
//! only the latest state, which is all a connection needs: each step only ever moves forward.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Publishing starts at this instant (set at "go"; `None` while connections are opening).
    pub publish_from: Option<Instant>,
    /// Publishing has stopped (end of the measured window).
    pub publish_stopped: bool,
    /// Connections planned to drop do so now and resume with `since`.
    pub drop: Option<DropOrder>,
    /// The final offsets are known: finish once caught up with them, or at the deadline.
    pub finish: Option<Finish>,
}

#[derive(Debug, Clone, Copy)]
pub struct DropOrder {
    pub at: Instant,
    /// The channel's last offset at the drop: recovery means holding every offset up to it.
    /// `None` when it could not be determined (recovery time is then not measured).
    pub target: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Finish {
    /// Each channel's final offset: the highest publish offset acknowledged anywhere in the run.
    pub finals: Arc<BTreeMap<String, u64>>,
    pub deadline: Instant,
}
