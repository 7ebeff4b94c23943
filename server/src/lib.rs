//! Switchboard server: authenticates users over HTTP, keeps their WebSocket sessions in a
//! connection hub, stores every message with a gapless per-channel offset, and fans messages out
//! to subscribers.
//!
//! # Layout
//! The path of one published message, top to bottom:
//! - [`ws`] (or [`http`]): a `publish` frame or `POST /api/v1/channels/.../messages` arrives;
//! - [`payload`]: is `data` within the size and nesting bounds?
//! - [`authz`]: may this user publish there? ([`authz::watch`] applies rule changes to live
//!   subscriptions);
//! - [`publish`] → [`store::writer`]: batched into a group commit, offset assigned, durable; acked;
//! - [`bus`]: the committed batch goes to every node with interest;
//! - [`hub`]: the channel's sequencer puts it in offset order and writes one shared encoded frame
//!   into each subscriber's socket ([`ws::conn`]), queueing only what a blocked socket
//!   cannot take yet.
//!
//! Beside it: [`auth`] (passwords, tokens, sessions), [`config`] (every setting), [`store`]
//! (SQLite or PostgreSQL), `secret` (the signing secret, owner-only files), `workers`
//! (supervised background tasks, reported by `readyz`).

pub(crate) mod auth;
pub(crate) mod authz;
pub(crate) mod bus;
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
