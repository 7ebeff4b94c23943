//! The connection hub: which local connection is subscribed to which channel, and fan-out of
//! committed messages to their outbound queues.
//!
//! Messages enter through [`Hub::deliver`] (called by the bus, never awaiting), pass the channel's
//! sequencer ([`channel`]) and are queued, already encoded, to each subscriber's [`ConnHandle`].
//! Subscribing with `since` replays stored history first and hands over to live delivery with
//! no gap and no duplicate (see [`Hub::subscribe`]).

mod blocks;
mod channel;
pub(crate) mod delivery;
mod repair;
mod replay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, OnceCell};

use crate::auth::Principal;
use crate::metrics;
use crate::store::{Store, StoredMessage};
use crate::ws::conn::wire::PerEncoding;
use crate::ws::conn::{CloseReason, ConnHandle};
use channel::ChannelState;
pub(crate) use delivery::Delivery;
pub(crate) use replay::{Admission, SubscribeError};

/// How long a first subscriber waits for the bus to confirm it now receives the channel: far
/// above a healthy Redis round trip (milliseconds), and short enough that a subscribe during a
/// Redis outage fails with `unavailable` while the client is still there to retry.
const BUS_CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages read from storage per query during replay and repair, and the most payload bytes one
/// such read holds (a page of large messages is cut short): a replaying connection holds at most
/// this beyond its outbound queue. 500 small messages are one index range scan of a few
/// milliseconds; the byte bound is what limits memory when messages are large.
const REPLAY_PAGE: u32 = 500;
const REPLAY_BYTES: usize = 256 * 1024;

/// Changes in this node's interest in channels, for a bus that must (un)subscribe upstream.
pub(crate) enum Interest {
    /// Start receiving the channel; answer once messages published from now on will arrive.
    Subscribe(Arc<str>, oneshot::Sender<()>),
    /// No local subscriber is left.
    Unsubscribe(Arc<str>),
}

struct Slot {
    state: Mutex<ChannelState>,
    /// Set once the node receives the channel and knows its starting offset.
    ready: OnceCell<()>,
}

pub(crate) struct Hub {
    channels: DashMap<Arc<str>, Arc<Slot>>,
    /// Every live connection by id: for logout (close a session's sockets) and shutdown.
    connections: DashMap<u64, Arc<ConnHandle>>,
    next_conn: AtomicU64,
    /// The block lists of users with connections here ([`blocks`]).
    block_lists: blocks::BlockLists,
    store: Store,
    /// Hub → bus: interest changes. `None` with the in-process bus, which needs no upstream.
    interest: Option<mpsc::UnboundedSender<Interest>>,
    gap_timeout: Duration,
}

