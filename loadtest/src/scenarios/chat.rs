//! `chat`: R rooms of M members; every member subscribes to its room and publishes to it at r
//! msg/s, so each room carries M·r msg/s delivered M times (the publisher sees its own too).

use super::{PeerPlan, PublishPlan, Via};
use crate::options::ChatParams;
use crate::stats::Lane;

pub fn plan(p: &ChatParams, run_id: &str) -> Vec<PeerPlan> {
    let mut plans = Vec::with_capacity(p.rooms * p.members);
    for room in 0..p.rooms {
        let channel = format!("room:lt-chat-{run_id}-{room}");
        for member in 0..p.members {
            let index = room * p.members + member;
            plans.push(PeerPlan {
                index: index as u64,
                user: None,
                subscribe: vec![channel.clone()],
                publish: Some(PublishPlan {
                    channel: channel.clone(),
                    publisher: index as u32,
                    rate: p.rate,
                    via: Via::Socket,
                }),
                drops: false,
                lane: Lane::Main,
            });
        }
    }
    plans
}
