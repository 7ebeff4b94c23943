//! `reconnect`: N subscribers of one channel while publishers keep publishing; at the middle of
//! the measured window every subscriber drops its socket at once and resumes with `since` = the
//! last offset it received. Measures the time until every subscriber again holds every offset
//! that existed at the drop, and that the whole run lost, duplicated and reordered nothing.

use super::{publishers, subscribers, PeerPlan};
use crate::options::{publishers_for, ReconnectParams};

pub fn plan(p: &ReconnectParams, run_id: &str) -> Vec<PeerPlan> {
    let channel = format!("room:lt-reconnect-{run_id}");
    let count = publishers_for(p.rate, p.publishers);
    publishers(&channel, count, p.rate)
        .chain(subscribers(&channel, count, p.subscribers, true))
        .collect()
}
