//! The conversation between the coordinator and the engines that hold connections, the same
//! whether an engine runs in this process (tokio channels) or in a worker process (one JSON
//! message per line on its stdin/stdout, see [`crate::workers`]):
//!
//! ```text
//! coordinator                         engine
//!      ──── EngineSpec ───────────────▶   open its share of connections
//!      ◀─── Ready ────────────────────    (Progress every 500 ms throughout)
//!      ──── Go { start } ─────────────▶   publish, measure, stop publishing
//!      ◀─── Acked { max offsets } ────
//!      ──── Finals { offsets } ───────▶   wait for deliveries up to the finals
//!      ◀─── Done(tally) | Failed ─────
//! ```
//!
//! Final offsets need the round trip: a channel's publishers may sit in another process than its
//! subscribers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::process::Child;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::options::RunOptions;
use crate::scenarios::Prepared;
use crate::stats::{Live, Tally};

/// Everything an engine needs to run its share of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineSpec {
    pub opts: RunOptions,
    pub run_id: String,
    /// This engine takes the connections whose index % workers == worker.
    pub worker: usize,
    pub workers: usize,
    pub source_ips: usize,
    /// What the scenario set up on the server before the run (the feed's author).
    pub prepared: Prepared,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToEngine {
    /// Start publishing at this Unix time (slightly in the future, so all engines start together).
    Go { start_unix_ns: u64 },
    /// Each channel's final offset (max acked over all engines).
    Finals(BTreeMap<String, u64>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToCoord {
    Progress(Live),
    /// Every connection of this engine has been attempted.
    Ready(Live),
    /// Publishing is over here; the highest acked offset per channel.
    Acked(BTreeMap<String, u64>),
    Done(Box<Tally>),
    Failed(String),
}

/// The coordinator's end of all engines.
pub struct Links {
    /// One per engine; dropping them tells engines the coordinator is gone.
    senders: Vec<UnboundedSender<ToEngine>>,
    /// Messages from every engine, tagged with its number.
    pub events: UnboundedReceiver<(usize, ToCoord)>,
    /// Worker processes, killed if the coordinator gives up (`kill_on_drop`).
    _children: Vec<Child>,
}

impl Links {
    pub fn new(
        senders: Vec<UnboundedSender<ToEngine>>,
        events: UnboundedReceiver<(usize, ToCoord)>,
        children: Vec<Child>,
    ) -> Links {
        Links {
            senders,
            events,
            _children: children,
        }
    }

    /// One engine in this process.
    pub fn in_process(spec: EngineSpec) -> Links {
        let (to_engine, engine_rx) = mpsc::unbounded_channel();
        let (engine_tx, mut from_engine) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(crate::engine::run(spec, engine_tx, engine_rx));
        tokio::spawn(async move {
            while let Some(msg) = from_engine.recv().await {
                if events_tx.send((0, msg)).is_err() {
                    break;
                }
            }
        });
        Links::new(vec![to_engine], events, Vec::new())
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    pub fn broadcast(&self, msg: &ToEngine) {
        for sender in &self.senders {
            // A gone engine shows up as a missing reply; nothing to do here.
            let _ = sender.send(msg.clone());
        }
    }
}
