//! The ordered stop, once shutdown is asked for. Each step waits for the one before:
//!
//! 1. [`drain_connections`]: the listeners stop accepting; every client is told to reconnect
//!    (with jitter) and its socket is closed once what it was sent is flushed;
//! 2. with no request left (and the router, holding every chat commit queue handle, gone),
//!    [`stop`] runs the background down:
//!    - the feed fan-out worker stops and releases its leases;
//!    - the chat writers commit what they still hold and exit, dropping the mention tap, which
//!      closes the mention queue;
//!    - the mention worker notifies what was queued and exits, dropping the last handle of the
//!      notification queue;
//!    - the notification writer commits the last notifications and exits;
//!    - the bus and the pollers stop, and storage closes.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::AppState;

/// How long shutdown waits for connections to flush and close before giving up on them: the
/// connections' own close grace (10 s, `ws::conn::CLOSE_GRACE`), after which each has ended anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What runs beside the requests, in the order [`stop`] ends it.
pub(crate) struct Background {
    pub fanout_stop: CancellationToken,
    pub fanout_task: JoinHandle<()>,
    pub chat_writers: Vec<JoinHandle<()>>,
    pub mention_task: JoinHandle<()>,
    pub notification_writers: Vec<JoinHandle<()>>,
    /// The bus's tasks and the pollers: aborted last (they hold nothing to finish).
    pub bus_tasks: Vec<JoinHandle<()>>,
    pub store: Store,
}

/// Step 1: tells every client to reconnect after a random delay within the drain window (so they
/// do not all arrive at the other nodes at once), closes each socket with 1001 once its queue is
/// flushed, and waits for the connection tasks, up to [`SHUTDOWN_GRACE`].
pub(crate) async fn drain_connections(state: &AppState) {
    let window = state.config.drain_window;
    tracing::info!(connections = state.hub.connection_count(), "shutting down");
    state.hub.for_each_connection(|conn| conn.go_away(window));
    state.tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}

/// Step 2: runs the background down in order (see the module's list).
pub(crate) async fn stop(background: Background) {
    let b = background;
    b.fanout_stop.cancel();
    let _ = b.fanout_task.await;
    for writer in b.chat_writers {
        let _ = writer.await;
    }
    let _ = b.mention_task.await;
    for writer in b.notification_writers {
        let _ = writer.await;
    }
    for task in b.bus_tasks {
        task.abort();
    }
    b.store.close().await;
}
