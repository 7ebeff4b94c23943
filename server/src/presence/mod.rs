//! Presence in `room:` channels: who is online (each user once, however many connections and
//! nodes), join/leave events to the room's subscribers, and a paginated listing.
//!
//! A user is online in a room while at least one of their connections is subscribed to it, on
//! any node. Each node counts its own connections per (room, user) and tells the registry only
//! when a user appears on or disappears from this node: in memory for a single node, in Redis
//! for a cluster ([`redis`]), where a crashed node's users expire after `PRESENCE_TTL`.
//!
//! Rooms with more than `presence_events_max` online users get no join/leave events (which would
//! cost every member a frame for every other member's arrival: quadratic traffic); clients of
//! such rooms read counts and pages with `presence` requests instead.

mod local;
pub(crate) mod redis;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use switchboard_protocol::{ChannelKind, PresencePage, ServerFrame, UserInfo};

use crate::auth::Principal;
use crate::bus::{Bus, ControlEvent};
use crate::hub::Hub;

/// How long a node's claim on a user's presence lives without a heartbeat: the bound on how long
/// a crashed node's users stay "online" (plus one sweep interval).
pub(crate) const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// Heartbeat and sweep interval of a cluster node.
pub(crate) const PRESENCE_TICK: Duration = Duration::from_secs(5);

/// Where presence is kept: this process's memory (one node), or Redis (a cluster).
pub(crate) enum Backend {
    Local(local::LocalPresence),
    Redis(redis::RedisPresence),
}

/// (room channel, user id).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct RoomUser {
    pub channel: Arc<str>,
    pub user_id: Arc<str>,
}

/// This node's hold on a user in a room: how many of their connections are subscribed.
type Held = u32;

pub(crate) struct Presence {
    registry: Backend,
    held: DashMap<RoomUser, Held>,
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    events_max: u64,
}

impl Presence {
    pub(crate) fn new(
        registry: Backend,
        hub: Arc<Hub>,
        bus: Arc<dyn Bus>,
        events_max: u64,
    ) -> Arc<Presence> {
        Arc::new(Presence {
            registry,
            held: DashMap::new(),
            hub,
            bus,
            events_max,
        })
    }

    /// A connection of `who` subscribed to room `channel`.
    pub(crate) async fn enter(&self, channel: &Arc<str>, who: &Principal) {
        let key = RoomUser {
            channel: channel.clone(),
            user_id: who.user_id.clone(),
        };
        let first = {
            let mut entry = self.held.entry(key).or_insert(0);
            *entry += 1;
            *entry == 1
        };
        if !first {
            return;
        }
        let came_online = match &self.registry {
            Backend::Local(r) => Some(r.claim(channel, &who.user_id, &who.username)),
            Backend::Redis(r) => r.claim(channel, &who.user_id, &who.username).await,
        };
        if let Some(count) = came_online {
            self.emit(channel, &who.user_id, &who.username, true, count);
        }
    }

    /// A connection of `who` left room `channel` (unsubscribed or closed).
    pub(crate) async fn leave(&self, channel: &Arc<str>, who: &Principal) {
        let key = RoomUser {
            channel: channel.clone(),
            user_id: who.user_id.clone(),
        };
        let last = self.held.remove_if_mut(&key, |_, held| {
            *held = held.saturating_sub(1);
            *held == 0
        });
        if last.is_none() {
            return;
        }
        let went_offline = match &self.registry {
            Backend::Local(r) => r.release(channel, &who.user_id),
            Backend::Redis(r) => r.release(channel, &who.user_id).await,
        };
        if let Some(count) = went_offline {
            self.emit(channel, &who.user_id, &who.username, false, count);
        }
    }

    /// A page of the room's online users.
    pub(crate) async fn page(
        &self,
        channel: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<PresencePage> {
        match &self.registry {
            Backend::Local(r) => Ok(r.page(channel, cursor, limit)),
            Backend::Redis(r) => r.page(channel, cursor, limit).await,
        }
    }

    /// Cluster upkeep, every `PRESENCE_TICK`: renew this node's claims, and expire users whose
    /// node stopped renewing (crashed), announcing their leave.
    pub(crate) async fn maintain(self: Arc<Self>) {
        let Backend::Redis(registry) = &self.registry else {
            return;
        };
        loop {
            tokio::time::sleep(PRESENCE_TICK).await;
            let held: Vec<RoomUser> = self.held.iter().map(|e| e.key().clone()).collect();
            if let Err(e) = registry.refresh(&held).await {
                tracing::warn!(error = ?e, "renewing presence failed");
            }
            for channel in self
                .hub
                .channels()
                .into_iter()
                .filter(|c| ChannelKind::Room.of(c))
            {
                match registry.sweep(&channel).await {
                    Ok((gone, count)) => {
                        for user in gone {
                            self.emit(&channel, &user.id, &user.username, false, count);
                        }
                    }
                    Err(e) => tracing::warn!(error = ?e, "expiring presence failed"),
                }
            }
        }
    }

    fn emit(&self, channel: &str, user_id: &str, username: &str, joined: bool, online: u64) {
        // A leave is judged by the room's size before it (so the last member's leave of a large
        // room still counts as large).
        let size = if joined { online } else { online + 1 };
        if size > self.events_max {
            return;
        }
        let user = UserInfo {
            id: user_id.to_owned(),
            username: username.to_owned(),
        };
        self.hub.broadcast(
            channel,
            user_id,
            &event_frame(channel.to_owned(), user, joined),
        );
        self.bus.control(ControlEvent::Presence {
            channel: channel.to_owned(),
            user_id: user_id.to_owned(),
            username: username.to_owned(),
            joined,
        });
    }
}

/// The `join` (or `leave`) frame of `user` in room `channel`, as this node's subscribers get it,
/// whichever node saw the change.
pub(crate) fn event_frame(channel: String, user: UserInfo, joined: bool) -> ServerFrame {
    if joined {
        ServerFrame::Join { channel, user }
    } else {
        ServerFrame::Leave { channel, user }
    }
}
