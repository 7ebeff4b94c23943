//! `connect`: open N authenticated connections, each subscribed to one shared channel, and hold
//! them. Nothing is published: what it measures is connect rate, failures and the server's
//! memory per idle subscribed connection.

use super::PeerPlan;
use crate::options::ConnectParams;
use crate::stats::Lane;

pub fn plan(p: &ConnectParams, run_id: &str) -> Vec<PeerPlan> {
    let channel = format!("room:lt-connect-{run_id}");
    (0..p.connections)
        .map(|i| PeerPlan {
            index: i as u64,
            user: None,
            subscribe: if p.subscribe {
                vec![channel.clone()]
            } else {
                Vec::new()
            },
            publish: None,
            drops: false,
            lane: Lane::Main,
            mix: Default::default(),
        })
        .collect()
}