impl Hub {
    pub(crate) fn new(
        store: Store,
        interest: Option<mpsc::UnboundedSender<Interest>>,
        gap_timeout: Duration,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            channels: DashMap::new(),
            connections: DashMap::new(),
            next_conn: AtomicU64::new(1),
            block_lists: Default::default(),
            store,
            interest,
            gap_timeout,
        })
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn attach(&self, conn: &Arc<ConnHandle>) {
        self.connections.insert(conn.conn_id, conn.clone());
        metrics::CONNECTIONS.increment(1.0);
    }

    pub(crate) fn detach(&self, conn_id: u64) {
        if self.connections.remove(&conn_id).is_some() {
            metrics::CONNECTIONS.decrement(1.0);
        }
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Closes every connection of a revoked login session (logout, refresh-token reuse) with
    /// 4001.
    pub(crate) fn close_session(&self, session_id: &str) {
        for conn in self.connections.iter() {
            if &*conn.principal.session_id == session_id {
                conn.close(CloseReason::SessionRevoked);
            }
        }
    }

    /// Queues an event frame about `user` (presence, typing, a read receipt) to every local
    /// subscriber of `channel` except those whose user blocked `user`, encoded once per
    /// encoding. Events carry no offset: they are not part of the channel's sequence.
    pub(crate) fn broadcast(
        &self,
        channel: &str,
        user: &str,
        frame: &switchboard_protocol::ServerFrame,
    ) {
        let Some(slot) = self.channels.get(channel).map(|s| s.clone()) else {
            return;
        };
        let frames = PerEncoding::default();
        let state = slot.state.lock();
        for sub in &state.subscribers {
            if !sub.conn.hides(user) {
                sub.conn.send_shared(&frames, frame);
            }
        }
    }

    /// Runs `f` on every connection (shutdown drains them all).
    pub(crate) fn for_each_connection(&self, mut f: impl FnMut(&Arc<ConnHandle>)) {
        for conn in self.connections.iter() {
            f(&conn);
        }
    }

    /// Delivers a committed message to local subscribers. Called by the bus; never waits.
    pub(crate) fn deliver(self: &Arc<Self>, d: Arc<Delivery>) {
        let Some(slot) = self.channels.get(&d.msg.channel).map(|s| s.clone()) else {
            return; // no local subscriber
        };
        let channel = d.msg.channel.clone();
        let gap = slot.state.lock().offer(d);
        self.handle_gap(channel, &slot, gap);
    }

    /// Delivers a committed batch (in commit order): each channel's messages in it reach each of
    /// its subscribers in one write. Called by the local bus; never waits.
    pub(crate) fn deliver_batch(self: &Arc<Self>, mut batch: Vec<StoredMessage>) {
        // Stable: each channel's messages keep their commit order.
        batch.sort_by(|a, b| a.channel.cmp(&b.channel));
        let mut batch = batch.into_iter().peekable();
        while let Some(first) = batch.next() {
            let channel = first.channel.clone();
            let mut run = vec![Arc::new(Delivery::new(first))];
            while let Some(next) = batch.next_if(|m| m.channel == channel) {
                run.push(Arc::new(Delivery::new(next)));
            }
            let Some(slot) = self.channels.get(&channel).map(|s| s.clone()) else {
                continue; // no local subscriber
            };
            let gap = slot.state.lock().offer_all(run);
            self.handle_gap(channel, &slot, gap);
        }
    }

    /// Ends the subscriptions to `channel` of every local connection whose user `refused`
    /// names (a room's rules changed), under the channel's lock: nothing more of the channel
    /// reaches them, including what their replay still had to send. Returns their connections so
    /// the caller can tell them why.
    pub(crate) fn evict(
        &self,
        channel: &str,
        refused: impl Fn(&Principal) -> bool,
    ) -> Vec<Arc<ConnHandle>> {
        let Some(slot) = self.channels.get(channel).map(|s| s.clone()) else {
            return Vec::new();
        };
        let gone: Vec<Arc<ConnHandle>> = {
            let mut state = slot.state.lock();
            let gone: Vec<Arc<ConnHandle>> = state
                .subscribers
                .iter()
                .filter(|s| refused(&s.conn.principal))
                .map(|s| s.conn.clone())
                .collect();
            for conn in &gone {
                state.remove(conn.conn_id);
            }
            gone
        };
        if !gone.is_empty() {
            metrics::SUBSCRIPTIONS.decrement(gone.len() as f64);
            metrics::EVICTIONS.increment(gone.len() as u64);
            let channel: Arc<str> = channel.into();
            self.drop_if_empty(&channel);
        }
        gone
    }

    /// Removes the connection's subscription; drops the channel when it was the last one.
    pub(crate) fn unsubscribe(&self, channel: &Arc<str>, conn_id: u64) -> bool {
        let Some(slot) = self.channels.get(channel).map(|s| s.clone()) else {
            return false;
        };
        let removed = slot.state.lock().remove(conn_id);
        if removed {
            metrics::SUBSCRIPTIONS.decrement(1.0);
        }
        self.drop_if_empty(channel);
        removed
    }

    /// Drops `channel` when its last subscriber is gone (and tells the bus).
    fn drop_if_empty(&self, channel: &Arc<str>) {
        self.drop_empty_slot(channel, |slot| slot.ready.initialized());
    }

    /// Drops a channel slot whose start failed (the bus did not confirm, storage failed) unless
    /// someone subscribed meanwhile: a failed first subscribe must leave nothing behind, or every
    /// refused name would stay in the hub (and be resubscribed at every bus reconnect). A
    /// subscriber starting it again meanwhile finds it dead and takes a fresh slot.
    fn drop_unstarted(&self, channel: &Arc<str>, slot: &Arc<Slot>) {
        self.drop_empty_slot(channel, |current| {
            Arc::ptr_eq(current, slot) && !current.ready.initialized()
        });
    }

    /// Removes `channel`'s slot if `which` picks it and it has no subscriber (marking it dead,
    /// so a subscriber holding it takes a fresh one), and tells the bus.
    fn drop_empty_slot(&self, channel: &Arc<str>, which: impl Fn(&Arc<Slot>) -> bool) {
        let dropped = self
            .channels
            .remove_if(channel, |_, slot| {
                if !which(slot) {
                    return false;
                }
                let mut state = slot.state.lock();
                let empty = state.subscribers.is_empty();
                state.dead |= empty;
                empty
            })
            .is_some();
        if dropped {
            if let Some(interest) = &self.interest {
                let _ = interest.send(Interest::Unsubscribe(channel.clone()));
            }
        }
    }

    /// Whether this node has local interest in `channel`.
    pub(crate) fn has_channel(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// Channels this node currently has local subscribers for (the bus resubscribes them after a
    /// reconnect and repairs each from storage).
    pub(crate) fn channels(&self) -> Vec<Arc<str>> {
        self.channels.iter().map(|e| e.key().clone()).collect()
    }

    fn slot(&self, channel: &Arc<str>) -> Arc<Slot> {
        self.channels
            .entry(channel.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: Mutex::new(ChannelState::default()),
                    ready: OnceCell::new(),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;

    use tokio::sync::mpsc;

    use super::*;

    struct Admit;

    impl Admission for Admit {
        fn unchanged(&self) -> bool {
            true
        }
        fn recheck(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
            Box::pin(async { true })
        }
    }

    /// F23: a first subscribe whose start fails (here the bus is gone) leaves no channel slot
    /// behind; before, every refused name stayed in the hub for good.
    #[tokio::test]
    async fn a_failed_first_subscribe_leaves_no_channel_behind() {
        let dir = std::env::temp_dir().join(format!("sb-hub-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(None, &dir, 1).await.unwrap();
        let (interest, gone) = mpsc::unbounded_channel();
        drop(gone);
        let hub = Hub::new(store.clone(), Some(interest), Duration::from_millis(50));
        let (ours, _theirs) = tokio::io::duplex(1 << 16);
        let conn = ConnHandle::for_tests(1, 1 << 20, ours);
        for n in 0..50 {
            let channel: Arc<str> = format!("room:r{n}").into();
            let result = hub.subscribe(&channel, &conn, None, &Admit, |_| {}).await;
            assert!(matches!(result, Err(SubscribeError::Bus)), "{result:?}");
        }
        assert!(hub.channels().is_empty(), "{:?}", hub.channels());
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
