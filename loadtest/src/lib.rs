//! Switchboard's load tester, as a library so tests can run scenarios in-process with [`run`]
//! and the binary stays a thin shell. It measures speed (connect rate, publish→deliver and
//! publish→ack latency, throughput, server memory and CPU) *and* correctness: every delivered
//! offset is checked for loss, duplication and reordering, and any such fault fails the run.
//!
//! It speaks to the server only through the `switchboard-protocol` crate.
//!
//! # Layout
//! - [`options`]: what a run does ([`RunOptions`], [`Scenario`]); [`cli`] fills it from flags.
//! - [`coordinator`]: [`run`] — plans, starts engines, steps them through the timeline, merges.
//! - [`scenarios`]: each scenario as a plan of connections (subscribe what, publish what).
//! - [`engine`]: one process's share of the connections, driven through the timeline;
//!   [`link`] is how it talks to the coordinator, [`workers`] the multi-process form.
//! - [`peer`]: one connection's task; [`subscription`] and [`publisher`] its two sides;
//!   [`lifecycle`] the chat mix's edits, deletes, reactions and typing; [`control`] the
//!   timeline it follows; [`client`] the socket, [`poster`] its HTTP posts
//!   (feed), [`tokens`] its credentials, [`payload`] what it publishes.
//! - [`tracker`]: correctness accounting per subscription; [`latency`]: histograms;
//!   [`stats`]: shared counters and the per-engine [`stats::Tally`].
//! - [`server`]: the server's memory and CPU; [`report`] and [`summary`]: the results;
//!   [`progress`]: the live display.
//! - [`abuse`]: a `fanout` measured alone and beside bounded attackers.
//! - [`chaos`]: fault injection against a cluster of its own, and the Jepsen-style checker.

pub mod abuse;
pub mod chaos;
pub mod cli;
pub mod client;
pub mod control;
pub mod coordinator;
pub mod engine;
pub mod latency;
pub mod lifecycle;
pub mod link;
pub mod options;
pub mod payload;
pub mod peer;
pub mod poster;
pub mod progress;
pub mod publisher;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod stats;
pub mod subscription;
pub mod summary;
pub mod tokens;
pub mod tracker;
pub mod workers;

pub use coordinator::run;
pub use latency::Percentiles;
pub use options::{
    ChatParams, ConnectParams, FanoutParams, FeedParams, Ramp, ReconnectParams, RunOptions,
    Scenario, WireEncoding,
};
pub use report::{Report, Verdict};
