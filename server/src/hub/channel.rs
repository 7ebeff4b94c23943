//! One channel's local state: its subscribers and the sequencer that delivers the channel's
//! messages to them strictly in offset order, each once.
//!
//! Messages reach a node in commit order on one node, but across nodes (Redis) two offsets can
//! arrive swapped, and pub/sub can lose one. The sequencer knows the next offset it expects:
//! anything later waits in `early` until the gap fills or the hub repairs it from storage.
//! Everything here is synchronous and runs under the channel's lock: no awaits, and no I/O but
//! the connections' non-blocking socket writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::delivery::Delivery;
use crate::metrics;
use crate::ws::conn::ConnHandle;

/// Messages held ahead of a gap before the hub stops waiting and repairs from storage at once.
/// Bounds memory per channel when a node falls far behind.
pub(super) const EARLY_MAX: usize = 1024;
/// Live messages buffered for one subscriber while its history replay runs. Past this the buffer
/// is dropped and the replay simply reads further from storage, so a replay racing a busy channel
/// costs bounded memory.
pub(super) const HELD_MAX: usize = 4096;

pub(super) struct Subscriber {
    pub conn: Arc<ConnHandle>,
    /// Highest offset queued to this subscriber; nothing at or below it is sent again.
    pub last_sent: u64,
    /// `Some` while the subscriber's history replay runs: live messages wait here instead.
    pub held: Option<Vec<Arc<Delivery>>>,
}

#[derive(Default)]
pub(super) struct ChannelState {
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
pub(super) enum Gap {
    None,
    /// Missing offsets `(after, before)`: wait a little, then read them from storage.
    Wait,
    /// Too much is waiting: read the missing range from storage now.
    RepairNow,
}

impl ChannelState {
    /// Sets the starting position (the channel's last stored offset when the node took interest):
    /// everything at or below it is in storage, so only later messages are delivered live.
    pub(super) fn init(&mut self, last_offset: u64) -> Gap {
        if self.cursor.is_some() {
            return self.gap();
        }
        self.cursor = Some(last_offset);
        self.early = self.early.split_off(&(last_offset + 1));
        let mut ready = Vec::new();
        self.drain_early(&mut ready);
        self.fan_out(&ready);
        self.gap()
    }

    /// Offers a message from the bus (or a storage repair). Delivers it, and whatever it unblocks,
    /// when it is the next expected offset; drops duplicates; holds later ones.
    pub(super) fn offer(&mut self, d: Arc<Delivery>) -> Gap {
        self.offer_all([d])
    }

    /// Offers this channel's messages from one commit batch, in commit order, as [`offer`] does
    /// one by one; what becomes deliverable goes to each subscriber in one write, so a busy
    /// channel costs a syscall per subscriber per batch rather than per message.
    ///
    /// [`offer`]: ChannelState::offer
    pub(super) fn offer_all(&mut self, ds: impl IntoIterator<Item = Arc<Delivery>>) -> Gap {
        let mut ready = Vec::new();
        for d in ds {
            let Some(cursor) = self.cursor else {
                self.early.insert(d.offset(), d);
                continue;
            };
            let offset = d.offset();
            if offset <= cursor {
                continue;
            }
            if offset > cursor + 1 {
                self.early.insert(offset, d);
                continue;
            }
            ready.push(d);
            self.cursor = Some(offset);
            self.drain_early(&mut ready);
        }
        self.fan_out(&ready);
        self.gap()
    }

