//! Who may read (subscribe, history) and publish on which channel. Every subscribe and publish,
//! over WebSocket or HTTP, asks here; [`watch`] keeps live subscriptions within the rules when
//! they change.
//!
//! - `room:<name>`: a room never created is public; a public room is open to any logged-in user;
//!   a private room to its members only. Names are one room whatever their case: `room:General`
//!   is refused once `general` exists.
//! - `user:<id>` and `feed:<id>`: only that user may read; only the server publishes.
//!
//! Decisions are cached per room (created or not). Every change of a room's rules, made here or
//! on another node, replaces its entry and bumps [`Authz::generation`]: caches built on earlier
//! decisions (a connection's publish rights) compare generations and ask again when it moved.

pub(crate) mod watch;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use switchboard_protocol::{Channel, ErrorCode};

use crate::auth::Principal;
use crate::store::members::Restrictions;
use crate::store::{now_ms, Store, StoreError};

/// Rooms whose rules are cached at once, and member ids across them; past either the cache
/// starts over (an entry is one storage read away). Bounds memory against clients that probe
/// many names, and against many large private rooms.
const MAX_CACHED_ROOMS: usize = 100_000;
const MAX_CACHED_MEMBERS: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessError {
    #[error("{0}")]
    Forbidden(String),
    #[error("storage is unavailable")]
    Storage(#[from] StoreError),
}

impl AccessError {
    /// The wire code of this error (see [`ErrorCode`]). A storage failure is `unavailable`
    /// on both transports: the check could not be made, and may be retried.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            AccessError::Forbidden(_) => ErrorCode::Forbidden,
            AccessError::Storage(_) => ErrorCode::Unavailable,
        }
    }
}

/// A room's access rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoomAcl {
    /// Never created: open to every logged-in user.
    Uncreated,
    Public(Restrictions),
    /// Members only (user ids).
    Private(HashSet<String>, Restrictions),
    /// The name differs only in case from the created room `0`: refused, so no lookalike
    /// channel can stand beside a room.
    Alias(String),
}

impl RoomAcl {
    /// Public rules without restrictions (a room just created public).
    pub(crate) fn public() -> RoomAcl {
        RoomAcl::Public(Restrictions::default())
    }

    /// Whether `user_id` may read under these rules; the refusal says why.
    pub(crate) fn check(&self, user_id: &str) -> Result<(), AccessError> {
        let restrictions = match self {
            RoomAcl::Uncreated => return Ok(()),
            RoomAcl::Alias(name) => {
                return Err(AccessError::Forbidden(format!(
                    "room names ignore case: this room is room:{name}"
                )))
            }
            RoomAcl::Public(r) | RoomAcl::Private(_, r) => r,
        };
        if restrictions.deleted {
            return Err(AccessError::Forbidden("this room was deleted".into()));
        }
        if restrictions.banned.contains(user_id) {
            return Err(AccessError::Forbidden(
                "you are banned from this room".into(),
            ));
        }
        match self {
            RoomAcl::Private(members, _) if !members.contains(user_id) => Err(
                AccessError::Forbidden("this room is private to its members".into()),
            ),
            _ => Ok(()),
        }
    }

    /// Whether `user_id` may publish at `now_ms`: they may read, the room is not archived and
    /// they are not timed out.
    pub(crate) fn check_publish(&self, user_id: &str, now_ms: i64) -> Result<(), AccessError> {
        self.check(user_id)?;
        let (RoomAcl::Public(r) | RoomAcl::Private(_, r)) = self else {
            return Ok(());
        };
        if r.archived {
            return Err(AccessError::Forbidden(
                "this room is archived (read-only)".into(),
            ));
        }
        if r.blocked {
            return Err(AccessError::Forbidden(
                "one of you blocked the other: this conversation is read-only".into(),
            ));
        }
        match r.timeouts.get(user_id) {
            Some(&until) if until > now_ms => Err(AccessError::Forbidden(format!(
                "you are timed out in this room until {}",
                crate::store::messages::rfc3339(until)
            ))),
            _ => Ok(()),
        }
    }
}

pub(crate) struct Authz {
    store: Store,
    /// Keyed by the lower-cased name: every case variant of a name shares one entry, so a change
    /// to `General` also reaches whoever asks about `general`.
    rooms: DashMap<String, Cached>,
    /// Member ids held by `rooms`, for its bound.
    members: AtomicUsize,
    /// Bumped by every change of any room's rules (see the module docs).
    generation: AtomicU64,
}

/// A cached decision basis: the rules of the room created under `name` (or `Uncreated`).
#[derive(Clone)]
struct Cached {
    /// The name as created (as asked, for an uncreated one).
    name: String,
    acl: Arc<RoomAcl>,
}

impl Cached {
    /// The rules for `room` (a case variant of this entry's name, or the name itself).
    fn rules_for(&self, room: &str) -> Arc<RoomAcl> {
        let created = !matches!(*self.acl, RoomAcl::Uncreated);
        if created && self.name != room {
            Arc::new(RoomAcl::Alias(self.name.clone()))
        } else {
            self.acl.clone()
        }
    }
}

