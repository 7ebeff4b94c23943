//! How many WebSockets one user, and one client address behind a trusted proxy, may hold open
//! (`SWITCHBOARD_MAX_CONNECTIONS_PER_USER`, `SWITCHBOARD_MAX_CONNECTIONS_PER_IP`). The node's
//! total, and a direct client's sockets, are capped at accept ([`crate::net::listener`]).

use std::net::IpAddr;
use std::sync::Arc;

use switchboard_protocol::ErrorCode;

use crate::http::ApiError;
use crate::net::{client_key, Slot, Slots};

pub(crate) struct Caps {
    per_user: Arc<Slots<Arc<str>>>,
    per_client: Arc<Slots<IpAddr>>,
}

/// The places one connection holds; given back when it ends.
#[derive(Default)]
pub(crate) struct Places {
    pub user: Option<Slot<Arc<str>>>,
    pub client: Option<Slot<IpAddr>>,
}

impl Caps {
    pub(crate) fn new(per_user: usize, per_client: usize) -> Caps {
        Caps {
            per_user: Slots::new(per_user),
            per_client: Slots::new(per_client),
        }
    }

    pub(crate) fn user(&self, user: &Arc<str>) -> Result<Slot<Arc<str>>, ApiError> {
        self.per_user.take(user.clone()).ok_or_else(|| {
            crate::metrics::refused("connections_per_user");
            ApiError::new(
                ErrorCode::RateLimited,
                "too many open connections for this user (SWITCHBOARD_MAX_CONNECTIONS_PER_USER)",
            )
        })
    }

    pub(crate) fn client(&self, client: IpAddr) -> Result<Slot<IpAddr>, ApiError> {
        self.per_client.take(client_key(client)).ok_or_else(|| {
            crate::metrics::refused("connections_per_ip");
            ApiError::new(
                ErrorCode::RateLimited,
                "too many open connections from this address (SWITCHBOARD_MAX_CONNECTIONS_PER_IP)",
            )
        })
    }
}
