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

pub mod auth;
pub mod authz;
pub mod bus;
mod cluster;
pub mod config;
pub mod feed;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod net;
mod node;
pub mod notify;
pub mod payload;
pub mod pipeline;
pub mod presence;
pub mod publish;
pub mod rate;
mod secret;
mod serve;
mod shutdown;
mod startup;
mod state;
pub mod store;
mod workers;
pub(crate) mod ws;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
pub use crate::startup::App;
pub use crate::state::AppState;

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
