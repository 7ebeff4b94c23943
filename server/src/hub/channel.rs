//! One channel's local state: its subscribers and the sequencer that delivers the channel's
//! messages to them strictly in offset order, each once.
//!
//! Messages reach a node in commit order on one node, but across nodes (Redis) two offsets can
//! arrive swapped, and pub/sub can lose one. The sequencer knows the next offset it expects:
//! anything later waits in `early` until the gap fills or the hub repairs it from storage.
//! Everything here is synchronous and runs under the channel's lock: no I/O, no awaits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::delivery::Delivery;
use super::outbox::Outbox;
use crate::metrics;

/// Messages held ahead of a gap before the hub stops waiting and repairs from storage at once.
/// Bounds memory per channel when a node falls far behind.
pub const EARLY_MAX: usize = 1024;
/// Live messages buffered for one subscriber while its history replay runs. Past this the buffer
/// is dropped and the replay simply reads further from storage, so a replay racing a busy channel
/// costs bounded memory.
pub const HELD_MAX: usize = 4096;

pub struct Subscriber {
    pub outbox: Arc<Outbox>,
    /// Highest offset queued to this subscriber; nothing at or below it is sent again.
    pub last_sent: u64,
    /// `Some` while the subscriber's history replay runs: live messages wait here instead.
    pub held: Option<Vec<Arc<Delivery>>>,
}

#[derive(Default)]
pub struct ChannelState {
    /// Last offset delivered in sequence; `None` until the hub has read the channel's position.
    pub cursor: Option<u64>,
    /// Messages that arrived ahead of `cursor + 1`, by offset.
    early: BTreeMap<u64, Arc<Delivery>>,
    pub subscribers: Vec<Subscriber>,
    /// Connection id → position in `subscribers`: subscribing and leaving are O(1) even in a
    /// channel with 10k subscribers that all reconnect at once.
    positions: HashMap<u64, usize>,
    /// A storage repair for a gap is already scheduled.
    pub repair_scheduled: bool,
    /// Set when the hub removed this channel from its map; a late subscriber must start over.
    pub dead: bool,
}

/// What the hub must do after offering a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Gap {
    None,
    /// Missing offsets `(after, before)`: wait a little, then read them from storage.
    Wait,
    /// Too much is waiting: read the missing range from storage now.
    RepairNow,
}

impl ChannelState {
    /// Sets the starting position (the channel's last stored offset when the node took interest):
    /// everything at or below it is in storage, so only later messages are delivered live.
    pub fn init(&mut self, last_offset: u64) -> Gap {
        if self.cursor.is_some() {
            return self.gap();
        }
        self.cursor = Some(last_offset);
        self.early = self.early.split_off(&(last_offset + 1));
        self.drain_early();
        self.gap()
    }

    /// Offers a message from the bus (or a storage repair). Delivers it, and whatever it unblocks,
    /// when it is the next expected offset; drops duplicates; holds later ones.
    pub fn offer(&mut self, d: Arc<Delivery>) -> Gap {
        let Some(cursor) = self.cursor else {
            self.early.insert(d.offset(), d);
            return Gap::None;
        };
        let offset = d.offset();
        if offset <= cursor {
            return self.gap();
        }
        if offset > cursor + 1 {
            self.early.insert(offset, d);
            return self.gap();
        }
        self.fan_out(&d);
        self.cursor = Some(offset);
        self.drain_early();
        self.gap()
    }

    /// The missing range `(cursor, first early)`, when there is a gap.
    pub fn missing(&self) -> Option<(u64, u64)> {
        let cursor = self.cursor?;
        let (&first, _) = self.early.first_key_value()?;
        Some((cursor, first))
    }

    fn gap(&self) -> Gap {
        match self.early.len() {
            0 => Gap::None,
            n if n > EARLY_MAX => Gap::RepairNow,
            _ => Gap::Wait,
        }
    }

    fn drain_early(&mut self) {
        while let Some(cursor) = self.cursor {
            let Some(next) = self.early.remove(&(cursor + 1)) else {
                break;
            };
            self.fan_out(&next);
            self.cursor = Some(cursor + 1);
        }
    }

    /// Queues `d` to every subscriber: a clone of the shared encoded frame each. Never waits; a
    /// full queue closes that connection (see `Outbox::push`) without affecting the others.
    fn fan_out(&mut self, d: &Arc<Delivery>) {
        let offset = d.offset();
        if let Some(published) = d.msg.published_at {
            metrics::PUBLISH_DELIVER.record(published.elapsed());
        }
        let mut queued = 0u64;
        for sub in &mut self.subscribers {
            if let Some(held) = &mut sub.held {
                if held.len() >= HELD_MAX {
                    held.clear();
                }
                held.push(d.clone());
            } else if offset > sub.last_sent {
                if let Some(frame) = d.frame(sub.outbox.encoding) {
                    if sub.outbox.push(frame).is_ok() {
                        sub.last_sent = offset;
                        queued += 1;
                    }
                }
            }
        }
        metrics::MESSAGES_OUT.increment(queued);
    }

    pub fn subscriber_mut(&mut self, conn_id: u64) -> Option<&mut Subscriber> {
        let i = *self.positions.get(&conn_id)?;
        self.subscribers.get_mut(i)
    }

    /// Adds a subscription; the connection must not have one here already (see `remove`).
    pub fn add(&mut self, sub: Subscriber) {
        self.positions
            .insert(sub.outbox.conn_id, self.subscribers.len());
        self.subscribers.push(sub);
    }

    /// Removes the connection's subscription; returns whether it was there.
    pub fn remove(&mut self, conn_id: u64) -> bool {
        let Some(i) = self.positions.remove(&conn_id) else {
            return false;
        };
        self.subscribers.swap_remove(i);
        if let Some(moved) = self.subscribers.get(i) {
            self.positions.insert(moved.outbox.conn_id, i);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::Encoding;

    use super::*;
    use crate::auth::Principal;

    fn sink() -> crate::hub::outbox::SharedIo {
        let io: std::pin::Pin<Box<dyn crate::hub::outbox::Io>> = Box::pin(tokio::io::empty());
        std::sync::Arc::new(parking_lot::Mutex::new(io))
    }

    fn subscriber(conn_id: u64) -> Subscriber {
        let who = Principal {
            user_id: "u".into(),
            username: "u".into(),
            session_id: "s".into(),
        };
        Subscriber {
            outbox: Outbox::new(conn_id, Encoding::Json, who, 1024, sink()),
            last_sent: conn_id,
            held: None,
        }
    }

    #[test]
    fn removal_in_any_order_keeps_every_other_subscriber_findable() {
        let mut state = ChannelState::default();
        for id in 0..50 {
            state.add(subscriber(id));
        }
        // Remove every third, front and back mixed, and one twice.
        for id in [0, 49, 3, 30, 6, 3, 27, 9, 45, 12] {
            state.remove(id);
        }
        let gone = [0, 49, 3, 30, 6, 27, 9, 45, 12];
        for id in 0..50 {
            let found = state.subscriber_mut(id).map(|s| s.last_sent);
            let expected = (!gone.contains(&id)).then_some(id);
            assert_eq!(found, expected, "conn {id}");
        }
        assert_eq!(state.subscribers.len(), 50 - gone.len());
        assert!(!state.remove(3));
    }
}