impl Authz {
    pub(crate) fn new(store: Store) -> Authz {
        Authz {
            store,
            rooms: DashMap::new(),
            members: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Moves with every change of any room's rules: a cached decision made at an earlier
    /// generation must be asked again.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// May `who` subscribe to / read the history of `channel`?
    pub(crate) async fn can_read(
        &self,
        who: &Principal,
        channel: &Channel,
    ) -> Result<(), AccessError> {
        match channel {
            Channel::Room(name) => self.room_access(who, name).await,
            Channel::User(id) | Channel::Feed(id) if **id == *who.user_id => Ok(()),
            Channel::User(_) => Err(AccessError::Forbidden(
                "only its owner may read a user: channel".into(),
            )),
            Channel::Feed(_) => Err(AccessError::Forbidden(
                "only its owner may read a feed: channel".into(),
            )),
        }
    }

    /// May `who` publish to `channel`?
    pub(crate) async fn can_publish(
        &self,
        who: &Principal,
        channel: &Channel,
    ) -> Result<(), AccessError> {
        match channel {
            Channel::Room(name) => self.room(name).await?.check_publish(&who.user_id, now_ms()),
            Channel::User(_) | Channel::Feed(_) => Err(AccessError::Forbidden(
                "only the server publishes to this channel".into(),
            )),
        }
    }

    async fn room_access(&self, who: &Principal, room: &str) -> Result<(), AccessError> {
        self.room(room).await?.check(&who.user_id)
    }

    /// May the user `user_id` read (and publish to) `room`? Also asked for users other than the
    /// caller: a mention notifies only users who may read the room.
    pub(crate) async fn may_read_room(
        &self,
        user_id: &str,
        room: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.room(room).await?.check(user_id).is_ok())
    }

    /// The rules of `room`, from the cache or storage.
    pub(crate) async fn room(&self, room: &str) -> Result<Arc<RoomAcl>, StoreError> {
        let key = room.to_ascii_lowercase();
        if let Some(cached) = self.rooms.get(&key) {
            return Ok(cached.rules_for(room));
        }
        // A change that lands while storage is read makes this answer stale: it is used for this
        // one decision, and cached only if no change came in between and none was cached since
        // (checked under the entry's lock, so a newer entry is never overwritten).
        let generation = self.generation();
        let (name, acl) = self.load_named(room).await?;
        let cached = Cached {
            name,
            acl: Arc::new(acl),
        };
        let rules = cached.rules_for(room);
        self.make_room();
        if let dashmap::Entry::Vacant(slot) = self.rooms.entry(key) {
            if self.generation() == generation {
                self.members
                    .fetch_add(members_in(&cached.acl), Ordering::Relaxed);
                slot.insert(cached);
            }
        }
        Ok(rules)
    }

    /// Records that the room created as `room` now has the rules `acl` (it was created here, or
    /// another node or the storage poll said so), moving the generation.
    pub(crate) fn set_room(&self, room: &str, acl: Arc<RoomAcl>) {
        self.make_room();
        self.members.fetch_add(members_in(&acl), Ordering::Relaxed);
        let old = self.rooms.insert(
            room.to_ascii_lowercase(),
            Cached {
                name: room.to_owned(),
                acl,
            },
        );
        if let Some(old) = old {
            let n = members_in(&old.acl);
            let _ = self
                .members
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                    Some(m.saturating_sub(n))
                });
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Starts the cache over when it is at its bound.
    fn make_room(&self) {
        if self.rooms.len() >= MAX_CACHED_ROOMS
            || self.members.load(Ordering::Relaxed) >= MAX_CACHED_MEMBERS
        {
            self.rooms.clear();
            self.members.store(0, Ordering::Relaxed);
        }
    }

    /// Reads from storage the rules of the room named `room` in any case: the name it was
    /// created with (`room` itself when it was not) and its rules.
    pub(crate) async fn load_named(&self, room: &str) -> Result<(String, RoomAcl), StoreError> {
        let Some(found) = self.store.room_ignoring_case(room).await? else {
            // Direct-message names are never open rooms: nobody may write into a pair's room
            // before the pair opens it (the history would be handed to them).
            if is_dm_name(room) {
                return Ok((
                    room.to_owned(),
                    RoomAcl::Private(HashSet::new(), Restrictions::default()),
                ));
            }
            return Ok((room.to_owned(), RoomAcl::Uncreated));
        };
        let restrictions = self.store.restrictions(&found.name).await?;
        if !found.private {
            return Ok((found.name, RoomAcl::Public(restrictions)));
        }
        let members = self
            .store
            .room_members(&found.name)
            .await?
            .into_iter()
            .map(|member| member.id)
            .collect();
        Ok((found.name, RoomAcl::Private(members, restrictions)))
    }
}

/// Whether `room` is in the namespace of direct messages (`dm.`, any case), which only
/// `POST /api/v1/dms` creates.
pub(crate) fn is_dm_name(room: &str) -> bool {
    room.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("dm."))
}

/// User ids an entry holds, for the cache's bound.
fn members_in(acl: &RoomAcl) -> usize {
    match acl {
        RoomAcl::Private(members, r) => members.len() + r.banned.len() + r.timeouts.len(),
        RoomAcl::Public(r) => r.banned.len() + r.timeouts.len(),
        _ => 0,
    }
}
