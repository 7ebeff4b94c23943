//! What every request handler and connection is given: the node's shared parts.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::authz::Authz;
use crate::bus::Bus;
use crate::config::Config;
use crate::hub::Hub;
use crate::pipeline::commit::CommitQueue;
use crate::store::Store;
use crate::{feed, http, notify, presence, publish, workers};

/// Everything a request handler or connection needs. Cheap to clone. Built by
/// [`crate::App::build`].
#[derive(Clone)]
pub(crate) struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Arc<Auth>,
    pub authz: Arc<Authz>,
    pub hub: Arc<Hub>,
    /// Where chat publishes go to be committed ([`crate::pipeline`]).
    pub commit_queue: CommitQueue,
    /// The other nodes: cluster-wide events this node sends (revocations, rules, presence).
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<presence::Presence>,
    pub feed: Arc<feed::Feed>,
    pub notifier: Arc<notify::Notifier>,
    pub http_writes: Arc<http::throttle::UserRate>,
    pub http_reads: Arc<http::throttle::UserRate>,
    /// Follow notifications already sent within the window, per (follower, followed).
    pub follow_notices: Arc<notify::once::OncePerWindow>,
    /// Publish budgets per user and per API key.
    pub publish_budget: Arc<publish::budget::Budget>,
    /// WebSockets per user and per client behind a proxy.
    pub caps: Arc<crate::ws::caps::Caps>,
    /// The background workers, for `readyz`.
    pub workers: Arc<workers::Workers>,
    /// Cancelled once when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}
