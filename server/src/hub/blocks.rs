//! Block lists on a node: each connection hides the messages of the users its user blocked
//! (PROTOCOL.md, "Blocked users are hidden"). A user's list is read from storage once for all
//! their connections here, not once per connection (a reconnect storm would otherwise be a storm
//! of queries), and replaced on every one of them when a block or unblock reaches the node.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use dashmap::DashMap;

use super::Hub;
use crate::store::StoreError;
use crate::ws::conn::ConnHandle;

/// One user's block list, shared by their connections.
pub(crate) type BlockList = Arc<HashSet<String>>;

/// The lists in use here, by user. Weak: a list lives as long as a connection holds it, and the
/// entries of users gone are dropped as the map grows.
#[derive(Default)]
pub(super) struct BlockLists(DashMap<Arc<str>, Weak<HashSet<String>>>);

impl BlockLists {
    fn live(&self, user: &str) -> Option<BlockList> {
        self.0.get(user).and_then(|w| w.upgrade())
    }

    /// Keeps `list` as `user`'s unless a live one was put there meanwhile (by a block event,
    /// which is newer than any read): returns the one to use.
    fn keep(&self, user: &Arc<str>, list: BlockList, connections: usize) -> BlockList {
        if self.0.len() > 2 * connections + 64 {
            self.0.retain(|_, w| w.strong_count() > 0);
        }
        let mut entry = self.0.entry(user.clone()).or_default();
        match entry.upgrade() {
            Some(newer) => newer,
            None => {
                *entry = Arc::downgrade(&list);
                list
            }
        }
    }

    fn replace(&self, user: &str, list: &BlockList) {
        self.0.insert(Arc::from(user), Arc::downgrade(list));
    }
}

impl Hub {
    /// Gives a new connection its user's block list: the one their other connections here
    /// share, or read from storage.
    pub(crate) async fn load_block_list(&self, conn: &ConnHandle) -> Result<(), StoreError> {
        let user = &conn.principal.user_id;
        let list = match self.block_lists.live(user) {
            Some(list) => list,
            None => {
                let read = Arc::new(self.store.blocked_ids(user).await?);
                self.block_lists.keep(user, read, self.connections.len())
            }
        };
        conn.set_hidden(list);
        Ok(())
    }

    /// Replaces `user`'s block list on every local connection of theirs (after a block or an
    /// unblock, here or on another node).
    pub(crate) fn set_hidden(&self, user: &str, list: &BlockList) {
        self.block_lists.replace(user, list);
        for conn in self.connections.iter() {
            if &*conn.principal.user_id == user {
                conn.set_hidden(list.clone());
            }
        }
    }
}
