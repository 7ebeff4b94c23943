//! Who may read (subscribe, history) and publish on which channel. Every subscribe and publish,
//! over WebSocket or HTTP, asks here.
//!
//! - `room:<name>`: a room never created is public; a public room is open to any logged-in user;
//!   a private room to its members only.
//! - `user:<id>` and `feed:<id>`: only that user may read; only the server publishes.

use std::collections::HashSet;
use std::sync::Arc;

use dashmap::DashMap;
use switchboard_protocol::{Channel, ErrorCode};

use crate::auth::Principal;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Forbidden(&'static str),
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

/// A created room's access list. Rooms do not change after creation, so once read it is cached
/// for the life of the process.
struct RoomAcl {
    private: bool,
    members: HashSet<String>,
}

pub struct Authz {
    store: Store,
    rooms: DashMap<String, Arc<RoomAcl>>,
}

impl Authz {
    pub fn new(store: Store) -> Authz {
        Authz {
            store,
            rooms: DashMap::new(),
        }
    }

    /// May `who` subscribe to / read the history of `channel`?
    pub async fn can_read(&self, who: &Principal, channel: &Channel) -> Result<(), AccessError> {
        match channel {
            Channel::Room(name) => self.room_access(who, name).await,
            Channel::User(id) | Channel::Feed(id) if **id == *who.user_id => Ok(()),
            Channel::User(_) => Err(AccessError::Forbidden(
                "only its owner may read a user: channel",
            )),
            Channel::Feed(_) => Err(AccessError::Forbidden(
                "only its owner may read a feed: channel",
            )),
        }
    }

    /// May `who` publish to `channel`?
    pub async fn can_publish(&self, who: &Principal, channel: &Channel) -> Result<(), AccessError> {
        match channel {
            Channel::Room(name) => self.room_access(who, name).await,
            Channel::User(_) | Channel::Feed(_) => Err(AccessError::Forbidden(
                "only the server publishes to this channel",
            )),
        }
    }

    async fn room_access(&self, who: &Principal, room: &str) -> Result<(), AccessError> {
        if self.may_read_room(&who.user_id, room).await? {
            Ok(())
        } else {
            Err(AccessError::Forbidden(
                "this room is private to its members",
            ))
        }
    }

    /// May the user `user_id` read (and publish to) `room`? Also asked for users other than the
    /// caller: a mention notifies only users who may read the room.
    pub async fn may_read_room(&self, user_id: &str, room: &str) -> Result<bool, StoreError> {
        let acl = match self.rooms.get(room).map(|a| a.clone()) {
            Some(acl) => acl,
            None => match self.load(room).await? {
                Some(acl) => acl,
                None => return Ok(true), // never created: public
            },
        };
        Ok(!acl.private || acl.members.contains(user_id))
    }

    async fn load(&self, room: &str) -> Result<Option<Arc<RoomAcl>>, StoreError> {
        let Some(found) = self.store.room(room).await? else {
            return Ok(None);
        };
        let members = if found.private {
            self.store
                .room_members(room)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        } else {
            HashSet::new()
        };
        let acl = Arc::new(RoomAcl {
            private: found.private,
            members,
        });
        self.rooms.insert(room.to_owned(), acl.clone());
        Ok(Some(acl))
    }
}
