//! This process's identity in a cluster, made once at start-up: presence entries and feed
//! fan-out leases name it, and the bus recognises (and drops) its own envelopes by it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeId(Arc<str>);

impl NodeId {
    /// A fresh identity: a restarted process is a new node (its old leases and presence entries
    /// expire on their own).
    pub(crate) fn random() -> NodeId {
        NodeId(uuid::Uuid::new_v4().to_string().into())
    }
}

impl Deref for NodeId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
