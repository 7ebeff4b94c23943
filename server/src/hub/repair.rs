//! Gap repair: the sequencer holds messages that arrive ahead of a missing offset, and this
//! reads the missing ones from storage (after a wait, in case the bus only reordered them), or
//! everything after the cursor once the bus may have lost messages (a reconnect).

use std::sync::Arc;
use std::time::Duration;

use super::channel::Gap;
use super::{Delivery, Hub, Slot, REPLAY_BYTES, REPLAY_PAGE};
use crate::metrics;

impl Hub {
    pub(super) fn handle_gap(self: &Arc<Self>, channel: Arc<str>, slot: &Slot, gap: Gap) {
        let delay = match gap {
            Gap::None => return,
            Gap::Wait => self.gap_timeout,
            Gap::RepairNow => Duration::ZERO,
        };
        {
            let mut state = slot.state.lock();
            if state.repair_scheduled {
                return;
            }
            state.repair_scheduled = true;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            hub.repair(channel, Repair::Gap).await;
        });
    }

    /// Reads everything after the channel's cursor from storage and delivers it (after the bus
    /// may have lost messages, e.g. across a reconnect).
    pub(crate) fn resync(self: &Arc<Self>, channel: Arc<str>) {
        let hub = self.clone();
        tokio::spawn(async move { hub.repair(channel, Repair::All).await });
    }

    /// Reads missing offsets from storage and offers them to the sequencer: in `Repair::Gap` mode
    /// until no hole is left before the early messages, in `Repair::All` mode everything after the
    /// cursor. Storage has every offset the bus can announce, because a channel's offsets are
    /// committed in order before they are published.
    async fn repair(self: Arc<Self>, channel: Arc<str>, mode: Repair) {
        loop {
            let Some(slot) = self.channels.get(&channel).map(|s| s.clone()) else {
                return;
            };
            let after = {
                let mut state = slot.state.lock();
                if mode == Repair::Gap && state.missing().is_none() {
                    state.repair_scheduled = false;
                    return;
                }
                match state.cursor {
                    Some(cursor) => cursor,
                    None => return,
                }
            };
            let page = match self
                .store
                .messages_after(&channel, after, REPLAY_PAGE, REPLAY_BYTES)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = ?e, %channel, "repair read failed; retrying");
                    tokio::time::sleep(self.gap_timeout).await;
                    continue;
                }
            };
            let read = page.messages.len();
            if read > 0 {
                metrics::GAP_REPAIRS.increment(1);
            }
            {
                let mut state = slot.state.lock();
                for msg in page.messages {
                    state.offer(Arc::new(Delivery::new(msg)));
                }
            }
            if mode == Repair::All && !page.more {
                return;
            }
            if read == 0 {
                // The bus announced an offset storage does not show yet (a lagging replica);
                // try again shortly rather than spin.
                tokio::time::sleep(self.gap_timeout).await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    /// Fill the hole before the sequencer's early messages.
    Gap,
    /// Read everything after the cursor (after the bus may have lost messages).
    All,
}
