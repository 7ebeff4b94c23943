//! Keeps live subscriptions within a room's rules when they change (a room created, made
//! private, a member removed): the node where the change is made applies it before answering,
//! tells the others with a control event that carries the new rules, and every node polls storage
//! for changes it missed on the bus. Applying ends every local subscription the new rules refuse
//! at once, with an `error` frame `forbidden` naming the channel, and moves the decision cache's
//! generation so cached publish rights are asked again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::{ChannelKind, ErrorCode, ErrorFrame, ServerFrame};

use super::{Authz, RoomAcl};

use crate::hub::Hub;
use crate::store::{now_ms, Store, StoreError};

/// How often each node reads which rooms' rules changed: the bound on how long a change whose
/// control event was lost takes to reach that node's subscriptions.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(5);

/// Applies `acl` as the rules of the room created as `room` on this node: the decision cache
/// first (so a subscribe that races this sees the new rules when the hub asks it again), then
/// every local subscription the rules refuse ends, on the room's channel and on every channel
/// whose name differs from it only in case (refused from now on).
pub(crate) fn apply(authz: &Authz, hub: &Hub, room: &str, acl: RoomAcl) {
    let acl = Arc::new(acl);
    authz.set_room(room, acl.clone());
    let channel = ChannelKind::Room.name(room);
    let variants = hub
        .channels()
        .into_iter()
        .filter(|c| c.eq_ignore_ascii_case(&channel));
    for variant in variants {
        let rules = if *variant == *channel {
            acl.clone()
        } else {
            Arc::new(RoomAcl::Alias(room.to_owned()))
        };
        end_refused(hub, &variant, &rules);
    }
}

/// Ends every local subscription to `channel` that `rules` refuse, telling each connection why.
fn end_refused(hub: &Hub, channel: &Arc<str>, rules: &RoomAcl) {
    let evicted = hub.evict(channel, |who| rules.check(&who.user_id).is_err());
    if evicted.is_empty() {
        return;
    }
    tracing::info!(%channel, count = evicted.len(), "access withdrawn: subscriptions ended");
    for conn in evicted {
        let message = match rules.check(&conn.principal.user_id) {
            Err(e) => e.to_string(),
            Ok(()) => continue,
        };
        let mut error = ErrorFrame::new(None, ErrorCode::Forbidden, message);
        error.channel = Some(channel.to_string());
        let _ = conn.send(&ServerFrame::Error(error));
        conn.subscription_ended(channel.clone());
    }
}

/// Reads `room`'s rules from storage and applies them.
pub(crate) async fn reload(authz: &Authz, hub: &Hub, room: &str) -> Result<(), StoreError> {
    let (name, acl) = authz.load_named(room).await?;
    apply(authz, hub, &name, acl);
    Ok(())
}

/// The safety net for lost control events: every [`POLL_EVERY`], reloads the rooms whose rules
/// changed in storage since the last look (with overlap, so nothing falls between two looks;
/// a change already applied is not applied again).
pub(crate) async fn poll(store: Store, authz: Arc<Authz>, hub: Arc<Hub>) {
    let overlap = 2 * POLL_EVERY.as_millis() as i64;
    let mut since = now_ms();
    // Room → the change time already applied, for changes inside the overlap.
    let mut applied: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let now = now_ms();
        let horizon = since - overlap;
        let changed = match store.rooms_changed_since(horizon).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = ?e, "checking rooms for access changes failed");
                continue;
            }
        };
        for (room, at) in changed {
            if applied.get(&room) == Some(&at) {
                continue;
            }
            match reload(&authz, &hub, &room).await {
                Ok(()) => {
                    applied.insert(room, at);
                }
                Err(e) => tracing::warn!(error = ?e, %room, "reloading a room's rules failed"),
            }
        }
        applied.retain(|_, at| *at >= horizon);
        since = now;
    }
}