    /// The missing range `(cursor, first early)`, when there is a gap.
    pub(super) fn missing(&self) -> Option<(u64, u64)> {
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

    /// Moves the held messages that now follow the cursor into `ready`.
    fn drain_early(&mut self, ready: &mut Vec<Arc<Delivery>>) {
        while let Some(cursor) = self.cursor {
            let Some(next) = self.early.remove(&(cursor + 1)) else {
                break;
            };
            ready.push(next);
            self.cursor = Some(cursor + 1);
        }
    }

    /// Sends `run` (consecutive offsets) to every subscriber: clones of the shared encoded
    /// frames, in one write each. Never waits; a full queue closes that connection (see
    /// `ConnHandle::push_all`) without affecting the others.
    fn fan_out(&mut self, run: &[Arc<Delivery>]) {
        if run.is_empty() {
            return;
        }
        for d in run {
            if let Some(published) = d.msg.published_at {
                metrics::PUBLISH_DELIVER.record(published.elapsed());
            }
        }
        let mut queued = 0u64;
        let mut frames = Vec::with_capacity(run.len());
        for sub in &mut self.subscribers {
            if let Some(held) = &mut sub.held {
                for d in run {
                    if held.len() >= HELD_MAX {
                        held.clear();
                    }
                    held.push(d.clone());
                }
                continue;
            }
            frames.clear();
            let mut last = sub.last_sent;
            for d in run {
                if d.offset() > sub.last_sent {
                    if let Some(frame) = d.frame_for(&sub.conn) {
                        frames.push(frame);
                        last = d.offset();
                    }
                }
            }
            if !frames.is_empty() && sub.conn.push_all(&frames).is_ok() {
                sub.last_sent = last;
                queued += frames.len() as u64;
            }
        }
        metrics::MESSAGES_OUT.increment(queued);
    }

    /// Whether the connection is subscribed here.
    pub(super) fn has(&self, conn_id: u64) -> bool {
        self.positions.contains_key(&conn_id)
    }

    pub(super) fn subscriber_mut(&mut self, conn_id: u64) -> Option<&mut Subscriber> {
        let i = *self.positions.get(&conn_id)?;
        self.subscribers.get_mut(i)
    }

    /// Adds a subscription; the connection must not have one here already (see `remove`).
    pub(super) fn add(&mut self, sub: Subscriber) {
        self.positions
            .insert(sub.conn.conn_id, self.subscribers.len());
        self.subscribers.push(sub);
    }

    /// Removes the connection's subscription; returns whether it was there.
    pub(super) fn remove(&mut self, conn_id: u64) -> bool {
        let Some(i) = self.positions.remove(&conn_id) else {
            return false;
        };
        self.subscribers.swap_remove(i);
        if let Some(moved) = self.subscribers.get(i) {
            self.positions.insert(moved.conn.conn_id, i);
        }
        true
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn subscriber(conn_id: u64) -> Subscriber {
        Subscriber {
            conn: ConnHandle::for_tests(conn_id, 1024, tokio::io::empty()),
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

    fn message(offset: u64) -> Arc<Delivery> {
        Arc::new(Delivery::new(crate::store::StoredMessage {
            channel: "room:r".into(),
            offset,
            id: format!("m{offset}"),
            from: "u".into(),
            ts_ms: 0,
            data: serde_json::value::RawValue::from_string(offset.to_string()).unwrap(),
            published_at: None,
            state: None,
        }))
    }

    /// Offsets of the `message` frames a client would read from `wire`.
    fn offsets(wire: &[u8]) -> Vec<u64> {
        use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
        let mut cursor = std::io::Cursor::new(wire);
        let mut out = Vec::new();
        while let Some((_, len)) = FrameHeader::parse(&mut cursor).unwrap() {
            let start = cursor.position() as usize;
            let body = &wire[start..start + len as usize];
            let frame: serde_json::Value = serde_json::from_slice(body).unwrap();
            out.push(frame["offset"].as_u64().unwrap());
            cursor.set_position((start + len as usize) as u64);
        }
        out
    }

    /// Batches arriving swapped, duplicated and with gaps reach a subscriber in offset order,
    /// each message once, with what a batch cannot deliver yet held until the gap fills.
    #[tokio::test]
    async fn batches_deliver_in_order_once_across_gaps_and_duplicates() {
        use tokio::io::AsyncReadExt;
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let conn = ConnHandle::for_tests(1, 1 << 20, ours);
        let mut state = ChannelState::default();
        state.add(Subscriber {
            conn: conn.clone(),
            last_sent: 0,
            held: None,
        });
        assert_eq!(state.init(0), Gap::None);
        assert_eq!(state.offer_all([3, 1, 2, 2, 6].map(message)), Gap::Wait);
        assert_eq!(state.missing(), Some((3, 6)));
        assert_eq!(state.offer_all([1, 5, 4].map(message)), Gap::None);
        assert_eq!(state.offer_all([7, 6, 8].map(message)), Gap::None);
        drop(state);
        conn.close(crate::ws::conn::CloseReason::Normal);
        let mut wire = Vec::new();
        theirs.read_to_end(&mut wire).await.unwrap();
        let close_len = crate::ws::conn::frame::close(crate::ws::conn::CloseReason::Normal).len();
        let got = offsets(&wire[..wire.len() - close_len]);
        assert_eq!(got, (1..=8).collect::<Vec<_>>());
    }
}
