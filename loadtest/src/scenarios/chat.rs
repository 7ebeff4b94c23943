//! `chat`: R rooms of M members; every member subscribes to its room and publishes to it at r
//! msg/s, so each room carries M·r msg/s delivered M times (the publisher sees its own too).
//!
//! With the mix ([`crate::lifecycle`]): `--lifecycle-every N` has each member edit, react to,
//! unreact and delete every Nth of its acknowledged messages over HTTP, each change a message of
//! the room that every member must receive too; `--typing` has each member send a typing signal
//! every 2.5 s.

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
                mix: p.mix(),
            });
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_gets_the_mix() {
        let p = ChatParams {
            rooms: 2,
            members: 3,
            rate: 4.0,
            lifecycle_every: 4,
            typing: true,
        };
        let plans = plan(&p, "r");
        assert_eq!(plans.len(), 6);
        assert!(plans.iter().all(|m| m.mix == p.mix() && !m.mix.is_off()));
        assert_eq!(plans[4].subscribe, vec!["room:lt-chat-r-1".to_owned()]);
        // Without the flags, the plan is the plain chat.
        let plain = plan(&ChatParams::default(), "r");
        assert!(plain.iter().all(|m| m.mix.is_off()));
    }
}
