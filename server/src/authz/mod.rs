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

pub mod watch;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use switchboard_protocol::{Channel, ErrorCode};

use crate::auth::Principal;
use crate::store::{Store, StoreError};

/// Rooms whose rules are cached at once; past it the cache starts over (an entry is one
/// storage read away). Bounds memory against clients that probe many names.
const MAX_CACHED_ROOMS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Forbidden(String),
    #[error("storage is unavailable")]
    Storage(#[from] StoreError),
}

impl AccessError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AccessError::Forbidden(_) => ErrorCode::Forbidden,
            AccessError::Storage(_) => ErrorCode::Unavailable,
        }
    }
}

/// A room's access rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAcl {
    /// Never created: open to every logged-in user.
    Uncreated,
    Public,
    /// Members only (user ids).
    Private(HashSet<String>),
    /// The name differs only in case from the created room `0`: refused, so no lookalike
    /// channel can stand beside a room.
    Alias(String),
}

impl RoomAcl {
    /// Whether `user_id` may read and publish under these rules; the refusal says why.
    pub fn check(&self, user_id: &str) -> Result<(), AccessError> {
        match self {
            RoomAcl::Uncreated | RoomAcl::Public => Ok(()),
            RoomAcl::Private(members) if members.contains(user_id) => Ok(()),
            RoomAcl::Private(_) => Err(AccessError::Forbidden(
                "this room is private to its members".into(),
            )),
            RoomAcl::Alias(name) => Err(AccessError::Forbidden(format!(
                "room names ignore case: this room is room:{name}"
            ))),
        }
    }
}

pub struct Authz {
    store: Store,
    rooms: DashMap<String, Arc<RoomAcl>>,
    /// Bumped by every change of any room's rules (see the module docs).
    generation: AtomicU64,
}

impl Authz {
    pub fn new(store: Store) -> Authz {
        Authz {
            store,
            rooms: DashMap::new(),
            generation: AtomicU64::new(0),
        }
    }

    /// Moves with every change of any room's rules: a cached decision made at an earlier
    /// generation must be asked again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// May `who` subscribe to / read the history of `channel`?
    pub async fn can_read(&self, who: &Principal, channel: &Channel) -> Result<(), AccessError> {
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
    pub async fn can_publish(&self, who: &Principal, channel: &Channel) -> Result<(), AccessError> {
        match channel {
            Channel::Room(name) => self.room_access(who, name).await,
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
    pub async fn may_read_room(&self, user_id: &str, room: &str) -> Result<bool, StoreError> {
        Ok(self.room(room).await?.check(user_id).is_ok())
    }

    /// The rules of `room`, from the cache or storage.
    pub async fn room(&self, room: &str) -> Result<Arc<RoomAcl>, StoreError> {
        if let Some(acl) = self.rooms.get(room) {
            return Ok(acl.clone());
        }
        // A change that lands while storage is read makes this answer stale: it is used for this
        // one decision but not cached.
        let generation = self.generation();
        let acl = Arc::new(self.load(room).await?);
        if self.generation() == generation {
            self.cache(room, acl.clone());
        }
        Ok(acl)
    }

    /// Records that `room`'s rules are now `acl` (a room was created here, or another node or
    /// the storage poll said so), moving the generation.
    pub fn set_room(&self, room: &str, acl: Arc<RoomAcl>) {
        self.cache(room, acl);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn cache(&self, room: &str, acl: Arc<RoomAcl>) {
        if self.rooms.len() >= MAX_CACHED_ROOMS {
            self.rooms.clear();
        }
        self.rooms.insert(room.to_owned(), acl);
    }

    /// Reads `room`'s rules from storage.
    pub async fn load(&self, room: &str) -> Result<RoomAcl, StoreError> {
        let Some(found) = self.store.room_ignoring_case(room).await? else {
            return Ok(RoomAcl::Uncreated);
        };
        if found.name != room {
            return Ok(RoomAcl::Alias(found.name));
        }
        if !found.private {
            return Ok(RoomAcl::Public);
        }
        let members = self
            .store
            .room_members(room)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        Ok(RoomAcl::Private(members))
    }
}
