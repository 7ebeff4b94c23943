//! Single-node presence: who is online per room, in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use dashmap::DashMap;
use switchboard_protocol::{PresencePage, UserInfo};

#[derive(Default)]
pub(crate) struct LocalPresence {
    /// Room channel → user id → username. Sorted, so pages are stable.
    rooms: DashMap<Arc<str>, BTreeMap<Arc<str>, Arc<str>>>,
}

impl LocalPresence {
    /// Records `user` as online; returns the room's online count.
    pub(crate) fn claim(&self, channel: &Arc<str>, user: &Arc<str>, username: &Arc<str>) -> u64 {
        let mut room = self.rooms.entry(channel.clone()).or_default();
        room.insert(user.clone(), username.clone());
        room.len() as u64
    }

    /// Records `user` as offline; returns the room's online count.
    pub(crate) fn release(&self, channel: &Arc<str>, user: &Arc<str>) -> Option<u64> {
        let mut room = self.rooms.get_mut(channel)?;
        room.remove(user)?;
        let left = room.len() as u64;
        drop(room);
        self.rooms.remove_if(channel, |_, r| r.is_empty());
        Some(left)
    }

    /// Users in id order after `cursor` (the last id of the previous page).
    pub(crate) fn page(&self, channel: &str, cursor: Option<&str>, limit: u32) -> PresencePage {
        let Some(room) = self.rooms.get(channel) else {
            return PresencePage {
                count: 0,
                users: Vec::new(),
                cursor: None,
            };
        };
        let start = cursor.unwrap_or("");
        let users: Vec<UserInfo> = room
            .iter()
            .filter(|(id, _)| cursor.is_none() || &***id > start)
            .take(limit as usize)
            .map(|(id, name)| UserInfo {
                id: id.to_string(),
                username: name.to_string(),
            })
            .collect();
        let more = users.last().is_some_and(|last| {
            room.range::<str, _>((
                std::ops::Bound::Excluded(last.id.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some()
        });
        let cursor = more.then(|| users.last().map(|u| u.id.clone())).flatten();
        PresencePage {
            count: room.len() as u64,
            users,
            cursor,
        }
    }
}
