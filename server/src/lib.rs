//! Switchboard server: authenticates users over HTTP, keeps their WebSocket sessions in a
//! connection hub, stores every message with a gapless per-channel offset, and fans messages out
//! to subscribers.
//!
//! # Layout
//! The path of one published message (a chat message; notifications and feed items join it at
//! step 3), each hop in the file that holds it:
//! 1. `ws/requests/publish.rs` (or `http/channels.rs`): a `publish` frame or
//!    `POST /api/v1/channels/{channel}/messages` arrives on a connection (`ws/connection.rs`);
//! 2. `payload.rs`, `authz/`, `publish/`: within the size and nesting bounds, allowed, within
//!    budget; stamped (id, sender, time);
//! 3. `pipeline/commit.rs`: batched into a group commit (`store/messages.rs` assigns the offset);
//!    durable, then acked;
//! 4. `pipeline/mod.rs` (`AfterCommit`): the after-commit hooks (the mention tap,
//!    `notify/mentions.rs`), then
//! 5. `bus/`: to the other nodes (`bus/redis.rs`; one node: `LocalBus`, no one to tell), and
//! 6. `hub/`: to this node's subscribers: `hub/mod.rs` finds the channel, its sequencer
//!    (`hub/channel.rs`) puts messages in offset order (repairing gaps, `hub/repair.rs`) and
//!    hands one shared encoded frame (`hub/delivery.rs`, `ws/conn/wire.rs`) to each subscriber's
//!    connection;
//! 7. `ws/conn/`: the connection writes it through to its socket, or queues what a blocked
//!    socket cannot take yet (`ws/conn/queue.rs`, `ws/conn/writer.rs`).
//!
//! On the other nodes, `bus/redis.rs` hands what it receives to their hub at step 6.
//! Subscribing with `since` replays history before live delivery takes over (`hub/replay.rs`).
//!
//! Around it: `startup.rs` builds the node (`App::build`), `serve.rs` serves it, `shutdown.rs`
//! stops it in order; `state.rs` is what every handler gets; `net/` is the accept loop and its
//! limits; `http/` the API (`bodies.rs` its answers, `error.rs` its errors, `cors.rs` its CORS)
//! and the embedded demo app (`demo.rs`); `ws/handshake.rs` authenticates a socket; `auth/`
//! (passwords, tokens, sessions), `presence/`, `feed/`, `notify/`, `cluster.rs` (control events
//! from other nodes), [`config`] (every setting),
//! [`store`] (SQLite or PostgreSQL), `secret.rs`, `workers.rs` (supervised background tasks),
//! `metrics.rs`, `rate.rs`.
//!
//! Only [`run`], [`run_with`], [`config`] and [`store`] are public (the integration tests use
//! them); everything else is `pub(crate)`, with `unreachable_pub` on, so rustc reports what
//! nothing uses.

pub(crate) mod auth;
pub(crate) mod authz;
pub(crate) mod bus;
pub(crate) mod chat;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod feed;
pub(crate) mod http;
pub(crate) mod hub;
pub(crate) mod metrics;
pub(crate) mod net;
pub(crate) mod node;
pub(crate) mod notify;
pub(crate) mod payload;
pub(crate) mod pipeline;
pub(crate) mod presence;
pub(crate) mod publish;
pub(crate) mod rate;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod shutdown;
pub(crate) mod startup;
pub(crate) mod state;
pub mod store;
pub(crate) mod workers;
pub(crate) mod ws;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
pub(crate) use crate::startup::App;
pub(crate) use crate::state::AppState;

/// What the integration tests reach past the public API for: forging bus envelopes (with the
/// node's seal) and client addresses. Not a stable interface.
#[doc(hidden)]
pub mod testing {
    pub use crate::bus::seal::Seal;
    pub use crate::bus::ControlEvent;
    pub use crate::net::client::Cidr;
}

/// Serves on `listener` until `shutdown` is cancelled, then drains: stops accepting, tells every
/// client to reconnect (with jitter), flushes and closes their sockets, lets the storage writers
/// finish what they hold, and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let admin = match config.admin_addr()? {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("binding the admin listener to {addr} (SWITCHBOARD_ADMIN_BIND)")
        })?),
        None => None,
    };
    if let Some(admin) = &admin {
        tracing::info!(addr = %admin.local_addr()?, "admin listener (metrics, probes)");
    }
    run_with(listener, admin, config, shutdown).await
}

/// [`run`] on listeners the caller bound: the public one, and the admin one (`/metrics`,
/// `/healthz`, `/readyz`) unless `None`.
pub async fn run_with(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = App::build(config, shutdown).await?;
    app.serve(listener, admin).await
}
