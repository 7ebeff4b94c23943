//! Subscribing, with `since` replay: a connection's first subscription to a channel starts the
//! node receiving it, and stored history is replayed before live delivery takes over, with no
//! gap and no duplicate (see [`Hub::subscribe`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::channel::Subscriber;
use super::{Delivery, Hub, Interest, Slot, BUS_CONFIRM_TIMEOUT, REPLAY_BYTES, REPLAY_PAGE};
use crate::metrics;
use crate::store::StoreError;
use crate::ws::conn::ConnHandle;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscribeError {
    #[error("storage is unavailable")]
    Storage(#[from] StoreError),
    #[error("the connection is closing")]
    Closed,
    #[error("the bus did not confirm the subscription")]
    Bus,
    /// The channel's access rules changed while the subscription was set up, and no longer
    /// admit this connection's user.
    #[error("access to this channel was withdrawn")]
    Forbidden,
    /// The hub ended the subscription meanwhile (see [`Hub::evict`]); the connection was told.
    #[error("the subscription was ended")]
    Evicted,
}

/// What the hub asks of the caller's authorisation while it sets a subscription up: whether the
/// decision the subscribe was allowed under still stands (no rule changed since), and when one
/// did, the decision made again. The hub asks before the subscriber goes live and before every
/// stored message it replays, so a rule change racing the subscribe cannot leak a message.
pub(crate) trait Admission: Send + Sync {
    fn unchanged(&self) -> bool;
    fn recheck(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

impl Hub {
    /// Subscribes `conn` to `channel`. `registered` is called with the channel's current last
    /// offset as soon as the subscription is in place and before anything of the channel is
    /// queued (the session queues its ack there). With `since`, every stored message after it is
    /// queued first, then live delivery continues from where the replay ended.
    ///
    /// Hand-over: the subscriber is registered with a `held` buffer that collects live messages;
    /// history is then read from storage (everything up to the position at registration is
    /// already there); finally, under the channel lock, held messages after the last replayed
    /// offset are queued and the subscriber turns live. If the held buffer does not continue the
    /// replay (it overflowed), storage is read again first.
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        channel: &Arc<str>,
        conn: &Arc<ConnHandle>,
        since: Option<u64>,
        admission: &dyn Admission,
        registered: impl FnOnce(u64),
    ) -> Result<(), SubscribeError> {
        let (slot, from, checked) = self
            .register(channel, conn, since, admission, registered)
            .await?;
        if !checked && !admission.recheck().await {
            self.unsubscribe(channel, conn.conn_id);
            return Err(SubscribeError::Forbidden);
        }
        match from {
            None => Ok(()),
            Some(last_sent) => {
                self.replay(channel, &slot, conn, last_sent, admission)
                    .await
            }
        }
    }

    /// Puts the subscriber in place, under the channel's lock, and calls `registered` there.
    /// Returns the slot, the offset to replay after (`None`: the subscriber is live at once),
    /// and whether the caller's access decision still stands.
    async fn register(
        self: &Arc<Self>,
        channel: &Arc<str>,
        conn: &Arc<ConnHandle>,
        since: Option<u64>,
        admission: &dyn Admission,
        registered: impl FnOnce(u64),
    ) -> Result<(Arc<Slot>, Option<u64>, bool), SubscribeError> {
        loop {
            let slot = self.slot(channel);
            let started = slot
                .ready
                .get_or_try_init(|| self.start_receiving(channel, &slot))
                .await;
            if let Err(e) = started {
                self.drop_unstarted(channel, &slot);
                return Err(e);
            }
            let mut state = slot.state.lock();
            if state.dead {
                continue; // removed while we waited for it; take the fresh one
            }
            let position = state.cursor.unwrap_or(0);
            let last_sent = since.unwrap_or(position);
            // Live messages wait in `held` while stored ones are replayed, and while a rule
            // change since the caller's access check is looked at again.
            let checked = admission.unchanged();
            let held = last_sent < position || !checked;
            if state.remove(conn.conn_id) {
                metrics::SUBSCRIPTIONS.decrement(1.0); // replaced just below
            }
            state.add(Subscriber {
                conn: conn.clone(),
                last_sent,
                held: held.then(Vec::new),
            });
            metrics::SUBSCRIPTIONS.increment(1.0);
            // Still under the channel lock: no live message can be queued ahead of the ack.
            registered(position);
            drop(state);
            return Ok((slot.clone(), held.then_some(last_sent), checked));
        }
    }

    /// Replays what is stored after `last_sent`, then hands over to live delivery: the held
    /// messages that continue the replay are queued and the subscriber turns live, under the
    /// channel's lock. If they do not continue it (the held buffer overflowed, or lags
    /// storage), storage is read on first.
    async fn replay(
        &self,
        channel: &Arc<str>,
        slot: &Slot,
        conn: &Arc<ConnHandle>,
        mut last_sent: u64,
        admission: &dyn Admission,
    ) -> Result<(), SubscribeError> {
        loop {
            let page = self
                .store
                .messages_after(channel, last_sent, REPLAY_PAGE, REPLAY_BYTES)
                .await?;
            let full = page.more;
            metrics::MESSAGES_OUT.increment(page.messages.len() as u64);
            for msg in page.messages {
                conn.wait_for_capacity()
                    .await
                    .map_err(|_| SubscribeError::Closed)?;
                if !admission.unchanged() && !admission.recheck().await {
                    self.unsubscribe(channel, conn.conn_id);
                    return Err(SubscribeError::Forbidden);
                }
                if !slot.state.lock().has(conn.conn_id) {
                    return Err(SubscribeError::Evicted);
                }
                last_sent = msg.offset;
                if let Some(frame) = Delivery::new(msg).frame_for(conn) {
                    conn.push(frame).map_err(|_| SubscribeError::Closed)?;
                }
            }
            if full {
                continue;
            }
            let mut state = slot.state.lock();
            let cursor = state.cursor.unwrap_or(0);
            let Some(sub) = state.subscriber_mut(conn.conn_id) else {
                return Err(SubscribeError::Evicted); // unsubscribed or evicted meanwhile
            };
            let held = sub.held.as_ref().map(|h| h.first().map(|d| d.offset()));
            let continues = match held {
                Some(Some(first)) => first <= last_sent + 1,
                Some(None) | None => cursor <= last_sent,
            };
            if !continues {
                continue; // the held buffer overflowed or lags storage: read on
            }
            for d in sub.held.take().unwrap_or_default() {
                if d.offset() > last_sent {
                    if let Some(frame) = d.frame(conn.encoding) {
                        if conn.push(frame).is_err() {
                            return Err(SubscribeError::Closed);
                        }
                    }
                    last_sent = d.offset();
                }
            }
            sub.last_sent = last_sent;
            return Ok(());
        }
    }

    /// First local interest in a channel: make sure the bus carries it, then read where the
    /// channel stands. Messages arriving in between wait in the sequencer.
    async fn start_receiving(
        self: &Arc<Self>,
        channel: &Arc<str>,
        slot: &Arc<Slot>,
    ) -> Result<(), SubscribeError> {
        if let Some(interest) = &self.interest {
            let (done, confirmed) = oneshot::channel();
            interest
                .send(Interest::Subscribe(channel.clone(), done))
                .map_err(|_| SubscribeError::Bus)?;
            // While the bus is down a subscribe fails fast with `unavailable` instead of hanging.
            match tokio::time::timeout(BUS_CONFIRM_TIMEOUT, confirmed).await {
                Ok(Ok(())) => {}
                _ => return Err(SubscribeError::Bus),
            }
        }
        let last = self.store.last_offset(channel).await?;
        let gap = slot.state.lock().init(last);
        self.handle_gap(channel.clone(), slot, gap);
        Ok(())
    }
}
